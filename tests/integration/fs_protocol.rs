//! Stale compare-and-swaps on the directory store.
