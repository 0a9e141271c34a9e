#![allow(dead_code)] // shared by several test crates, each using a part
//! Watching from the outside: frames captured in namespace b, address events in namespace a.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pnet_datalink::Channel;

use super::lab::enter_netns;

/// How often the capture thread looks at its stop flag.
const CAPTURE_POLL: Duration = Duration::from_millis(20);

/// Every ARP and ICMPv6 neighbour advertisement frame arriving on an interface.
pub struct Capture {
    stop: Arc<AtomicBool>,
    frames: Arc<Mutex<Vec<Vec<u8>>>>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    /// Starts capturing on `dev` in namespace `ns`; returns once the socket is open.
    pub fn start(ns: &str, dev: &str) -> Capture {
        let (ns, dev) = (ns.to_string(), dev.to_string());
        let stop = Arc::new(AtomicBool::new(false));
        let frames = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stopped, sink) = (Arc::clone(&stop), Arc::clone(&frames));
        let thread = std::thread::spawn(move || {
            enter_netns(&ns);
            let interface = pnet_datalink::interfaces()
                .into_iter()
                .find(|i| i.name == dev)
                .expect("capture interface");
            let config = pnet_datalink::Config {
                read_timeout: Some(CAPTURE_POLL),
                ..Default::default()
            };
            let Ok(Channel::Ethernet(_, mut rx)) = pnet_datalink::channel(&interface, config)
            else {
                panic!("capture socket");
            };
            ready_tx.send(()).expect("ready");
            while !stopped.load(Ordering::Relaxed) {
                if let Ok(frame) = rx.next() {
                    if is_arp(frame) || is_na(frame) {
                        sink.lock().expect("frames").push(frame.to_vec());
                    }
                }
            }
        });
        ready_rx.recv().expect("capture thread started");
        Capture {
            stop,
            frames,
            thread: Some(thread),
        }
    }

    /// The frames seen so far (capture goes on).
    pub fn frames(&self) -> Vec<Vec<u8>> {
        self.frames.lock().expect("frames").clone()
    }

    /// Waits until the frames seen so far satisfy `enough`, or `timeout` passes; then keeps
    /// capturing for `linger` more (so frames beyond the expected ones are seen too), stops and
    /// returns every frame.
    pub fn stop_when(
        self,
        timeout: Duration,
        linger: Duration,
        enough: impl Fn(&[Vec<u8>]) -> bool,
    ) -> Vec<Vec<u8>> {
        let end = Instant::now() + timeout;
        while !enough(&self.frames()) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(linger);
        self.stop()
    }

    /// Stops and returns the frames seen.
    pub fn stop(mut self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().expect("capture thread");
        thread.join().expect("capture thread panicked");
        std::mem::take(&mut *self.frames.lock().expect("frames"))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Ethertype ARP.
pub fn is_arp(frame: &[u8]) -> bool {
    frame.len() >= 42 && frame[12..14] == [0x08, 0x06]
}

/// IPv6 / ICMPv6 / neighbour advertisement.
pub fn is_na(frame: &[u8]) -> bool {
    frame.len() >= 78 && frame[12..14] == [0x86, 0xdd] && frame[20] == 58 && frame[54] == 136
}

/// `ip monitor address` in a namespace, each line stamped with when it arrived.
pub struct AddrMonitor {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl AddrMonitor {
    /// Starts `ip -n <ns> monitor address`.
    pub fn start(ns: &str) -> AddrMonitor {
        let mut child = Command::new("ip")
            .args(["-n", ns, "monitor", "address"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("ip monitor");
        let stdout = child.stdout.take().expect("monitor stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        AddrMonitor { child, lines }
    }

    /// The arrival time of the first line matching `pred` within `timeout`.
    pub fn wait(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<Instant> {
        let end = Instant::now() + timeout;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok((at, line)) if pred(&line) => return Some(at),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }
}

impl Drop for AddrMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
