//! Announcement frames, built byte by byte (pure functions, no I/O).
//!
//! - Gratuitous ARP request (RFC 5227 "ARP announcement"): broadcast, opcode 1, sender = target =
//!   VIP, target hardware address zero.
//! - Gratuitous ARP reply: broadcast, opcode 2, sender = target = VIP, target hardware address =
//!   our MAC (the form Linux's `arp_is_garp` requires of replies). Some switches and hosts only
//!   update on one of the two forms, so keepalived and kube-vip send both; so do we.
//! - Unsolicited neighbour advertisement (RFC 4861 §7.2.6): to all-nodes `ff02::1`, hop limit 255,
//!   source = target = VIP, Override set, Solicited clear, with the target link-layer address
//!   option.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Ethernet header: destination, source, ethertype.
const ETH_HEADER_LEN: usize = 14;
/// Shortest Ethernet frame without FCS; shorter frames are padded (not every driver pads).
const ETH_MIN_FRAME_LEN: usize = 60;
const BROADCAST_MAC: [u8; 6] = [0xff; 6];
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ARPHRD_ETHER: u16 = 1;
const ARPOP_REQUEST: u16 = 1;
const ARPOP_REPLY: u16 = 2;
/// Version 6, traffic class 0, flow label 0.
const IPV6_VERSION_WORD: [u8; 4] = [0x60, 0, 0, 0];
const IPPROTO_ICMPV6: u8 = 58;
/// Neighbour discovery messages with any other hop limit are dropped by receivers (RFC 4861).
const ND_HOP_LIMIT: u8 = 255;
const ICMPV6_NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// R = 0, S = 0, O = 1 (replace cached link-layer addresses), then 29 reserved bits.
const NA_FLAGS_OVERRIDE: [u8; 4] = [0x20, 0, 0, 0];
const ND_OPT_TARGET_LINK_LAYER_ADDRESS: u8 = 2;
/// Option length in units of 8 bytes: type, length and a 6-byte MAC.
const ND_OPT_LINK_LAYER_LEN_UNITS: u8 = 1;
/// ICMPv6 NA: type, code, checksum, flags, target, one link-layer address option.
const NA_ICMPV6_LEN: usize = 4 + 4 + 16 + 8;
/// Where the checksum sits in an ICMPv6 message.
const ICMPV6_CHECKSUM_AT: usize = 2;
/// Length of a complete unsolicited neighbour advertisement frame.
pub const NA_FRAME_LEN: usize = ETH_HEADER_LEN + 40 + NA_ICMPV6_LEN;

/// Which of the two gratuitous ARP forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpForm {
    /// ARP request for our own address (RFC 5227 announcement).
    Request,
    /// ARP reply nobody asked for.
    Reply,
}

/// A broadcast gratuitous ARP for `ip` at `mac`, padded to the Ethernet minimum.
pub fn gratuitous_arp(form: ArpForm, mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let (op, target_mac) = match form {
        ArpForm::Request => (ARPOP_REQUEST, [0; 6]),
        ArpForm::Reply => (ARPOP_REPLY, mac),
    };
    let mut frame = Vec::with_capacity(ETH_MIN_FRAME_LEN);
    frame.extend_from_slice(&BROADCAST_MAC);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    frame.extend_from_slice(&ARPHRD_ETHER.to_be_bytes());
    frame.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    frame.extend_from_slice(&[6, 4]); // hardware and protocol address lengths
    frame.extend_from_slice(&op.to_be_bytes());
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&ip.octets());
    frame.extend_from_slice(&target_mac);
    frame.extend_from_slice(&ip.octets());
    frame.resize(ETH_MIN_FRAME_LEN, 0);
    frame
}

/// An unsolicited neighbour advertisement of `ip` at `mac` to all nodes.
pub fn unsolicited_na(mac: [u8; 6], ip: Ipv6Addr) -> Vec<u8> {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut icmp = Vec::with_capacity(NA_ICMPV6_LEN);
    icmp.extend_from_slice(&[ICMPV6_NEIGHBOR_ADVERTISEMENT, 0, 0, 0]);
    icmp.extend_from_slice(&NA_FLAGS_OVERRIDE);
    icmp.extend_from_slice(&ip.octets());
    icmp.extend_from_slice(&[
        ND_OPT_TARGET_LINK_LAYER_ADDRESS,
        ND_OPT_LINK_LAYER_LEN_UNITS,
    ]);
    icmp.extend_from_slice(&mac);
    let checksum = icmpv6_checksum(ip, all_nodes, &icmp);
    icmp[ICMPV6_CHECKSUM_AT..ICMPV6_CHECKSUM_AT + 2].copy_from_slice(&checksum.to_be_bytes());

    let mut frame = Vec::with_capacity(NA_FRAME_LEN);
    frame.extend_from_slice(&ipv6_multicast_mac(all_nodes));
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    frame.extend_from_slice(&IPV6_VERSION_WORD);
    frame.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    frame.extend_from_slice(&[IPPROTO_ICMPV6, ND_HOP_LIMIT]);
    frame.extend_from_slice(&ip.octets());
    frame.extend_from_slice(&all_nodes.octets());
    frame.extend_from_slice(&icmp);
    frame
}

/// `33:33` followed by the group's low 32 bits (RFC 2464 §7).
fn ipv6_multicast_mac(group: Ipv6Addr) -> [u8; 6] {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// The ICMPv6 checksum (RFC 4443 §2.3): one's complement sum over the IPv6 pseudo-header and the
/// message, whose checksum field must be zero.
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(40);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&(message.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, IPPROTO_ICMPV6]);
    !fold(ones_sum(&pseudo) + ones_sum(message))
}

/// Sum of big-endian 16-bit words, an odd last byte padded with zero; carries not folded yet.
fn ones_sum(bytes: &[u8]) -> u64 {
    bytes
        .chunks(2)
        .map(|pair| u64::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
#[path = "frames_tests.rs"]
mod tests;
