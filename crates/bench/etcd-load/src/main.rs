//! `etcd-load ENDPOINTS SECONDS CLIENTS`: concurrent puts of distinct keys (100-byte
//! values) against an etcd cluster; prints `puts_per_sec <rate>`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use etcd_client::Client;

/// How long the cluster may take to accept a first put.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        bail!("usage: etcd-load ENDPOINT[,ENDPOINT…] SECONDS CLIENTS");
    }
    let endpoints: Vec<String> = args[1].split(',').map(|e| format!("http://{e}")).collect();
    let duration = Duration::from_secs(args[2].parse().context("SECONDS")?);
    let clients: usize = args[3].parse().context("CLIENTS")?;

    // Every member accepts a put on its own before the load starts (the client balances
    // the writers over all of them; one still starting would fail its share).
    let deadline = Instant::now() + READY_TIMEOUT;
    for endpoint in &endpoints {
        loop {
            if let Ok(mut client) = Client::connect([endpoint], None).await {
                if client.put("bench/ready", "1", None).await.is_ok() {
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!("etcd member {endpoint} never accepted a put");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let client = Client::connect(&endpoints, None)
        .await
        .context("connecting to etcd")?;
    let value = vec![b'x'; 100];
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..clients {
        let (mut kv, done, value) = (client.kv_client(), done.clone(), value.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < duration {
                kv.put(format!("bench/{writer}/{n}"), value.clone(), None)
                    .await?;
                done.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!("puts_per_sec {rate:.0}");
    Ok(())
}
