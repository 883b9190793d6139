//! Integration tests: the `etagstore` binary run as a user runs it.

// The Azure Blob Storage backend against Azurite, and the same scenarios on a directory.
mod azure;
// Azurite for the tests: a fresh container per test, a private instance to stop.
mod azurite;
mod common;
// The command-line contract: outputs, exit codes, one `error:` line.
mod contract;
// edit: the editor, command and jq modes, conflicts and races.
mod edit;
// ETags and preconditions on `set` and `delete`.
mod etags;
// Failures outside the document: I/O, a store that is a file, held locks.
mod failures;
// Input documents: exit 6 for anything but one JSON value, byte-for-byte storage.
mod input;
// Keys: awkward keys stay inside the store, invalid keys exit 2.
mod keys;
// Real processes racing: one winner, no lost update, no torn read, per-key locks.
mod races;
