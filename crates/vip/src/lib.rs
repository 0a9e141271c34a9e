//! The virtual IP of a goproxy-ha cluster: only the Raft leader with a fresh quorum answers for it.
//!
//! Layout:
//! - [`lease`]: pure fencing rule. From a leadership sample (is leader, age of the newest
//!   quorum-acknowledged heartbeat) it computes until when this node may hold the VIP. The lease is
//!   shorter than the followers' leader lease, so a new leader can never be elected while an old
//!   one still believes it may hold the address.
//! - [`command`]: the line protocol between the node and its guard process, with deadlines on
//!   `CLOCK_MONOTONIC` so they stay absolute even if the node process is frozen (SIGSTOP).
//!
//! The node process never touches the address itself. A separate guard process (`goproxy-ha
//! vip-guard`, which dies with its parent) owns it: it adds the address when told to hold it until a
//! deadline, announces it with gratuitous ARP / unsolicited neighbour advertisements, and removes it
//! when the deadline passes, on `release`, or when its parent goes away (pipe EOF). A SIGKILLed or
//! frozen node therefore cannot keep the VIP past its lease.

pub mod command;
pub mod lease;
