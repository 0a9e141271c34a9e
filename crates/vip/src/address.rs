//! The VIP itself: an IP address with the prefix length it is configured with.
//!
//! Written `ip/prefix` on the command line (`10.0.0.100/24`, `fd00::100/64`); a bare `ip` means a
//! host prefix (`/32`, `/128`). The host bits are kept: this is an address, not a network.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::error::VipError;

/// Longest IPv4 prefix.
const V4_BITS: u8 = 32;
/// Longest IPv6 prefix.
const V6_BITS: u8 = 128;

/// A unicast IP address plus the prefix length it is added with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VipAddress {
    ip: IpAddr,
    prefix_len: u8,
}

impl VipAddress {
    /// Checks that `ip` is a unicast, specified address and that the prefix fits its family.
    pub fn new(ip: IpAddr, prefix_len: u8) -> Result<Self, VipError> {
        let refuse = |reason| VipError::InvalidAddress {
            input: format!("{ip}/{prefix_len}"),
            reason,
        };
        if prefix_len > max_prefix(ip) {
            return Err(refuse("prefix length too long for the address family"));
        }
        if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
            return Err(refuse("must be a unicast, non-loopback address"));
        }
        if let IpAddr::V4(v4) = ip {
            if v4.is_broadcast() {
                return Err(refuse("must be a unicast, non-loopback address"));
            }
        }
        Ok(VipAddress { ip, prefix_len })
    }

    /// The address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Its prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => V4_BITS,
        IpAddr::V6(_) => V6_BITS,
    }
}

impl FromStr for VipAddress {
    type Err = VipError;

    fn from_str(s: &str) -> Result<Self, VipError> {
        let refuse = |reason| VipError::InvalidAddress {
            input: s.to_string(),
            reason,
        };
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix)),
            None => (s, None),
        };
        let ip: IpAddr = ip.parse().map_err(|_| refuse("not an IP address"))?;
        let prefix_len = match prefix {
            None => max_prefix(ip),
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() => {
                p.parse().map_err(|_| refuse("prefix length too long"))?
            }
            Some(_) => return Err(refuse("prefix length is not a number")),
        };
        VipAddress::new(ip, prefix_len)
    }
}

impl fmt::Display for VipAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_both_families() {
        for s in [
            "10.0.0.100/24",
            "192.168.1.7/32",
            "fd00::100/64",
            "2001:db8::1/128",
        ] {
            assert_eq!(s.parse::<VipAddress>().unwrap().to_string(), s);
        }
        assert_eq!("10.1.2.3".parse::<VipAddress>().unwrap().prefix_len(), 32);
        assert_eq!("fd00::1".parse::<VipAddress>().unwrap().prefix_len(), 128);
    }

    #[test]
    fn refuses_what_cannot_be_a_vip() {
        for bad in [
            "",
            "10.0.0.1/",
            "10.0.0.1/33",
            "10.0.0.1/+8",
            "10.0.0.1/999",
            "fd00::1/129",
            "0.0.0.0/0",
            "::/0",
            "224.0.0.1/32",
            "ff02::1/128",
            "127.0.0.1/8",
            "255.255.255.255",
            "host.example/24",
        ] {
            assert!(bad.parse::<VipAddress>().is_err(), "{bad:?} accepted");
        }
    }
}
