//! Integration tests: the `etagstore` binary run as a user runs it.

// The Azure Blob Storage backend against Azurite; the same scenarios on a directory and on S3.
#[macro_use]
mod azure;
// Azurite for the tests: a fresh container per test, a private instance to stop.
mod azurite;
mod common;
// Conditions on content (--if) and patch, on every backend: the claim-a-job race.
mod conditions;
// The command-line contract: outputs, exit codes, one `error:` line.
mod contract;
// SIGKILL mid-write: the old or new document whole, no lock held, orphaned temps cleaned.
mod crash;
// edit: the editor, command and jq modes, conflicts and races.
mod edit;
// edit merges a concurrent write: the editor, conflict files, --merge for CMD and --jq.
mod edit_merge;
// watch, export/import, completions, the man page and the hints on error lines.
mod ergonomics;
// ETags and preconditions on `set` and `delete`.
mod etags;
// I/O faults, injected and real: exit 1, one error naming the step, nothing changed.
mod faults;
// Failures outside the document: I/O, a store that is a file, held locks.
mod failures;
// Hostile input, one table: documented exit codes, nothing changed or created outside.
mod hostile;
// import's group commit: SIGKILL mid-import, a concurrent set --etag, locks held to the fsync, faults.
mod import_batch;
// Input documents: exit 6 for anything but one JSON value, byte-for-byte storage.
mod input;
// Keys: awkward keys stay inside the store, invalid keys exit 2.
mod keys;
// Power cuts on a loop-mounted ext4 image: acknowledged writes survive; no fsync loses them.
mod powercut;
// Readers under writers of a 1 KiB and a 10 MiB document: whole reads, matching ETags.
mod readers;
// Real processes racing: one winner, no lost update, no torn read, per-key locks.
mod races;
// Stale compare-and-swaps on the directory store: inode reuse, in-place rewrites, lost lock files, modes.
mod fs_protocol;
// A hostile co-user of a shared (group) store, planted symlinks and FIFOs.
mod shared_store;
// Azure with other writers (Microsoft's Python SDK): the ETag comes from the bytes.
mod azure_foreign;
// Unknown outcomes on a network store (exit 8), through a fault proxy on 127.0.0.1;
// timeouts, the 256 MiB limit, `--store` addresses and the emulator switch.
mod outcomes;
// The fault proxy: forwards to Azurite, drops, resets, delays or fakes answers.
mod fault_proxy;
// Edges of get -o, watch, export/import and edit's child.
mod command_edges;
// The README's and docs' examples, run: console blocks by trycmd, marked sh blocks by sh.
mod docs;
// A new user's mistakes: each gets an answer that fixes it.
mod first_contact;
// edit --jq against jq: one row per idiom and builtin, checked against a real jq when there is one.
mod jq_compat;
// The S3 backend against moto's server: races on the service's If-Match, objects written by boto3.
mod s3;
// --error-format json: one JSON object an error line, a code and fields for each kind.
mod error_format;
// set --or-same and delete --or-missing on every backend, and repeated after exit 8 on Azure.
mod or_same;
// Requests per command on Azure and S3, counted by a recording proxy in front of Azurite and moto.
mod requests;
