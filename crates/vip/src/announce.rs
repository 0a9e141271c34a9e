//! Telling the segment where the VIP now lives: gratuitous ARP (IPv4) and unsolicited neighbour
//! advertisements (IPv6), written to a raw `AF_PACKET` socket.
//!
//! Neighbours cache the old holder's MAC for the VIP; without an announcement they keep sending to
//! it until their entry goes stale (tens of seconds). A burst of several announcements at
//! acquisition covers a lost frame; refreshes while holding cover hosts that joined later or flushed
//! their cache. The socket comes from `pnet_datalink` (the workspace forbids `unsafe`); it is
//! opened per burst, bound to the interface, and closed after it.

pub mod frames;

use std::net::IpAddr;
use std::time::Duration;

use pnet_datalink::{Channel, DataLinkSender, MacAddr, NetworkInterface};

use crate::error::VipError;
use crate::netlink::LinkInfo;
use frames::ArpForm;

/// Longest a single frame may wait for room in the socket's send queue.
const SEND_TIMEOUT: Duration = Duration::from_millis(100);
/// The receive side of the socket is never read; keep its buffer small.
const UNUSED_READ_BUFFER: usize = 64;

/// The frames that announce one VIP on one interface.
#[derive(Debug, Clone)]
pub struct Announcer {
    interface: NetworkInterface,
    frames: Vec<Vec<u8>>,
}

impl Announcer {
    /// Prepares the announcement of `ip` on interface `name` (index and MAC from `link`): both
    /// gratuitous ARP forms for IPv4, one neighbour advertisement for IPv6.
    pub fn new(name: &str, link: &LinkInfo, ip: IpAddr) -> Announcer {
        let frames = match ip {
            IpAddr::V4(v4) => vec![
                frames::gratuitous_arp(ArpForm::Request, link.mac, v4),
                frames::gratuitous_arp(ArpForm::Reply, link.mac, v4),
            ],
            IpAddr::V6(v6) => vec![frames::unsolicited_na(link.mac, v6)],
        };
        let [a, b, c, d, e, f] = link.mac;
        let interface = NetworkInterface {
            name: name.to_string(),
            description: String::new(),
            index: link.index,
            mac: Some(MacAddr(a, b, c, d, e, f)),
            ips: Vec::new(),
            flags: 0,
        };
        Announcer { interface, frames }
    }

    /// The frames of one announcement round.
    pub fn frames(&self) -> &[Vec<u8>] {
        &self.frames
    }

    /// Sends `rounds` rounds, `interval` apart. Dropping the future stops the burst.
    pub async fn burst(&self, rounds: u32, interval: Duration) -> Result<(), VipError> {
        if rounds == 0 {
            return Ok(());
        }
        let mut sender = self.open()?;
        for round in 0..rounds {
            if round > 0 {
                tokio::time::sleep(interval).await;
            }
            self.send_round(sender.as_mut())?;
        }
        Ok(())
    }

    fn open(&self) -> Result<Box<dyn DataLinkSender>, VipError> {
        let config = pnet_datalink::Config {
            write_timeout: Some(SEND_TIMEOUT),
            read_buffer_size: UNUSED_READ_BUFFER,
            promiscuous: false,
            ..Default::default()
        };
        match pnet_datalink::channel(&self.interface, config) {
            Ok(Channel::Ethernet(sender, _receiver)) => Ok(sender),
            Ok(_) => Err(self.socket_error(std::io::Error::other("not an Ethernet channel"))),
            Err(e) => Err(self.socket_error(e)),
        }
    }

    fn send_round(&self, sender: &mut dyn DataLinkSender) -> Result<(), VipError> {
        for frame in &self.frames {
            match sender.send_to(frame, None) {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(self.socket_error(e)),
                None => return Err(self.socket_error(std::io::Error::other("frame too large"))),
            }
        }
        Ok(())
    }

    fn socket_error(&self, source: std::io::Error) -> VipError {
        VipError::PacketSocket {
            interface: self.interface.name.clone(),
            source,
        }
    }
}
