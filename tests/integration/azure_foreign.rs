//! Azure with foreign writers.
