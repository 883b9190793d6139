//! etagstore: a key -> JSON document store with ETags, for shell scripts
//! that must update shared state without losing anyone's write.
//!
//! The binary is a thin shell around `run`; everything else is here so tests
//! can reach it without a process.

pub mod backoff;
pub mod cli;
pub mod commands;
pub mod document;
pub mod error;
pub mod faults;
pub mod jq;
pub mod key;
pub mod merge;
pub mod output;
pub mod progress;
pub mod store;

pub use commands::run;
