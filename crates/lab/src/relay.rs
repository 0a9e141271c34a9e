//! A user-space netem: an Ethernet relay that stands between one node and the bridge and
//! drops and delays what the node sends, for kernels built without `sch_netem`.
//!
//! ```text
//!   node eth0 ═ p{i} ──relay──▶ r{i} ═ q{i} ── br0      (node → bridge: loss, then delay)
//!                    ◀──────────                         (bridge → node: as is)
//! ```
//!
//! [`crate::topology::Topology::impair`] takes `p{i}` off the bridge and puts a second veth pair
//! in its place; this module copies frames between `p{i}` and `r{i}` with two raw `AF_PACKET`
//! sockets (from `pnet_datalink`: the workspace forbids `unsafe`). The path stays one L2
//! segment: ARP, the VIP's gratuitous ARP and the node's TCP all cross it, impaired like on a
//! bad link. A raw socket also sees the frames it sends itself; the relay tells them apart by
//! source address (only the node's frames enter at `p{i}`, only others' at `r{i}`).
//! The decisions themselves are in [`crate::impairment`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use pnet_datalink::{Channel, DataLinkReceiver, DataLinkSender, MacAddr};

use crate::impairment::{DelayLine, Impairment};
use crate::netns::Netns;

/// How often the relay's threads look at the stop flag when no frame arrives.
const POLL: Duration = Duration::from_millis(50);
/// Larger than any frame the relay may forward (offloads are off on both sides): a bigger
/// one is counted as oversize instead of being truncated.
const READ_BUFFER: usize = 65_536;
/// The largest frame an MTU-1500 Ethernet link carries (without the FCS).
const MAX_FRAME: usize = 1_514;

/// What the relay did, counted since it started.
#[derive(Debug, Default)]
pub struct RelayCounters {
    /// Frames the node sent.
    pub sent_by_node: AtomicU64,
    /// Of those, dropped on purpose.
    pub dropped: AtomicU64,
    /// Of those, delivered to the bridge after the delay.
    pub delivered: AtomicU64,
    /// Frames from the bridge handed to the node.
    pub to_node: AtomicU64,
    /// Frames larger than an Ethernet frame (a segmentation offload left on): not forwarded.
    pub oversize: AtomicU64,
    /// Socket errors other than the poll timeout.
    pub errors: AtomicU64,
}

/// A running relay; dropping it stops its threads (the caller rewires the links).
#[derive(Debug)]
pub struct Relay {
    stop: Arc<AtomicBool>,
    counters: Arc<RelayCounters>,
    threads: Vec<JoinHandle<()>>,
    loss_percent: u8,
    delay: Duration,
}

impl Relay {
    /// Starts relaying between `node_side` (whose peer is the node's interface, MAC
    /// `node_mac`) and `bridge_side` (whose peer is on the bridge), both in namespace `ns`.
    pub fn start(
        ns: &Netns,
        node_side: &str,
        bridge_side: &str,
        node_mac: MacAddr,
        loss_percent: u8,
        delay: Duration,
        seed: u64,
    ) -> anyhow::Result<Relay> {
        let (ns, names) = (ns.clone(), [node_side.to_string(), bridge_side.to_string()]);
        let [node, bridge] = std::thread::spawn(move || -> anyhow::Result<_> {
            ns.enter()?;
            Ok(names.map(|name| open(&name)))
        })
        .join()
        .map_err(|_| anyhow::anyhow!("relay set-up thread panicked"))??;
        let ((to_node, from_node), (to_bridge, from_bridge)) = (node?, bridge?);
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(RelayCounters::default());
        let (in_flight, line) = mpsc::channel();
        let mut relay = Relay {
            stop: stop.clone(),
            counters: counters.clone(),
            threads: Vec::new(),
            loss_percent,
            delay,
        };
        let impairment = Impairment::new(loss_percent, delay, seed);
        let (s, c) = (stop.clone(), counters.clone());
        relay.threads.push(spawn("relay-egress", move || {
            take_from_node(from_node, node_mac, impairment, in_flight, &s, &c)
        })?);
        let (s, c) = (stop.clone(), counters.clone());
        relay.threads.push(spawn("relay-delay", move || {
            deliver_when_due(line, to_bridge, delay, &s, &c)
        })?);
        relay.threads.push(spawn("relay-ingress", move || {
            hand_to_node(from_bridge, to_node, node_mac, &stop, &counters)
        })?);
        Ok(relay)
    }

    /// One line for a scenario's note: what was configured and what the relay measured.
    pub fn report(&self) -> String {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let c = &self.counters;
        let (sent, dropped) = (get(&c.sent_by_node), get(&c.dropped));
        let rate = if sent == 0 {
            0.0
        } else {
            dropped as f64 * 100.0 / sent as f64
        };
        format!(
            "user-space netem loss {}% delay {}ms: {dropped} of {sent} frames dropped ({rate:.1}%), \
             {} delivered, {} to the node, {} oversize, {} errors",
            self.loss_percent,
            self.delay.as_millis(),
            get(&c.delivered),
            get(&c.to_node),
            get(&c.oversize),
            get(&c.errors),
        )
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

type Socket = (Box<dyn DataLinkSender>, Box<dyn DataLinkReceiver>);

/// A raw socket on interface `name` of the calling thread's namespace.
fn open(name: &str) -> anyhow::Result<Socket> {
    let interface = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == name)
        .with_context(|| format!("no interface {name}"))?;
    let config = pnet_datalink::Config {
        read_timeout: Some(POLL),
        write_timeout: Some(POLL),
        read_buffer_size: READ_BUFFER,
        promiscuous: true,
        ..Default::default()
    };
    match pnet_datalink::channel(&interface, config)
        .with_context(|| format!("raw socket on {name}"))?
    {
        Channel::Ethernet(tx, rx) => Ok((tx, rx)),
        _ => bail!("{name} is not an Ethernet interface"),
    }
}

fn spawn(name: &str, run: impl FnOnce() + Send + 'static) -> anyhow::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(run)
        .with_context(|| format!("starting {name}"))
}

fn source(frame: &[u8]) -> Option<MacAddr> {
    let s = frame.get(6..12)?;
    Some(MacAddr::new(s[0], s[1], s[2], s[3], s[4], s[5]))
}

/// Reads the next frame; `None` on the poll timeout or an error (counted, then a pause so a
/// vanished interface does not spin the thread).
fn next_frame<'a>(rx: &'a mut dyn DataLinkReceiver, counters: &RelayCounters) -> Option<&'a [u8]> {
    match rx.next() {
        Ok(frame) => Some(frame),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => None,
        Err(_) => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(POLL);
            None
        }
    }
}

fn send(tx: &mut dyn DataLinkSender, frame: &[u8], counters: &RelayCounters) -> bool {
    if frame.len() > MAX_FRAME {
        counters.oversize.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    match tx.send_to(frame, None) {
        Some(Ok(())) => true,
        _ => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

/// Node → relay: drops frames at random, timestamps the rest into the delay line.
fn take_from_node(
    mut rx: Box<dyn DataLinkReceiver>,
    node_mac: MacAddr,
    mut impairment: Impairment,
    in_flight: mpsc::Sender<(Instant, Vec<u8>)>,
    stop: &AtomicBool,
    counters: &RelayCounters,
) {
    while !stop.load(Ordering::Relaxed) {
        let Some(frame) = next_frame(rx.as_mut(), counters) else {
            continue;
        };
        if source(frame) != Some(node_mac) {
            continue; // what the relay itself sent toward the node
        }
        counters.sent_by_node.fetch_add(1, Ordering::Relaxed);
        if !impairment.admit() {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
        } else if in_flight.send((Instant::now(), frame.to_vec())).is_err() {
            return;
        }
    }
}

/// Relay → bridge: releases each surviving frame when its delay is over, in order.
fn deliver_when_due(
    arrivals: mpsc::Receiver<(Instant, Vec<u8>)>,
    mut tx: Box<dyn DataLinkSender>,
    delay: Duration,
    stop: &AtomicBool,
    counters: &RelayCounters,
) {
    let mut line: DelayLine<Vec<u8>> = DelayLine::new(delay);
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while let Some(frame) = line.pop_due(now) {
            if send(tx.as_mut(), &frame, counters) {
                counters.delivered.fetch_add(1, Ordering::Relaxed);
            }
        }
        let wait = line
            .next_due()
            .map_or(POLL, |due| due.saturating_duration_since(now).min(POLL));
        match arrivals.recv_timeout(wait) {
            Ok((entered, frame)) => line.push(entered, frame),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Bridge → node: everything from others, unchanged.
fn hand_to_node(
    mut rx: Box<dyn DataLinkReceiver>,
    mut tx: Box<dyn DataLinkSender>,
    node_mac: MacAddr,
    stop: &AtomicBool,
    counters: &RelayCounters,
) {
    while !stop.load(Ordering::Relaxed) {
        let Some(frame) = next_frame(rx.as_mut(), counters) else {
            continue;
        };
        if source(frame) == Some(node_mac) {
            continue; // the node's own frames, on their way out through this interface
        }
        if send(tx.as_mut(), frame, counters) {
            counters.to_node.fetch_add(1, Ordering::Relaxed);
        }
    }
}
