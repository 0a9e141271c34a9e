//! `Topology::impair` on a real lab network: what node 1 sends is dropped (20%) and delayed
//! (50 ms) and nothing else is, a TCP transfer still completes across the impaired link, and
//! `heal` gives the fast, lossless link back. On this machine's kernel (no `sch_netem`) this
//! exercises the user-space relay; on others, tc netem.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use goproxy_lab::netns::{self, Netns};
use goproxy_lab::topology::{node_ip, Topology};

const ECHO_PORT: u16 = 7007;
const BULK_PORT: u16 = 7008;
const BULK_BYTES: usize = 256 * 1024;
const PROBES: u32 = 300;

/// A UDP echo server and a TCP server that sends `BULK_BYTES` to each connection, in `ns`.
fn start_servers(ns: &Netns) {
    let ns = ns.clone();
    let (ready, started) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        ns.enter().unwrap();
        let udp = UdpSocket::bind(("0.0.0.0", ECHO_PORT)).unwrap();
        let tcp = TcpListener::bind(("0.0.0.0", BULK_PORT)).unwrap();
        ready.send(()).unwrap();
        std::thread::spawn(move || {
            for mut conn in tcp.incoming().flatten() {
                let _ = conn.write_all(&vec![7u8; BULK_BYTES]);
            }
        });
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            let _ = udp.send_to(&buf[..n], from);
        }
    });
    started.recv_timeout(Duration::from_secs(5)).unwrap();
}

/// Link figures seen from the client: echo round trips and how many probes were lost.
#[derive(Debug)]
struct Probed {
    answered: u32,
    min_rtt: Duration,
    median_rtt: Duration,
}

/// Sends `PROBES` numbered UDP probes to `to`, 5 ms apart, and collects the echoes.
fn probe(client: &Netns, to: SocketAddr) -> Probed {
    let client = client.clone();
    std::thread::spawn(move || {
        client.enter().unwrap();
        let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        let start = Instant::now();
        let mut sent_at = Vec::new();
        let mut rtts = Vec::new();
        let mut buf = [0u8; 64];
        let deadline = Duration::from_millis(5) * PROBES + Duration::from_millis(500);
        while start.elapsed() < deadline {
            let due = Duration::from_millis(5) * sent_at.len() as u32;
            if sent_at.len() < PROBES as usize && start.elapsed() >= due {
                socket
                    .send_to(&(sent_at.len() as u32).to_be_bytes(), to)
                    .unwrap();
                sent_at.push(Instant::now());
            }
            if let Ok((4, _)) = socket.recv_from(&mut buf) {
                let seq = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
                rtts.push(sent_at[seq].elapsed());
            }
        }
        rtts.sort();
        Probed {
            answered: rtts.len() as u32,
            min_rtt: rtts.first().copied().unwrap_or_default(),
            median_rtt: rtts.get(rtts.len() / 2).copied().unwrap_or_default(),
        }
    })
    .join()
    .unwrap()
}

/// Reads everything the bulk server sends; the byte count and how long it took.
fn bulk(client: &Netns, from: SocketAddr) -> (usize, Duration) {
    let client = client.clone();
    std::thread::spawn(move || {
        client.enter().unwrap();
        let start = Instant::now();
        let mut conn = TcpStream::connect_timeout(&from, Duration::from_secs(10)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut got = Vec::new();
        conn.read_to_end(&mut got).unwrap();
        (got.len(), start.elapsed())
    })
    .join()
    .unwrap()
}

#[test]
fn impaired_node_loses_and_delays_what_it_sends_until_healed() {
    if !netns::is_root() {
        eprintln!("skipping: the lab needs root (network namespaces)");
        return;
    }
    let topology = Topology::build(&format!("gpim{}", std::process::id()), 2).unwrap();
    start_servers(topology.node(1));
    let echo = SocketAddr::from((node_ip(1), ECHO_PORT));
    let clean = probe(topology.client(), echo);
    println!("clean link: {clean:?}");
    assert!(clean.answered >= PROBES - 3, "{clean:?}");
    assert!(clean.median_rtt < Duration::from_millis(40), "{clean:?}");

    let seed = 20261126;
    let applied = topology
        .impair(1, 20, Duration::from_millis(50), seed)
        .unwrap();
    println!("seed {seed}: {applied}");
    let impaired = probe(topology.client(), echo);
    println!("impaired link: {impaired:?}");
    // Only the echo (node 1's frame) is impaired: 80% expected back, each at least 50 ms late.
    let answered = impaired.answered as f64 / PROBES as f64;
    assert!((0.70..=0.90).contains(&answered), "{impaired:?}");
    assert!(
        impaired.min_rtt >= Duration::from_millis(50),
        "{impaired:?}"
    );
    let (bytes, took) = bulk(topology.client(), SocketAddr::from((node_ip(1), BULK_PORT)));
    println!("TCP across the impaired link: {bytes} bytes in {took:?}");
    assert_eq!(bytes, BULK_BYTES);
    if let Some(report) = topology.impairment_report(1) {
        println!("{report}");
        assert!(report.contains(" 0 oversize, 0 errors"), "{report}");
    }
    // Node 2 shares the segment and is not impaired.
    start_servers(topology.node(2));
    let other = probe(topology.client(), SocketAddr::from((node_ip(2), ECHO_PORT)));
    assert!(other.answered >= PROBES - 3, "node 2: {other:?}");
    assert!(
        other.median_rtt < Duration::from_millis(40),
        "node 2: {other:?}"
    );

    topology.heal(1);
    let healed = probe(topology.client(), echo);
    println!("healed link: {healed:?}");
    assert!(healed.answered >= PROBES - 3, "{healed:?}");
    assert!(healed.median_rtt < Duration::from_millis(40), "{healed:?}");
    assert_eq!(topology.impairment_report(1), None);
}
