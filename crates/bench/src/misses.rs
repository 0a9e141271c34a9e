//! Concurrent misses of one artifact: clients that connect first and then send the same
//! GET at one instant (a barrier), so every request reaches the proxy before any fill ends.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long one client waits for its answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// What a burst of identical misses saw.
#[derive(Debug, Clone)]
pub struct Burst {
    /// From the barrier to the last answer (complete or failed).
    pub all_answered: Duration,
    /// Clients that got no 200 with a body.
    pub failed: usize,
    /// Why the first of them failed.
    pub first_error: Option<String>,
}

/// Sends `clients` simultaneous `GET /path` to `base` (`http://host:port`) over separate
/// connections; counts the answers that are not a 200 with a body.
pub fn burst(base: &str, path: &str, clients: usize) -> anyhow::Result<Burst> {
    let addr = base
        .strip_prefix("http://")
        .context("a plain http:// base URL")?
        .to_string();
    let request =
        format!("GET /{path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").into_bytes();
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut threads = Vec::new();
    for _ in 0..clients {
        let (addr, request, barrier) = (addr.clone(), request.clone(), barrier.clone());
        threads.push(std::thread::spawn(move || {
            let stream = TcpStream::connect(&addr);
            barrier.wait();
            let answered = stream.map_err(anyhow::Error::from).and_then(|mut stream| {
                stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
                stream.write_all(&request)?;
                let mut answer = Vec::new();
                stream.read_to_end(&mut answer)?;
                Ok(answer)
            });
            (Instant::now(), answered.and_then(|a| check_answer(&a)))
        }));
    }
    barrier.wait();
    let started = Instant::now();
    let mut burst = Burst {
        all_answered: Duration::ZERO,
        failed: 0,
        first_error: None,
    };
    for thread in threads {
        let (done, answered) = thread
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))?;
        burst.all_answered = burst
            .all_answered
            .max(done.saturating_duration_since(started));
        if let Err(e) = answered {
            burst.failed += 1;
            burst.first_error.get_or_insert(format!("{e:#}"));
        }
    }
    Ok(burst)
}

/// A `200` status line and a non-empty body.
fn check_answer(answer: &[u8]) -> anyhow::Result<()> {
    let head_end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("an answer without a complete head")?;
    let status = String::from_utf8_lossy(&answer[..answer.len().min(12)]).to_string();
    if !status.starts_with("HTTP/1.1 200") {
        bail!("answer {status:?}");
    }
    if answer.len() <= head_end + 4 {
        bail!("a 200 with an empty body");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_a_200_with_a_body() {
        assert!(check_answer(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nPK").is_ok());
        assert!(check_answer(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(check_answer(b"HTTP/1.1 500 Internal\r\n\r\nno").is_err());
        assert!(check_answer(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
