//! The VIP holder sampler: one thread with a route-netlink socket opened inside every node
//! namespace, asking each kernel every period whether the VIP is configured on an interface
//! that is up. A node whose link is down (powered off) does not hold it, whatever its
//! address list still says.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::LinkFlags;

use crate::analysis::HolderSample;
use crate::netns::Netns;

/// A running sampler.
pub struct HolderSampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<HolderSample>>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl HolderSampler {
    /// Samples `nodes` (node 1 first, at most 8) every `period`; times are offsets from `epoch`.
    pub fn start(
        nodes: &[Netns],
        vip: Ipv4Addr,
        interface: &str,
        period: Duration,
        epoch: Instant,
    ) -> anyhow::Result<HolderSampler> {
        anyhow::ensure!(nodes.len() <= 8, "the sampler watches at most 8 nodes");
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (nodes, interface) = (nodes.to_vec(), interface.to_string());
        let (thread_stop, sink) = (stop.clone(), samples.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let _entered = runtime.enter();
            let mut handles = Vec::new();
            for ns in &nodes {
                // The socket belongs to the namespace the thread is in when it is opened.
                ns.enter()?;
                let (connection, handle, _) = rtnetlink::new_connection()
                    .with_context(|| format!("netlink socket in {}", ns.name()))?;
                runtime.spawn(connection);
                handles.push(handle);
            }
            let _ = ready_tx.send(());
            runtime.block_on(async {
                let mut ticks = tokio::time::interval(period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                while !thread_stop.load(Ordering::Relaxed) {
                    ticks.tick().await;
                    let at = epoch.elapsed();
                    let mut holders = 0u8;
                    for (i, handle) in handles.iter().enumerate() {
                        if holds(handle, &interface, vip).await? {
                            holders |= 1 << i;
                        }
                    }
                    let span = epoch.elapsed().saturating_sub(at);
                    sink.lock()
                        .expect("holder samples")
                        .push(HolderSample { at, holders, span });
                }
                Ok(())
            })
        });
        if ready_rx.recv().is_err() {
            return Err(thread
                .join()
                .map_err(|_| anyhow::anyhow!("sampler panicked"))?
                .err()
                .unwrap_or_else(|| anyhow::anyhow!("sampler stopped")));
        }
        Ok(HolderSampler {
            stop,
            samples,
            thread: Some(thread),
        })
    }

    /// The most recent sample.
    pub fn latest(&self) -> Option<HolderSample> {
        self.samples.lock().expect("holder samples").last().copied()
    }

    /// A copy of every sample taken at or after `from`.
    pub fn since(&self, from: Duration) -> Vec<HolderSample> {
        let samples = self.samples.lock().expect("holder samples");
        let first = samples.partition_point(|s| s.at < from);
        samples[first..].to_vec()
    }

    /// Whether the sampler still runs (it stops on a netlink error).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops sampling and returns every sample (or the error that stopped it).
    pub fn stop(mut self) -> anyhow::Result<Vec<HolderSample>> {
        self.halt()?;
        Ok(std::mem::take(
            &mut *self.samples.lock().expect("holder samples"),
        ))
    }

    fn halt(&mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .map_err(|_| anyhow::anyhow!("sampler panicked"))??;
        }
        Ok(())
    }
}

impl Drop for HolderSampler {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// Whether `vip` is on `interface` and that interface is up, in the handle's namespace.
async fn holds(handle: &rtnetlink::Handle, interface: &str, vip: Ipv4Addr) -> anyhow::Result<bool> {
    let link = handle
        .link()
        .get()
        .match_name(interface.to_string())
        .execute()
        .try_next()
        .await
        .with_context(|| format!("link {interface}"))?
        .with_context(|| format!("no interface {interface}"))?;
    if !link.header.flags.contains(LinkFlags::Up) {
        return Ok(false);
    }
    let addresses: Vec<AddressMessage> = handle
        .address()
        .get()
        .set_link_index_filter(link.header.index)
        .execute()
        .try_collect()
        .await
        .context("address dump")?;
    Ok(addresses.iter().any(|m| {
        m.header.index == link.header.index
            && m.attributes
                .iter()
                .any(|a| matches!(a, AddressAttribute::Local(IpAddr::V4(ip)) if *ip == vip))
    }))
}
