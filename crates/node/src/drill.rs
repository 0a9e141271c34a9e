//! `goproxy-ha drill`, part two: a planned leadership transfer under a live probe.
//!
//! 1. Read every member's `/cluster/status` and refuse unless the cluster is healthy
//!    (`goproxy_status::assess`).
//! 2. Probe the given URL (normally through the VIP) on a fixed schedule, a new connection per
//!    request so a moved VIP is seen, and refuse unless the probe succeeds for `settle` first.
//! 3. Ask the leader to hand over (`cluster transfer-leader`), then wait until the target leads
//!    and, with a VIP, holds it while the old leader does not, and the probe has succeeded
//!    for `settle` again.
//! 4. Report the client-visible outage (`goproxy-availability`), the failed requests and the new
//!    holder.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use goproxy_availability::{self as availability, ProbeRecord};
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

/// How long stopping the probe waits for its requests in flight.
const PROBE_DRAIN: Duration = Duration::from_secs(2);

use crate::admin;
use goproxy_status::{MemberView, NodeStatus, Plan, Role};

/// What `goproxy-ha drill` was asked to do.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// HTTP address of any member.
    pub node: String,
    /// The URL the probe requests (through the VIP).
    pub probe: String,
    /// The member that should lead afterwards (default: the most caught-up follower).
    pub to: Option<u64>,
    /// Time between probe requests.
    pub interval: Duration,
    /// Bound on one probe request.
    pub request_timeout: Duration,
    /// How many entries a member may lag the leader's log.
    pub max_lag: u64,
    /// How long the probe must succeed before and after the transfer.
    pub settle: Duration,
    /// Bound on the whole drill.
    pub timeout: Duration,
    /// The admin identity for the transfer.
    pub tls: crate::admin::AdminTls,
}

/// The outcome, printed as text or JSON.
#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    /// Leader before the drill.
    pub old_leader: u64,
    /// Leader after it.
    pub new_leader: u64,
    /// Which member holds the VIP afterwards (`None`: no VIP configured).
    pub vip_holder: Option<u64>,
    /// How long the transfer request took.
    pub transfer_ms: u64,
    /// Longest gap between successful probe answers, from the last one before the transfer.
    pub outage_ms: u64,
    /// Probe requests sent while the drill ran.
    pub probes: usize,
    /// Probe requests that failed.
    pub failed: usize,
    /// The URL probed.
    pub probe: String,
}

impl std::fmt::Display for DrillReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let holder = self
            .vip_holder
            .map_or("no VIP configured".to_string(), |id| format!("node {id}"));
        write!(
            f,
            "drill: leadership moved from node {} to node {} in {} ms; VIP holder: {holder}\n\
             probe {}: outage {} ms, {} of {} requests failed",
            self.old_leader,
            self.new_leader,
            self.transfer_ms,
            self.probe,
            self.outage_ms,
            self.failed,
            self.probes
        )
    }
}

/// Runs the drill; refuses with every problem found when the cluster is not healthy.
pub async fn run(options: &DrillOptions) -> anyhow::Result<DrillReport> {
    // A bad admin certificate is found before anything is probed.
    options.tls.transport()?;
    let deadline = Instant::now() + options.timeout;
    let client = admin::status_client()?;
    let members = admin::members(&client, &options.node).await?;
    let plan =
        goproxy_status::assess(&members, options.to, options.max_lag).map_err(|problems| {
            anyhow::anyhow!(
                "refusing to drill, the cluster is not healthy:\n  - {}",
                problems.join("\n  - ")
            )
        })?;
    println!(
        "drill: node {} leads; handing over to node {} under a probe of {} every {:?}",
        plan.leader, plan.target, options.probe, options.interval
    );
    let probe = Probe::start(options)?;
    let result = drill(&client, options, &plan, &probe, deadline).await;
    let records = probe.stop().await;
    let (transfer_at, transfer_ms, vip_holder) = result?;
    let outage = availability::outage(&records, transfer_at)
        .context("the probe never succeeded after the transfer")?;
    Ok(DrillReport {
        old_leader: plan.leader,
        new_leader: plan.target,
        vip_holder,
        transfer_ms,
        outage_ms: outage.as_millis() as u64,
        probes: records.len(),
        failed: availability::failures(&records),
        probe: options.probe.clone(),
    })
}

/// Steps 2 and 3; returns when the transfer began (probe time), how long it took, and the
/// VIP holder.
async fn drill(
    client: &reqwest::Client,
    options: &DrillOptions,
    plan: &Plan,
    probe: &Probe,
    deadline: Instant,
) -> anyhow::Result<(Duration, u64, Option<u64>)> {
    tokio::time::sleep(options.settle).await;
    let before = probe.records();
    if before.is_empty() || !availability::recovered(&before, before.len()) {
        let failed = availability::failures(&before);
        bail!(
            "refusing to drill: {failed} of {} probe requests to {} failed before the transfer",
            before.len(),
            options.probe
        );
    }
    let transfer_at = probe.now();
    let started = Instant::now();
    let remaining = deadline.saturating_duration_since(started);
    tokio::time::timeout(
        remaining,
        admin::change(
            &plan.leader_raft,
            admin::Change::TransferLeader { id: plan.target },
            &options.tls,
        ),
    )
    .await
    .context("the transfer did not finish before --timeout")??;
    let transfer_ms = started.elapsed().as_millis() as u64;
    let holder = loop {
        let members = admin::members(client, &options.node).await?;
        match settled(&members, plan) {
            Ok(holder) => break holder,
            Err(why) if Instant::now() >= deadline => {
                bail!(
                    "node {} did not take over before --timeout: {why}",
                    plan.target
                )
            }
            Err(_) => tokio::time::sleep(options.interval.max(Duration::from_millis(20))).await,
        }
    };
    // The probe must succeed for `settle` in a row after the move.
    let streak = (options.settle.as_millis() / options.interval.as_millis().max(1)).max(1);
    loop {
        let records = probe.records();
        let after: Vec<ProbeRecord> = records
            .into_iter()
            .filter(|r| r.started >= transfer_at)
            .collect();
        if availability::recovered(&after, streak as usize) {
            break;
        }
        if Instant::now() >= deadline {
            bail!(
                "the probe of {} did not recover before --timeout ({} of {} failed since the transfer)",
                options.probe,
                availability::failures(&after),
                after.len()
            );
        }
        tokio::time::sleep(options.interval).await;
    }
    Ok((transfer_at, transfer_ms, holder))
}

/// Whether the target leads (and, with a VIP, alone holds it): the VIP holder, or why not yet.
fn settled(members: &[MemberView], plan: &Plan) -> Result<Option<u64>, String> {
    let view = |id: u64| -> Result<&NodeStatus, String> {
        let member = members
            .iter()
            .find(|m| m.id == id)
            .ok_or_else(|| format!("node {id} left the cluster"))?;
        member.status.as_ref().map_err(Clone::clone)
    };
    let target = view(plan.target)?;
    if target.state != Role::Leader {
        return Err(format!("node {} is {}", plan.target, target.state));
    }
    if !plan.vip {
        return Ok(None);
    }
    let holders: Vec<u64> = members
        .iter()
        .filter(|m| m.status.as_ref().is_ok_and(|s| s.vip_held == Some(true)))
        .map(|m| m.id)
        .collect();
    match holders.as_slice() {
        [one] if *one == plan.target => Ok(Some(*one)),
        other => Err(format!("VIP holders {other:?}")),
    }
}

/// Requests the probe URL every `interval` on a fixed schedule (a slow request never delays
/// the next), each on a new connection.
struct Probe {
    epoch: Instant,
    records: Arc<Mutex<Vec<ProbeRecord>>>,
    task: JoinHandle<()>,
    /// The requests in flight.
    requests: TaskTracker,
}

impl Probe {
    fn start(options: &DrillOptions) -> anyhow::Result<Probe> {
        let client = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .pool_max_idle_per_host(0)
            .build()?;
        let url = reqwest::Url::parse(&options.probe)
            .with_context(|| format!("--probe {:?}", options.probe))?;
        let epoch = Instant::now();
        let records = Arc::new(Mutex::new(Vec::new()));
        let (interval, sink) = (options.interval, records.clone());
        let requests = TaskTracker::new();
        let tracker = requests.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                ticks.tick().await;
                let (client, url, sink) = (client.clone(), url.clone(), sink.clone());
                tracker.spawn(async move {
                    let started = epoch.elapsed();
                    let ok = match client.get(url).send().await {
                        Ok(response) => {
                            let success = response.status().is_success();
                            success && response.bytes().await.is_ok()
                        }
                        Err(_) => false,
                    };
                    let record = ProbeRecord {
                        started,
                        finished: epoch.elapsed(),
                        ok,
                    };
                    sink.lock().unwrap_or_else(|e| e.into_inner()).push(record);
                });
            }
        });
        Ok(Probe {
            epoch,
            records,
            task,
            requests,
        })
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Finished requests, by start time.
    fn records(&self) -> Vec<ProbeRecord> {
        let mut records = self
            .records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        records.sort_by_key(|r| r.started);
        records
    }

    /// Stops sending and waits (bounded by one request timeout) for requests in flight.
    async fn stop(mut self) -> Vec<ProbeRecord> {
        self.task.abort();
        let _ = (&mut self.task).await;
        self.requests.close();
        let _ = tokio::time::timeout(PROBE_DRAIN, self.requests.wait()).await;
        self.records()
    }
}
