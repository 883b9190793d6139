//! Unknown outcomes (exit 8) through a fault proxy.
