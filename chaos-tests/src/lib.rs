//! Chaos tests (being written).
