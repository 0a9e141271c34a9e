//! `goproxy-ha cluster …`: status over HTTP, membership changes and leadership transfer over the admin gRPC
//! service of the node-to-node listener.

use std::time::Duration;

use anyhow::{bail, Context};
use goproxy_consensus::wire::admin::{self, admin_service_client::AdminServiceClient};

use crate::drill_check::MemberView;

/// Times a membership change may be redirected to the leader.
const MAX_REDIRECTS: usize = 3;
/// Bound on any admin request.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a change waits for a node to learn who leads (an election is under way).
const LEADER_UNKNOWN_WAIT: Duration = Duration::from_secs(5);
/// How often it asks again meanwhile.
const LEADER_UNKNOWN_RETRY: Duration = Duration::from_millis(200);

/// Prints every member's view of the cluster, starting from the node at `http`.
pub async fn status(http: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let members = members(&client, http).await?;
    let leader_last_log = members
        .iter()
        .filter_map(|m| m.status.as_ref().ok())
        .find(|s| s.state == "Leader")
        .and_then(|s| s.last_log_index);
    println!(
        "{:<4} {:<10} {:>5} {:>9} {:>9} {:>6} {:<9} {:>8} {:>8} {:<22} {:<22}",
        "ID",
        "ROLE",
        "TERM",
        "LAST_LOG",
        "APPLIED",
        "LAG",
        "MODE",
        "BACKLOG",
        "MISSING",
        "HTTP",
        "RAFT"
    );
    let shown = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
    for member in &members {
        let (id, http, raft) = (member.id, &member.http_addr, &member.raft_addr);
        let Ok(s) = &member.status else {
            println!(
                "{id:<4} {:<10} {:>5} {:>9} {:>9} {:>6} {:<9} {:>8} {:>8} {http:<22} {raft:<22}",
                "unreachable", "-", "-", "-", "-", "-", "-", "-"
            );
            continue;
        };
        let lag = leader_last_log
            .zip(s.last_applied)
            .map(|(last, applied)| last.saturating_sub(applied));
        println!(
            "{id:<4} {:<10} {:>5} {:>9} {:>9} {:>6} {:<9} {:>8} {:>8} {http:<22} {raft:<22}",
            s.state,
            s.current_term,
            shown(s.last_log_index),
            shown(s.last_applied),
            shown(lag),
            s.replication_mode,
            s.backlog_blobs,
            s.missing_blobs,
        );
    }
    Ok(())
}

/// Every member listed by the node at `http`, each with its own status.
pub async fn members(client: &reqwest::Client, http: &str) -> anyhow::Result<Vec<MemberView>> {
    let first = fetch_status(client, http)
        .await
        .with_context(|| format!("asking {http} for the cluster status"))?;
    let listed = first["members"].as_array().cloned().unwrap_or_default();
    let mut members = Vec::with_capacity(listed.len());
    for member in listed {
        let http_addr = member["http_addr"].as_str().unwrap_or_default().to_string();
        let status = match fetch_status(client, &http_addr).await {
            Ok(value) => serde_json::from_value(value).map_err(|e| format!("bad status: {e}")),
            Err(e) => Err(format!("{e:#}")),
        };
        members.push(MemberView {
            id: member["id"].as_u64().unwrap_or_default(),
            raft_addr: member["raft_addr"].as_str().unwrap_or_default().to_string(),
            http_addr,
            status,
        });
    }
    Ok(members)
}

/// One member's `/cluster/status` as JSON.
async fn fetch_status(client: &reqwest::Client, http: &str) -> anyhow::Result<serde_json::Value> {
    let url = format!(
        "http://{}/cluster/status",
        http.trim_start_matches("http://")
    );
    let body = client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    Ok(serde_json::from_slice(&body)?)
}

/// A membership change to send to the leader.
pub enum Change {
    /// Add node `id` (learner first, then voter).
    Join {
        /// Node id.
        id: u64,
        /// Its node-to-node gRPC address.
        raft: String,
        /// Its GOPROXY address.
        http: String,
    },
    /// Remove voter `id`.
    Leave {
        /// Node id.
        id: u64,
    },
    /// Hand leadership to voter `id`.
    TransferLeader {
        /// Node id.
        id: u64,
    },
}

/// Sends `change` to the node at `via` (a Raft address), following leader redirects. A node
/// that does not know the leader yet (an election is under way) is asked again every
/// [`LEADER_UNKNOWN_RETRY`], for at most [`LEADER_UNKNOWN_WAIT`].
pub async fn change(via: &str, change: Change) -> anyhow::Result<()> {
    let mut target = via.to_string();
    let mut redirects = 0;
    let unknown_until = tokio::time::Instant::now() + LEADER_UNKNOWN_WAIT;
    while redirects < MAX_REDIRECTS {
        let mut client = AdminServiceClient::connect(format!("http://{target}"))
            .await
            .with_context(|| format!("connecting to {target}"))?;
        let call = async {
            match &change {
                Change::Join { id, raft, http } => {
                    let request = admin::AddMemberRequest {
                        id: *id,
                        raft_addr: raft.clone(),
                        http_addr: http.clone(),
                    };
                    client.add_member(request).await
                }
                Change::Leave { id } => {
                    client
                        .remove_member(admin::RemoveMemberRequest { id: *id })
                        .await
                }
                Change::TransferLeader { id } => {
                    client
                        .transfer_leader(admin::TransferLeaderRequest { target_id: *id })
                        .await
                }
            }
        };
        let reply = tokio::time::timeout(ADMIN_TIMEOUT, call)
            .await
            .context("cluster change timed out")??
            .into_inner();
        if reply.ok {
            return Ok(());
        }
        if reply.not_leader
            && reply.leader_raft_addr.is_empty()
            && tokio::time::Instant::now() < unknown_until
        {
            tokio::time::sleep(LEADER_UNKNOWN_RETRY).await;
            continue;
        }
        if reply.leader_raft_addr.is_empty() {
            bail!("refused by {target}: {}", reply.message);
        }
        target = reply.leader_raft_addr;
        redirects += 1;
    }
    bail!("no leader accepted the change after {MAX_REDIRECTS} redirects")
}
