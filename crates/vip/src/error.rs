//! The one error type of this crate: what can go wrong while owning the VIP.
//!
//! Most failures are not fatal to the guard (it logs them and retries, see [`crate::guard`]); the
//! ones that reach a caller are those that make running a guard pointless (no such interface, no
//! netlink socket, no runtime) or that leave the address in place.

use std::io;

/// Anything that can fail while configuring, adding, removing or announcing the VIP.
#[derive(Debug, thiserror::Error)]
pub enum VipError {
    /// The VIP is not a usable `ip[/prefix]`.
    #[error("invalid VIP address {input:?}: {reason}")]
    InvalidAddress {
        /// What was given.
        input: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// No interface of that name exists (in this network namespace).
    #[error("interface {0:?} not found")]
    InterfaceNotFound(String),
    /// The interface has no 6-byte (Ethernet) hardware address, so ARP/NDP cannot announce on it.
    #[error("interface {0:?} has no Ethernet MAC address")]
    NoMacAddress(String),
    /// The netlink socket could not be opened.
    #[error("opening a netlink socket: {0}")]
    NetlinkSocket(#[source] io::Error),
    /// The kernel refused or failed a netlink request.
    #[error("netlink {action} failed: {source}")]
    Netlink {
        /// What was being done (`add address`, `list addresses`, ...).
        action: &'static str,
        /// The error netlink reported.
        #[source]
        source: rtnetlink::Error,
    },
    /// The kernel did not answer a netlink request in time.
    #[error("netlink {action} timed out")]
    NetlinkTimeout {
        /// What was being done.
        action: &'static str,
    },
    /// Opening or writing the raw packet socket used for announcements failed.
    #[error("packet socket on {interface:?}: {source}")]
    PacketSocket {
        /// The interface the socket is bound to.
        interface: String,
        /// The underlying socket error.
        #[source]
        source: io::Error,
    },
    /// The address could still be on the interface after every removal attempt.
    #[error("could not remove {address} from {interface:?} after {attempts} attempts: {last}")]
    RemoveFailed {
        /// The VIP (`ip/prefix`).
        address: String,
        /// The interface.
        interface: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        last: Box<VipError>,
    },
    /// The guard's runtime or signal handlers could not be set up.
    #[error("starting the guard runtime: {0}")]
    Runtime(#[source] io::Error),
}
