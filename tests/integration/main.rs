//! Integration tests: the `etagstore` binary run as a user runs it.

mod common;
// The command-line contract: outputs, exit codes, one `error:` line.
mod contract;
// edit: the editor, command and jq modes, conflicts and races.
mod edit;
