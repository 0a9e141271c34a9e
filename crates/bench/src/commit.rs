//! Index commit throughput: three consensus members in this process, talking real gRPC with
//! mutual TLS (as deployed) over loopback, with concurrent writers committing distinct entries
//! for a fixed time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use goproxy_consensus::{Consensus, ConsensusConfig, ConsensusError, PeerNode};
use goproxy_pki::{Authority, Identity};
use goproxy_protocol::index::{ArtifactKey, ArtifactKind, BlobRef, IndexEntry};
use goproxy_rpc::{Channels, Transport};

/// Concurrent writers (as many as the etcd load uses).
pub const WRITERS: usize = 64;

/// Writers for this run: [`WRITERS`], or `BENCH_COMMIT_WRITERS` (1 shows a lone put's
/// latency).
pub fn writers() -> usize {
    std::env::var("BENCH_COMMIT_WRITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(WRITERS)
}

fn entry(writer: usize, n: u64) -> IndexEntry {
    IndexEntry {
        key: ArtifactKey {
            module: format!("bench.example/w{writer}"),
            version: format!("v1.0.{n}"),
            kind: ArtifactKind::Mod,
        },
        blob: BlobRef {
            sha256: format!("{:064x}", (writer as u64) << 40 | n),
            size: 100,
        },
        h1: None,
        version_time: None,
        filled_at_ms: 0,
    }
}

/// Commits entries for `duration` and returns entries per second.
pub async fn index_commits_per_sec(
    work: &std::path::Path,
    duration: Duration,
) -> anyhow::Result<f64> {
    let mut listeners = BTreeMap::new();
    for id in 1..=3u64 {
        listeners.insert(id, tokio::net::TcpListener::bind("127.0.0.1:0").await?);
    }
    let mut peers = BTreeMap::new();
    for (id, listener) in &listeners {
        let addr = listener.local_addr()?.to_string();
        peers.insert(
            *id,
            PeerNode {
                raft_addr: addr.clone(),
                http_addr: addr,
            },
        );
    }
    let validity = Duration::from_secs(24 * 3600);
    let ca = Authority::generate("bench", validity)?;
    let mut members = Vec::new();
    for (id, listener) in listeners {
        let issued = ca.issue(&Identity::Node(id), validity)?;
        let transport = Transport::from_pem(
            ca.cert_pem().as_bytes().to_vec(),
            issued.cert_pem.into_bytes(),
            issued.key_pem.into_bytes(),
        )?;
        let config = ConsensusConfig {
            node_id: id,
            raft_addr: peers[&id].raft_addr.clone(),
            http_addr: peers[&id].http_addr.clone(),
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            snapshot_logs_since_last: 5000,
            max_in_snapshot_log_to_keep: 1000,
            snapshot_chunk_bytes: goproxy_consensus::node::DEFAULT_SNAPSHOT_CHUNK_BYTES,
        };
        let mut server = transport.server()?;
        let channels = Channels::new(transport);
        let consensus =
            Consensus::open(work.join(format!("commit-n{id}")), config, channels).await?;
        let routes = consensus.grpc_routes();
        tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let _ = server
                .add_routes(routes)
                .serve_with_incoming(incoming)
                .await;
        });
        members.push(consensus);
    }
    members[0].initialize(peers).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let leader = loop {
        if let Some(leader) = members.iter().find(|m| m.is_leader()) {
            break leader.clone();
        }
        if Instant::now() > deadline {
            bail!("no leader elected");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let committed = Arc::new(AtomicU64::new(0));
    // A loaded machine may move leadership mid-run: writers then follow the new leader (the
    // figure is the group's throughput, and how often that happened is printed).
    let redirected = Arc::new(AtomicU64::new(0));
    let members = Arc::new(members);
    let started = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..self::writers() {
        let (mut leader, committed, redirected, members) = (
            leader.clone(),
            committed.clone(),
            redirected.clone(),
            members.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while started.elapsed() < duration {
                match leader.put(entry(writer, n)).await {
                    Ok(_) => {
                        committed.fetch_add(1, Ordering::Relaxed);
                        n += 1;
                    }
                    Err(ConsensusError::NotLeader { .. }) => {
                        redirected.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        if let Some(now) = members.iter().find(|m| m.is_leader()) {
                            leader = now.clone();
                        }
                    }
                    Err(e) => return Err(anyhow::Error::new(e).context("commit")),
                }
            }
            anyhow::Ok(())
        }));
    }
    for writer in writers {
        writer.await??;
    }
    let rate = committed.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let redirected = redirected.load(Ordering::Relaxed);

    if redirected > 0 {
        eprintln!("commit: leadership moved during the run ({redirected} puts redirected)");
    }
    for member in members.iter() {
        let _ = member.shutdown().await;
    }
    Ok(rate)
}
