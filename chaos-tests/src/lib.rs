//! Chaos tests for goproxy-ha clusters.
//!
//! This workspace member hosts the fault-injection suite that runs against the
//! multi-node lab (network namespaces, a bridge and a virtual IP): named faults (kill -9,
//! partitions, packet loss, disk full), one invariant per check, printed seeds, and a
//! heal-then-converge phase. It is empty while goproxy-ha runs as a single node; the
//! single-node crash test lives in `crates/node/tests/restart.rs`.
