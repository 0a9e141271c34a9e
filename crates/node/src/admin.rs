//! `goproxy-ha cluster …`: status over HTTP, membership changes and leadership transfer over the admin gRPC
//! service of the node-to-node listener.

use std::time::Duration;

use anyhow::{bail, Context};
use goproxy_consensus::wire::admin::{self, admin_service_client::AdminServiceClient};
use goproxy_rpc::{Channels, PeerName, Transport};
use goproxy_status::{MemberView, NodeStatus};

use clap::Args;
use std::path::PathBuf;

/// The operator's certificate for the node-to-node port (`goproxy-ha certs issue --admin NAME`).
/// Without one the CLI speaks plaintext, which only a cluster running with
/// `cluster.insecure_plaintext` accepts.
#[derive(Debug, Clone, Default, Args)]
pub struct AdminTls {
    /// Cluster CA certificate(s) the nodes' certificates chain to.
    #[arg(long, env = "GOPROXY_HA_ADMIN_CA", value_name = "FILE", global = true)]
    pub ca: Option<PathBuf>,
    /// The admin certificate.
    #[arg(
        long,
        env = "GOPROXY_HA_ADMIN_CERT",
        value_name = "FILE",
        global = true
    )]
    pub cert: Option<PathBuf>,
    /// Its private key.
    #[arg(long, env = "GOPROXY_HA_ADMIN_KEY", value_name = "FILE", global = true)]
    pub key: Option<PathBuf>,
}

/// Times a membership change may be redirected to the leader.
const MAX_REDIRECTS: usize = 3;
/// Bound on any admin request.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a change waits for a node to learn who leads (an election is under way).
const LEADER_UNKNOWN_WAIT: Duration = Duration::from_secs(5);
/// How often it asks again meanwhile.
const LEADER_UNKNOWN_RETRY: Duration = Duration::from_millis(200);

/// The client for members' `/cluster/status` and `/stats`: `GOPROXY_HA_HTTP_CA` names the
/// CA (PEM) of members serving HTTPS with a private CA; `GOPROXY_HA_TOKEN` an admin token,
/// needed when the cluster does not let anonymous clients in.
pub fn status_client() -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(5));
    if let Ok(token) = std::env::var("GOPROXY_HA_TOKEN") {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .context("GOPROXY_HA_TOKEN is not a valid token")?;
        value.set_sensitive(true);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, value);
        builder = builder.default_headers(headers);
    }
    if let Some(path) = std::env::var_os("GOPROXY_HA_HTTP_CA") {
        let pem = std::fs::read(&path)
            .with_context(|| format!("reading GOPROXY_HA_HTTP_CA {}", path.to_string_lossy()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder.build()?)
}

/// Prints every member's view of the cluster, starting from the node at `http`
/// (`host:port`, or a URL: `https://…` when members serve HTTPS).
pub async fn status(http: &str) -> anyhow::Result<()> {
    let client = status_client()?;
    let members = members(&client, http).await?;
    let leader_last_log = members
        .iter()
        .filter_map(|m| m.status.as_ref().ok())
        .find(|s| s.leads())
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
            s.state.to_string(),
            s.current_term,
            shown(s.last_log_index),
            shown(s.last_applied),
            shown(lag),
            s.replication_mode.to_string(),
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
    let https = http.starts_with("https://");
    let mut members = Vec::with_capacity(first.members.len());
    for member in first.members {
        let address = if https {
            format!("https://{}", member.http_addr)
        } else {
            member.http_addr.clone()
        };
        let status = fetch_status(client, &address)
            .await
            .map_err(|e| format!("{e:#}"));
        members.push(MemberView {
            id: member.id,
            raft_addr: member.raft_addr,
            http_addr: member.http_addr,
            status,
        });
    }
    Ok(members)
}

/// One member's `/cluster/status`.
async fn fetch_status(client: &reqwest::Client, http: &str) -> anyhow::Result<NodeStatus> {
    let url = match http.strip_prefix("https://") {
        Some(host) => format!("https://{}/cluster/status", host.trim_end_matches('/')),
        None => format!(
            "http://{}/cluster/status",
            http.trim_start_matches("http://").trim_end_matches('/')
        ),
    };
    let body = client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    Ok(serde_json::from_slice(&body)?)
}

/// Explains a failed admin call: a refused handshake usually means a missing or wrong
/// certificate, a permission error a certificate without the admin role.
fn refusal(target: &str, status: &tonic::Status, transport: &Transport) -> anyhow::Error {
    let detail = goproxy_consensus::network::describe(status);
    let hint = match status.code() {
        tonic::Code::PermissionDenied => "",
        _ if !transport.is_tls() => {
            " (a cluster with mutual TLS refuses plaintext: pass --ca, --cert and --key of an admin certificate)"
        }
        _ => " (is the admin certificate from this cluster's CA?)",
    };
    anyhow::anyhow!("{target}: {detail}{hint}")
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
        /// How long it may take to catch up before it is left a learner.
        catch_up: Duration,
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
    /// Create a client token (the reply carries its secret).
    CreateToken(admin::CreateTokenRequest),
    /// Revoke the client token of that name.
    RevokeToken {
        /// Token name.
        name: String,
    },
    /// Purge a cached version on every node.
    Purge(admin::PurgeRequest),
    /// Add a block rule.
    Block(admin::BlockRequest),
    /// Lift a block rule.
    Unblock(admin::UnblockRequest),
}

impl AdminTls {
    /// The operator's transport: mutual TLS with an admin certificate, or plaintext when no
    /// certificate is given.
    pub fn transport(&self) -> anyhow::Result<Transport> {
        match (&self.ca, &self.cert, &self.key) {
            (None, None, None) => Ok(Transport::Plaintext),
            (Some(ca), Some(cert), Some(key)) => {
                let transport = Transport::from_files(ca, cert, key)?;
                match transport.identity() {
                    Some(goproxy_pki::Identity::Admin(_)) => Ok(transport),
                    other => bail!(
                        "--cert names {}, not an operator (issue one with: goproxy-ha certs issue --admin NAME)",
                        other.map_or("nothing".to_string(), |i| i.to_string())
                    ),
                }
            }
            _ => bail!("--ca, --cert and --key (or GOPROXY_HA_ADMIN_CA/CERT/KEY) go together"),
        }
    }
}

/// Sends `change` to the node at `via` (a Raft address), following leader redirects. A node
/// that does not know the leader yet (an election is under way) is asked again every
/// [`LEADER_UNKNOWN_RETRY`], for at most [`LEADER_UNKNOWN_WAIT`]. Returns the new token's
/// secret for [`Change::CreateToken`], an empty string otherwise.
pub async fn change(via: &str, change: Change, tls: &AdminTls) -> anyhow::Result<String> {
    let channels = Channels::new(tls.transport()?);
    let mut target = via.to_string();
    let mut redirects = 0;
    let unknown_until = tokio::time::Instant::now() + LEADER_UNKNOWN_WAIT;
    while redirects < MAX_REDIRECTS {
        let channel = channels
            .get(&target, PeerName::AnyMember)
            .with_context(|| format!("connecting to {target}"))?;
        let mut client = AdminServiceClient::new(channel);
        let call = async {
            match &change {
                Change::Join {
                    id,
                    raft,
                    http,
                    catch_up,
                } => {
                    let request = admin::AddMemberRequest {
                        id: *id,
                        raft_addr: raft.clone(),
                        http_addr: http.clone(),
                        catch_up_timeout_ms: catch_up.as_millis() as u64,
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
                Change::CreateToken(request) => {
                    let reply = client.create_token(request.clone()).await?.into_inner();
                    let mut status = reply.status.unwrap_or_default();
                    if status.ok {
                        // The secret travels in the message field only on this side.
                        status.message = reply.secret;
                    }
                    Ok(tonic::Response::new(status))
                }
                Change::RevokeToken { name } => {
                    client
                        .revoke_token(admin::RevokeTokenRequest { name: name.clone() })
                        .await
                }
                Change::Purge(request) => client.purge(request.clone()).await,
                Change::Block(request) => client.block(request.clone()).await,
                Change::Unblock(request) => client.unblock(request.clone()).await,
            }
        };
        let bound = match &change {
            Change::Join { catch_up, .. } => ADMIN_TIMEOUT + *catch_up,
            _ => ADMIN_TIMEOUT,
        };
        let reply = tokio::time::timeout(bound, call)
            .await
            .context("cluster change timed out")?
            .map_err(|status| refusal(&target, &status, channels.transport()))?
            .into_inner();
        if reply.ok {
            return Ok(match &change {
                Change::CreateToken(_) => reply.message,
                _ => String::new(),
            });
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

/// One node's client tokens (never their secrets), read over the admin service.
pub async fn tokens(via: &str, tls: &AdminTls) -> anyhow::Result<Vec<admin::TokenInfo>> {
    let channels = Channels::new(tls.transport()?);
    let channel = channels
        .get(via, PeerName::AnyMember)
        .with_context(|| format!("connecting to {via}"))?;
    let mut client = AdminServiceClient::new(channel);
    let call = client.list_tokens(admin::ListTokensRequest {});
    let reply = tokio::time::timeout(ADMIN_TIMEOUT, call)
        .await
        .context("listing tokens timed out")?
        .map_err(|status| refusal(via, &status, channels.transport()))?;
    Ok(reply.into_inner().tokens)
}

/// The block rules in force, as the node at `via` holds them.
pub async fn blocks(via: &str, tls: &AdminTls) -> anyhow::Result<Vec<admin::BlockInfo>> {
    let channels = Channels::new(tls.transport()?);
    let channel = channels
        .get(via, PeerName::AnyMember)
        .with_context(|| format!("connecting to {via}"))?;
    let mut client = AdminServiceClient::new(channel);
    let call = client.list_blocks(admin::ListBlocksRequest {});
    let reply = tokio::time::timeout(ADMIN_TIMEOUT, call)
        .await
        .context("listing block rules timed out")?
        .map_err(|status| refusal(via, &status, channels.transport()))?;
    Ok(reply.into_inner().blocks)
}

/// The admin trail as the node at `via` holds it, from `since_ms` on.
pub async fn trail(
    via: &str,
    since_ms: u64,
    tls: &AdminTls,
) -> anyhow::Result<Vec<admin::AdminEvent>> {
    let channels = Channels::new(tls.transport()?);
    let channel = channels
        .get(via, PeerName::AnyMember)
        .with_context(|| format!("connecting to {via}"))?;
    let mut client = AdminServiceClient::new(channel);
    let call = client.admin_trail(admin::AdminTrailRequest { since_ms });
    let reply = tokio::time::timeout(ADMIN_TIMEOUT, call)
        .await
        .context("reading the admin trail timed out")?
        .map_err(|status| refusal(via, &status, channels.transport()))?;
    Ok(reply.into_inner().events)
}

/// Prints the cluster's download counts from the node at `http` (`host:port` or a URL).
pub async fn stats(http: &str, module: &str, top: usize, json: bool) -> anyhow::Result<()> {
    let client = status_client()?;
    let base = if http.starts_with("https://") || http.starts_with("http://") {
        http.trim_end_matches('/').to_string()
    } else {
        format!("http://{http}")
    };
    let response = client
        .get(format!("{base}/stats"))
        .query(&[("module", module), ("top", &top.to_string())])
        .send()
        .await
        .with_context(|| format!("asking {http} for the download statistics"))?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!(
            "{http}: {status}: {}",
            String::from_utf8_lossy(&body).trim()
        );
    }
    if json {
        println!("{}", String::from_utf8_lossy(&body));
        return Ok(());
    }
    let stats: goproxy_audit::downloads::ClusterDownloads = serde_json::from_slice(&body)?;
    println!(
        "{} downloads counted by nodes {:?}",
        stats.downloads, stats.nodes
    );
    for (id, why) in &stats.missing {
        println!("node {id} not counted: {why}");
    }
    println!("{:>10}  MODULE / VERSION", "DOWNLOADS");
    for module in &stats.modules {
        println!("{:>10}  {}", module.downloads, module.module);
        for version in &module.versions {
            println!("{:>10}    {}", version.downloads, version.version);
        }
    }
    Ok(())
}
