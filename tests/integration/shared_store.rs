//! A hostile co-user of a shared store.
