//! The virtual IP of a goproxy-ha cluster: only the Raft leader with a fresh quorum answers for it.
//!
//! Layout:
//! - [`lease`]: pure fencing rule. From a leadership sample (is leader, age of the newest
//!   quorum-acknowledged heartbeat) it computes until when this node may hold the VIP. The lease is
//!   shorter than the followers' leader lease, so a new leader can never be elected while an old
//!   one still believes it may hold the address.
//! - [`fencing`]: the never-two-holders rule as one pure step, [`fencing::decide`]: from this
//!   node's lease, the lease of a leader it acknowledged and what its guard was last told, what
//!   to tell the guard now.
//! - [`command`]: the line protocol between the node and its guard process, with deadlines on
//!   `CLOCK_MONOTONIC` so they stay absolute even if the node process is frozen (SIGSTOP).
//! - [`address`]: the VIP as `ip/prefix`.
//! - [`netlink`]: add / remove / query the address on an interface (rtnetlink), idempotently.
//! - [`announce`]: gratuitous ARP (request and reply forms) and unsolicited neighbour
//!   advertisements; [`announce::frames`] builds them as pure functions.
//! - [`guard`]: the guard loop (hold / release / deadline / re-announce), its command-line
//!   [`GuardConfig`] and its notification hooks.
//! - [`process`]: [`guard_process_main`], the guard as a process (runtime, stdin, signals,
//!   parent-death signal).
//! - [`error`]: the one error type, [`VipError`].
//!
//! The node process never touches the address itself. A separate guard process (`goproxy-ha
//! vip-guard`, which dies with its parent) owns it: it adds the address when told to hold it until a
//! deadline, announces it with gratuitous ARP / unsolicited neighbour advertisements, and removes it
//! when the deadline passes, on `release`, or when its parent goes away (pipe EOF). A SIGKILLed or
//! frozen node therefore cannot keep the VIP past its lease.

pub mod address;
pub mod announce;
pub mod command;
pub mod error;
pub mod fencing;
pub mod guard;
pub mod lease;
pub mod netlink;
pub mod process;

pub use address::VipAddress;
pub use error::VipError;
pub use guard::{run_guard, run_guard_until, GuardConfig};
pub use process::guard_process_main;
