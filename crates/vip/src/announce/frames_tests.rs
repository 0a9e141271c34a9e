use super::*;

const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x53, 0x01];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn gratuitous_arp_request_layout() {
    let frame = gratuitous_arp(ArpForm::Request, MAC, Ipv4Addr::new(192, 0, 2, 100));
    #[rustfmt::skip]
    let mut expected = vec![
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // Ethernet destination: broadcast
        0x02, 0x00, 0x5e, 0x00, 0x53, 0x01, // Ethernet source
        0x08, 0x06,                         // ethertype ARP
        0x00, 0x01,                         // hardware type Ethernet
        0x08, 0x00,                         // protocol type IPv4
        6, 4,                               // address lengths
        0x00, 0x01,                         // opcode request
        0x02, 0x00, 0x5e, 0x00, 0x53, 0x01, // sender MAC
        192, 0, 2, 100,                     // sender IP = VIP
        0, 0, 0, 0, 0, 0,                   // target MAC: zero (RFC 5227)
        192, 0, 2, 100,                     // target IP = VIP
    ];
    expected.resize(60, 0); // padding to the Ethernet minimum
    assert_eq!(frame, expected);
}

#[test]
fn gratuitous_arp_reply_layout() {
    let frame = gratuitous_arp(ArpForm::Reply, MAC, Ipv4Addr::new(192, 0, 2, 100));
    let request = gratuitous_arp(ArpForm::Request, MAC, Ipv4Addr::new(192, 0, 2, 100));
    assert_eq!(frame.len(), 60);
    // Same as the request except the opcode and the target MAC (= ours, as Linux requires).
    assert_eq!(frame[..20], request[..20]);
    assert_eq!(frame[20..22], [0x00, 0x02]);
    assert_eq!(frame[22..32], request[22..32]);
    assert_eq!(frame[32..38], MAC);
    assert_eq!(frame[38..], request[38..]);
}

#[test]
fn unsolicited_na_is_byte_exact() {
    let frame = unsolicited_na(MAC, "2001:db8::100".parse().unwrap());
    // Computed independently (Python, RFC 4443 pseudo-header sum): checksum 0x462c.
    let expected = concat!(
        "333300000001", // to the all-nodes multicast MAC
        "02005e005301", // from us
        "86dd",         // IPv6
        "60000000",
        "0020",
        "3a",
        "ff",                               // version, payload 32, ICMPv6, hop limit 255
        "20010db8000000000000000000000100", // source = VIP
        "ff020000000000000000000000000001", // destination ff02::1
        "88",
        "00",
        "462c",                             // NA, code 0, checksum
        "20000000",                         // Override, not Solicited, not Router
        "20010db8000000000000000000000100", // target = VIP
        "02",
        "01",
        "02005e005301", // target link-layer address option
    );
    assert_eq!(frame.len(), NA_FRAME_LEN);
    assert_eq!(hex(&frame), expected);
}

#[test]
fn na_checksum_verifies_to_zero() {
    // Summing a message including its correct checksum yields all ones, whatever the address.
    for ip in [
        "fd00::1",
        "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
        "fe80::1",
    ] {
        let ip: Ipv6Addr = ip.parse().unwrap();
        let frame = unsolicited_na(MAC, ip);
        let icmp = &frame[54..];
        let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        assert_eq!(icmpv6_checksum(ip, dst, icmp), 0, "{ip}");
    }
}

#[test]
fn checksum_pads_an_odd_byte() {
    // ::1 -> ::1, length 1: pseudo-header words 0x0001 + 0x0001 + 0x0001 + 0x003a, message 0x0100.
    let (a, b) = (Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST);
    assert_eq!(icmpv6_checksum(a, b, &[0x01]), !0x013d_u16);
}
