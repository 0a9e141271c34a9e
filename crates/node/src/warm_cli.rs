//! `goproxy-ha warm`: submits a prefetch job to a member's client port and follows it with
//! a progress bar (a line per second when stderr is not a terminal), across leader changes:
//! the job lives in the replicated log, so any member answers for it.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{bail, Context};
use goproxy_consensus::ops::{JobState, WarmJob};
use goproxy_ha::operate::api::{Submit, Submitted};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

/// How often a followed job is asked for.
const POLL: Duration = Duration::from_millis(300);
/// How long the member may stay unreachable while a job is followed (a failover, a restart).
const UNREACHABLE_FOR: Duration = Duration::from_secs(60);
/// How often a progress line is printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(1);

/// `http://host:port` for a bare `host:port`; URLs as given.
pub fn base(node: &str) -> String {
    if node.starts_with("https://") || node.starts_with("http://") {
        node.trim_end_matches('/').to_string()
    } else {
        format!("http://{node}")
    }
}

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Submits the job `args` describe; follows it unless `--no-wait`.
pub async fn submit(args: &crate::cli::WarmArgs) -> anyhow::Result<()> {
    let mut submit = Submit {
        no_deps: args.no_deps,
        pin: args.pin,
        description: args.description.clone(),
        targets: args.targets.clone(),
        ..Submit::default()
    };
    if let Some(path) = &args.go_mod {
        submit.go_mod = Some(read(path)?);
    } else if let Some(path) = &args.go_sum {
        submit.go_sum = Some(read(path)?);
    } else if let Some(path) = &args.list {
        submit.list = Some(read(path)?);
    } else if args.targets.is_empty() {
        bail!("name what to warm: --go-mod FILE, --go-sum FILE, --list FILE or MODULE@VERSION…");
    }
    let client = goproxy_ha::admin::status_client()?;
    let base = base(&args.node);
    let response = client
        .post(format!("{base}/admin/warm"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&submit)?)
        .send()
        .await
        .with_context(|| format!("submitting the job to {}", args.node))?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!(
            "{}: {status}: {}",
            args.node,
            String::from_utf8_lossy(&body).trim()
        );
    }
    let submitted: Submitted = serde_json::from_slice(&body)?;
    eprintln!("job {} submitted", submitted.id);
    if args.no_wait {
        println!("{}", submitted.id);
        return Ok(());
    }
    follow(&base, &submitted.id).await
}

async fn job(client: &reqwest::Client, base: &str, id: &str) -> anyhow::Result<WarmJob> {
    let response = client.get(format!("{base}/admin/warm/{id}")).send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("{status}: {}", String::from_utf8_lossy(&body).trim());
    }
    Ok(serde_json::from_slice(&body)?)
}

/// Follows job `id` until it ends, then prints its summary; fails unless it finished with
/// every item fetched.
pub async fn follow(base: &str, id: &str) -> anyhow::Result<()> {
    let client = goproxy_ha::admin::status_client()?;
    let terminal = std::io::stderr().is_terminal();
    let bar = ProgressBar::new(0);
    if terminal {
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40.cyan/blue} {pos}/{len} {msg} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let started = tokio::time::Instant::now();
    let mut unreachable_since: Option<tokio::time::Instant> = None;
    let mut last_line = tokio::time::Instant::now() - LINE_EVERY;
    let mut runner = None;
    let job = loop {
        let job = match job(&client, base, id).await {
            Ok(job) => {
                unreachable_since = None;
                job
            }
            Err(e) => {
                let since = *unreachable_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() > UNREACHABLE_FOR {
                    return Err(e.context(format!("following job {id} at {base}")));
                }
                bar.println(format!("{base}: {e:#}; retrying"));
                tokio::time::sleep(POLL * 3).await;
                continue;
            }
        };
        if job.runner != runner {
            if let Some(node) = job.runner {
                let line = match runner {
                    None => format!("job {id}: run by node {node}"),
                    Some(old) => format!(
                        "job {id}: node {old} stopped leading; node {node} resumed it (run {})",
                        job.runs
                    ),
                };
                bar.println(&line);
                if !terminal {
                    eprintln!("{line}");
                }
            }
            runner = job.runner;
        }
        let rate = job.bytes as f64 / started.elapsed().as_secs_f64().max(0.001);
        let message = format!(
            "items · {} · {} failed · {}/s",
            HumanBytes(job.bytes),
            job.failed,
            HumanBytes(rate as u64)
        );
        bar.set_length(job.total.max(job.done + job.failed));
        bar.set_position(job.done + job.failed);
        bar.set_message(message.clone());
        if !terminal && last_line.elapsed() >= LINE_EVERY {
            eprintln!(
                "job {id}: {}/{} {message} [{}]",
                job.done + job.failed,
                job.total,
                job.state.as_str()
            );
            last_line = tokio::time::Instant::now();
        }
        if job.state.is_final() {
            break job;
        }
        tokio::time::sleep(POLL).await;
    };
    bar.finish_and_clear();
    summary(&job, started.elapsed());
    match job.state {
        JobState::Done if job.failed == 0 => Ok(()),
        JobState::Done => bail!("job {id}: {} items failed", job.failed),
        state => bail!(
            "job {id} {}{}",
            state.as_str(),
            job.error.map(|e| format!(": {e}")).unwrap_or_default()
        ),
    }
}

fn summary(job: &WarmJob, took: Duration) {
    println!(
        "job {} {}: {} of {} items, {} fetched upstream, {} failed, {} in {:.1}s ({} run{} of the job{})",
        job.spec.id,
        job.state.as_str(),
        job.done,
        job.total,
        job.filled,
        job.failed,
        HumanBytes(job.bytes),
        took.as_secs_f64(),
        job.runs,
        if job.runs == 1 { "" } else { "s" },
        job.runner.map(|n| format!(", last by node {n}")).unwrap_or_default(),
    );
    for failure in &job.failures {
        println!("  failed: {}", printable(failure));
    }
}

/// `text` without control characters (what an upstream said reaches the operator's terminal).
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `warm status [ID]`.
pub async fn status(node: &str, id: Option<&str>, json: bool) -> anyhow::Result<()> {
    let client = goproxy_ha::admin::status_client()?;
    let base = base(node);
    if let Some(id) = id {
        let job = job(&client, &base, id).await?;
        if json {
            println!("{}", serde_json::to_string(&job)?);
        } else {
            summary(&job, Duration::ZERO);
        }
        return Ok(());
    }
    let response = client.get(format!("{base}/admin/warm")).send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!(
            "{node}: {status}: {}",
            String::from_utf8_lossy(&body).trim()
        );
    }
    let jobs: Vec<WarmJob> = serde_json::from_slice(&body)?;
    if json {
        for job in &jobs {
            println!("{}", serde_json::to_string(job)?);
        }
        return Ok(());
    }
    println!(
        "{:<10} {:<9} {:>7} {:>7} {:>6} {:>10}  DESCRIPTION",
        "ID", "STATE", "DONE", "TOTAL", "FAILED", "BYTES"
    );
    for job in jobs {
        println!(
            "{:<10} {:<9} {:>7} {:>7} {:>6} {:>10}  {}",
            job.spec.id,
            job.state.as_str(),
            job.done,
            job.total,
            job.failed,
            HumanBytes(job.bytes).to_string(),
            printable(&job.spec.description)
        );
    }
    Ok(())
}

/// `warm cancel ID` / `warm unpin ID`.
pub async fn act(node: &str, id: &str, what: &str) -> anyhow::Result<()> {
    let client = goproxy_ha::admin::status_client()?;
    let base = base(node);
    let response = client
        .post(format!("{base}/admin/warm/{id}/{what}"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .send()
        .await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!(
            "{node}: {status}: {}",
            String::from_utf8_lossy(&body).trim()
        );
    }
    eprintln!("job {id}: {what} done");
    Ok(())
}
