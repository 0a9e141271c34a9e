//! Ports for processes that must know each other's addresses before they start.
//!
//! A port the kernel hands out for `bind(0)` comes from the ephemeral range, the same range
//! outgoing connections take their source ports from: between choosing it and the node
//! binding it, any connection on the machine may take it ("Address already in use", seen in
//! CI once nodes kept connections to every peer). These ports are drawn below that range, so
//! only another test choosing the same one can collide, and each is checked free first.

use std::net::TcpListener;

/// Lowest port drawn.
const LOW: u16 = 10_000;

/// `n` distinct ports on 127.0.0.1 that were free a moment ago, below the ephemeral range.
pub fn unused(n: usize) -> Vec<u16> {
    let high = ephemeral_low().max(LOW + 1000);
    let mut state = seed();
    let mut held: Vec<TcpListener> = Vec::with_capacity(n);
    let mut attempts = 0;
    while held.len() < n {
        attempts += 1;
        assert!(attempts < 100_000, "no free port below {high}");
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let port = LOW + (state % u64::from(high - LOW)) as u16;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(listener);
        }
    }
    held.iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

/// The first port of the kernel's ephemeral range (32768 when unreadable).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (nanos ^ (u64::from(std::process::id()) << 32)) | 1
}

#[cfg(test)]
mod tests {
    #[test]
    fn ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let ports = super::unused(16);
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 16);
        for port in ports {
            assert!(port >= super::LOW && port < super::ephemeral_low().max(super::LOW + 1000));
            std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        }
    }
}
