//! The VIP on an interface, through rtnetlink: add, remove, query, and the link's index and MAC.
//!
//! Every call is bounded by [`NETLINK_TIMEOUT`] so a wedged kernel request cannot stall the guard's
//! deadline timer forever. Sockets belong to the network namespace of the thread that opens them,
//! which is what lets tests run a guard inside a namespace of their own.

use std::net::IpAddr;
use std::time::Duration;

use futures::{Future, TryStreamExt};
use nix::errno::Errno;
use rtnetlink::packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};
use rtnetlink::packet_route::link::LinkAttribute;
use tokio::task::JoinHandle;

use crate::address::VipAddress;
use crate::error::VipError;

/// Longest wait for the kernel to answer one request.
pub const NETLINK_TIMEOUT: Duration = Duration::from_secs(1);
/// Length of an Ethernet hardware address.
const ETH_ALEN: usize = 6;

/// What announcing needs to know about the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    /// Kernel interface index.
    pub index: u32,
    /// Ethernet MAC address.
    pub mac: [u8; ETH_ALEN],
}

/// A route-netlink connection (in the caller's network namespace).
pub struct Netlink {
    handle: rtnetlink::Handle,
    connection: JoinHandle<()>,
}

impl Netlink {
    /// Opens the socket and drives it on the current tokio runtime.
    pub fn connect() -> Result<Netlink, VipError> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(VipError::NetlinkSocket)?;
        let connection = tokio::spawn(connection);
        Ok(Netlink { handle, connection })
    }

    /// Index and MAC of the interface called `name`.
    pub async fn link(&self, name: &str) -> Result<LinkInfo, VipError> {
        let mut request = std::pin::pin!(self.handle.link().get().match_name(name).execute());
        let message = match bounded("get link", request.try_next()).await {
            Ok(Some(message)) => message,
            Ok(None) => return Err(VipError::InterfaceNotFound(name.to_string())),
            Err(e) if errno(&e) == Some(Errno::ENODEV) => {
                return Err(VipError::InterfaceNotFound(name.to_string()))
            }
            Err(e) => return Err(e),
        };
        let mac = message.attributes.iter().find_map(|attr| match attr {
            LinkAttribute::Address(bytes) => <[u8; ETH_ALEN]>::try_from(bytes.as_slice()).ok(),
            _ => None,
        });
        Ok(LinkInfo {
            index: message.header.index,
            mac: mac.ok_or_else(|| VipError::NoMacAddress(name.to_string()))?,
        })
    }

    /// Adds `address` to interface `index`; already present is success. IPv6 addresses skip
    /// duplicate address detection (`IFA_F_NODAD`) so they are usable at once, not `tentative`.
    pub async fn add(&self, index: u32, address: VipAddress) -> Result<(), VipError> {
        let mut request = self
            .handle
            .address()
            .add(index, address.ip(), address.prefix_len());
        if address.ip().is_ipv6() {
            request.message_mut().header.flags = AddressHeaderFlags::Nodad;
        }
        match bounded("add address", request.execute()).await {
            Err(e) if errno(&e) == Some(Errno::EEXIST) => Ok(()),
            other => other,
        }
    }

    /// Removes `ip` from interface `index`, whatever prefix length it carries there (a stale VIP
    /// from an older configuration must go too). Absent is success; returns how many entries went.
    pub async fn remove(&self, index: u32, ip: IpAddr) -> Result<usize, VipError> {
        let mut removed = 0;
        for message in self.entries(index, ip).await? {
            match bounded(
                "remove address",
                self.handle.address().del(message).execute(),
            )
            .await
            {
                Ok(()) => removed += 1,
                // Gone between the dump and the delete: that is what we wanted.
                Err(e) if errno(&e) == Some(Errno::EADDRNOTAVAIL) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Whether exactly `address` (same IP and prefix length) is on interface `index`.
    pub async fn has_address(&self, index: u32, address: VipAddress) -> Result<bool, VipError> {
        let entries = self.entries(index, address.ip()).await?;
        Ok(entries
            .iter()
            .any(|m| m.header.prefix_len == address.prefix_len()))
    }

    /// The kernel's entries for `ip` on interface `index`.
    async fn entries(&self, index: u32, ip: IpAddr) -> Result<Vec<AddressMessage>, VipError> {
        let mut request = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(ip);
        // Ask only for the right family; the filters above run on our side.
        request.message_mut().header.family = match ip {
            IpAddr::V4(_) => rtnetlink::packet_route::AddressFamily::Inet,
            IpAddr::V6(_) => rtnetlink::packet_route::AddressFamily::Inet6,
        };
        let all: Vec<AddressMessage> =
            bounded("list addresses", request.execute().try_collect()).await?;
        // IFA_LOCAL is the address itself (IFA_ADDRESS is the peer on point-to-point links).
        Ok(all
            .into_iter()
            .filter(|m| {
                m.attributes.iter().any(|a| match a {
                    AddressAttribute::Local(local) => *local == ip,
                    AddressAttribute::Address(addr) => *addr == ip,
                    _ => false,
                })
            })
            .collect())
    }
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// Runs one request under [`NETLINK_TIMEOUT`], naming it in the error.
async fn bounded<T>(
    action: &'static str,
    request: impl Future<Output = Result<T, rtnetlink::Error>>,
) -> Result<T, VipError> {
    match tokio::time::timeout(NETLINK_TIMEOUT, request).await {
        Ok(result) => result.map_err(|source| VipError::Netlink { action, source }),
        Err(_) => Err(VipError::NetlinkTimeout { action }),
    }
}

/// The errno a netlink error carries, if any.
fn errno(error: &VipError) -> Option<Errno> {
    match error {
        VipError::Netlink {
            source: rtnetlink::Error::NetlinkError(message),
            ..
        } => message.code.map(|code| Errno::from_raw(code.get().abs())),
        _ => None,
    }
}
