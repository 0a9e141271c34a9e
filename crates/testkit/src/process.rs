//! The line a node prints on stdout once it serves: `listening http=ADDR raft=ADDR|off`.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;
use std::time::Duration;

/// The addresses a node announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listening {
    /// Its GOPROXY front end (`host:port`).
    pub http: String,
    /// Its node-to-node listener, `None` when it opened none.
    pub raft: Option<String>,
}

/// Parses a `listening http=… raft=…` line; `None` for any other line.
pub fn parse(line: &str) -> Option<Listening> {
    let rest = line.strip_prefix("listening ")?;
    let field = |name: &str| {
        rest.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .map(str::to_string)
    };
    Some(Listening {
        http: field("http=")?,
        raft: field("raft=").filter(|raft| raft != "off"),
    })
}

/// Reads `stdout` (on a thread, to its end) until the listening line, for at most `timeout`.
pub fn wait(stdout: impl Read + Send + 'static, timeout: Duration) -> Option<Listening> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(listening) = parse(&line) {
                let _ = tx.send(listening);
            }
        }
    });
    rx.recv_timeout(timeout).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_names_both_listeners() {
        assert_eq!(
            parse("listening http=127.0.0.1:80 raft=127.0.0.1:70"),
            Some(Listening {
                http: "127.0.0.1:80".into(),
                raft: Some("127.0.0.1:70".into())
            })
        );
        assert_eq!(
            parse("listening http=[::1]:80 raft=off").unwrap().raft,
            None
        );
        assert_eq!(parse("serving"), None);
    }
}
