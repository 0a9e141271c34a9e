//! `goproxy-ha cluster …`: status over HTTP, membership changes and leadership transfer over the admin gRPC
//! service of the node-to-node listener.

use std::time::Duration;

use anyhow::{bail, Context};
use goproxy_consensus::wire::admin::{self, admin_service_client::AdminServiceClient};

/// Times a membership change may be redirected to the leader.
const MAX_REDIRECTS: usize = 3;
/// Bound on any admin request.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Prints every member's view of the cluster, starting from the node at `http`.
pub async fn status(http: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let first = fetch_status(&client, http)
        .await
        .with_context(|| format!("asking {http}"))?;
    let members = first["members"].as_array().cloned().unwrap_or_default();
    let mut rows = Vec::new();
    for member in &members {
        let addr = member["http_addr"].as_str().unwrap_or_default();
        rows.push((member.clone(), fetch_status(&client, addr).await.ok()));
    }
    let leader_last_log = rows
        .iter()
        .filter_map(|(_, s)| s.as_ref())
        .find(|s| s["state"] == "Leader")
        .and_then(|s| s["last_log_index"].as_u64());
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
    for (member, status) in rows {
        let id = member["id"].as_u64().unwrap_or_default();
        let (http, raft) = (
            member["http_addr"].as_str().unwrap_or("?"),
            member["raft_addr"].as_str().unwrap_or("?"),
        );
        let Some(s) = status else {
            println!(
                "{id:<4} {:<10} {:>5} {:>9} {:>9} {:>6} {:<9} {:>8} {:>8} {http:<22} {raft:<22}",
                "unreachable", "-", "-", "-", "-", "-", "-", "-"
            );
            continue;
        };
        let applied = s["last_applied"].as_u64();
        let lag = match (leader_last_log, applied) {
            (Some(last), Some(applied)) => last.saturating_sub(applied).to_string(),
            _ => "-".into(),
        };
        println!(
            "{id:<4} {:<10} {:>5} {:>9} {:>9} {:>6} {:<9} {:>8} {:>8} {http:<22} {raft:<22}",
            s["state"].as_str().unwrap_or("?"),
            s["current_term"].to_string(),
            s["last_log_index"].to_string(),
            s["last_applied"].to_string(),
            lag,
            s["replication_mode"].as_str().unwrap_or("?"),
            s["backlog_blobs"].to_string(),
            s["missing_blobs"].to_string(),
        );
    }
    Ok(())
}

/// One member's `/cluster/status` as JSON.
pub async fn fetch_status(
    client: &reqwest::Client,
    http: &str,
) -> anyhow::Result<serde_json::Value> {
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

/// Sends `change` to the node at `via` (a Raft address), following leader redirects.
pub async fn change(via: &str, change: Change) -> anyhow::Result<()> {
    let mut target = via.to_string();
    for _ in 0..MAX_REDIRECTS {
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
        if reply.leader_raft_addr.is_empty() {
            bail!("refused by {target}: {}", reply.message);
        }
        target = reply.leader_raft_addr;
    }
    bail!("no leader accepted the change after {MAX_REDIRECTS} redirects")
}
