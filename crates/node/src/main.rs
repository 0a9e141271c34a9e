//! The `goproxy-ha` binary: flags and subcommands (`cli`), then the library (`goproxy_ha`)
//! does the work: load the configuration, bind the listeners, run the node until a signal.

mod cli;
mod warm_cli;

use std::process::ExitCode;

use clap::Parser;

use goproxy_ha::config::{self, Config};
use goproxy_ha::{admin, certs, drill, telemetry};
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, RouteCommand};

/// Exit status for configuration mistakes (as `sysexits` EX_CONFIG).
const EXIT_CONFIG: u8 = 78;
/// Threads for blocking file I/O. Reads of cached blobs go through them; a bounded pool
/// keeps memory flat under many connections (tokio's default allows 512).
const MAX_BLOCKING_THREADS: usize = 64;

/// mimalloc instead of glibc's malloc: a cache hit allocates a fresh read buffer in hyper
/// and a few small strings, and glibc's malloc/free (with `malloc_consolidate` on the 8 KiB
/// buffers) took 5-7% of a hit's CPU (crates/bench/PROFILE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (args, serve) = match &cli.command {
        Command::Serve(args) => (args, true),
        Command::Config(args) => (args, false),
        Command::Cluster(command) => return cluster(command),
        Command::Route(command) => return route(command),
        Command::Certs(command) => return certs(command),
        Command::Drill(args) => return drill(args),
        Command::Token(args) => return token(args),
        Command::Audit(args) => return audit(args),
        Command::Warm(args) => return warm(args),
        Command::Purge(args) => return purge(args),
        Command::Block(args) => return block(args),
        Command::Unblock(args) => return unblock(args),
        Command::Stats {
            node,
            module,
            top,
            json,
        } => {
            let Some(runtime) = client_runtime() else {
                return ExitCode::FAILURE;
            };
            return finish(runtime.block_on(admin::stats(node, module, *top, *json)));
        }
        Command::VipGuard(guard) => return vip_guard(guard.clone()),
    };
    let config = match Config::load(args.config.as_deref(), args.overrides()) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("goproxy-ha: {errors}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if !serve {
        return match toml::to_string_pretty(&config.redacted()) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("goproxy-ha: {e}");
                ExitCode::FAILURE
            }
        };
    }
    telemetry::init(config.log_format, &config.log_level);
    raise_descriptor_limit(config.http.max_connections);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("goproxy-ha: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (file, overrides) = (args.config.clone(), args.overrides());
    let reload: goproxy_ha::server::Reload = Box::new(move || {
        Config::load(file.as_deref(), overrides.clone()).map_err(|e| e.to_string())
    });
    let result = runtime.block_on(run_node(config, reload));
    // Blocking I/O stuck on a failed disk must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("fatal: {e:#}");
            eprintln!("goproxy-ha: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Descriptors kept for everything but client connections: blob files being served and
/// filled, sled, peers, the guard.
const DESCRIPTOR_RESERVE: u64 = 512;

/// Raises the soft limit on open files to the hard limit, and warns when it is still too low
/// for `max_connections` clients (the cap would then never be reached: accept would fail
/// first, and the node stop answering even /healthz).
fn raise_descriptor_limit(max_connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < max_connections as u64 + DESCRIPTOR_RESERVE => tracing::warn!(
            limit,
            max_connections,
            "the open-file limit is too low for http.max_connections; raise it (LimitNOFILE=) or lower max_connections"
        ),
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(e) => tracing::warn!("raising the open-file limit: {e}"),
    }
}

/// Binds the listeners and runs the node until SIGTERM/SIGINT.
async fn run_node(config: Config, reload: goproxy_ha::server::Reload) -> anyhow::Result<()> {
    use anyhow::Context;
    let shutdown = CancellationToken::new();
    goproxy_ha::signals::cancel_on_signals(shutdown.clone())
        .context("installing signal handlers")?;
    let listeners = goproxy_ha::Listeners::bind(&config).await?;
    goproxy_ha::server::run_with_reload(config, listeners, shutdown, Some(reload)).await
}

/// The small runtime of the client commands (`cluster …`, `drill`): two workers, so the
/// drill's probe keeps its schedule while the transfer runs.
fn client_runtime() -> Option<tokio::runtime::Runtime> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => Some(runtime),
        Err(e) => {
            eprintln!("goproxy-ha: starting the runtime: {e}");
            None
        }
    }
}

/// Runs `goproxy-ha certs …` (no runtime needed).
fn certs(command: &cli::CertsCommand) -> ExitCode {
    use cli::CertsCommand;
    let written = match command {
        CertsCommand::Init {
            dir,
            name,
            days,
            force,
        } => certs::init(dir, name, *days, *force),
        CertsCommand::Issue {
            dir,
            node,
            admin,
            days,
            force,
        } => certs::identity(*node, admin.as_deref())
            .and_then(|identity| certs::issue(dir, &identity, *days, *force)),
    };
    match written {
        Ok(paths) => {
            for path in paths {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("goproxy-ha: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a `goproxy-ha token …` command.
fn token(args: &cli::TokenArgs) -> ExitCode {
    use cli::TokenCommand;
    let Some(runtime) = client_runtime() else {
        return ExitCode::FAILURE;
    };
    let (tls, via) = (&args.tls, args.via.as_str());
    let result = runtime.block_on(async {
        match &args.command {
            TokenCommand::Create {
                name,
                role,
                allow,
                deny,
                expires,
            } => {
                let request = goproxy_consensus::wire::admin::CreateTokenRequest {
                    name: name.clone(),
                    role: role.clone(),
                    allow: allow.clone().unwrap_or_default(),
                    deny: deny.clone().unwrap_or_default(),
                    expires_in_ms: expires
                        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                };
                let secret = admin::change(via, admin::Change::CreateToken(request), tls).await?;
                eprintln!("token {name} created; it is shown once, store it now:");
                println!("{secret}");
                Ok(())
            }
            TokenCommand::List { json } => {
                let tokens = admin::tokens(via, tls).await?;
                print_tokens(&tokens, *json);
                Ok(())
            }
            TokenCommand::Revoke { name } => {
                let change = admin::Change::RevokeToken { name: name.clone() };
                admin::change(via, change, tls)
                    .await
                    .map(|_| println!("token {name} revoked"))
            }
        }
    });
    finish(result)
}

fn print_tokens(tokens: &[goproxy_consensus::wire::admin::TokenInfo], json: bool) {
    let time = |ms: u64| match ms {
        0 => "never".to_string(),
        ms => humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
        )
        .to_string(),
    };
    if !json {
        println!(
            "{:<24} {:<6} {:<21} {:<21} {:<30} DENY",
            "NAME", "ROLE", "CREATED", "EXPIRES", "ALLOW"
        );
    }
    for t in tokens {
        if json {
            let line = serde_json::json!({
                "name": t.name, "role": t.role, "allow": t.allow, "deny": t.deny,
                "created_at_ms": t.created_at_ms, "expires_at_ms": t.expires_at_ms,
            });
            println!("{line}");
            continue;
        }
        let or_all = |s: &str| {
            if s.is_empty() {
                "*".to_string()
            } else {
                s.to_string()
            }
        };
        println!(
            "{:<24} {:<6} {:<21} {:<21} {:<30} {}",
            t.name,
            t.role,
            time(t.created_at_ms),
            time(t.expires_at_ms),
            or_all(&t.allow),
            if t.deny.is_empty() { "-" } else { &t.deny }
        );
    }
}

/// Runs a `goproxy-ha audit …` command.
fn audit(args: &cli::AuditArgs) -> ExitCode {
    let Some(runtime) = client_runtime() else {
        return ExitCode::FAILURE;
    };
    let cli::AuditCommand::Admin { via, since, json } = &args.command;
    let result = runtime.block_on(async {
        let events = admin::trail(via, since.unwrap_or(0), &args.tls).await?;
        for e in events {
            if *json {
                let line = serde_json::json!({
                    "index": e.index, "at_ms": e.at_ms, "actor": e.actor, "node": e.node,
                    "action": e.kind, "detail": e.detail, "outcome": e.outcome,
                });
                println!("{line}");
            } else {
                let at = humantime::format_rfc3339_millis(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(e.at_ms),
                );
                println!(
                    "{at} #{:<6} node {:<3} {:<16} {:<15} {} => {}",
                    e.index, e.node, e.actor, e.kind, e.detail, e.outcome
                );
            }
        }
        Ok(())
    });
    finish(result)
}

/// The exit code of a client command, its error printed.
fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("goproxy-ha: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a `goproxy-ha warm …` command.
fn warm(args: &cli::WarmArgs) -> ExitCode {
    use cli::WarmCommand;
    let Some(runtime) = client_runtime() else {
        return ExitCode::FAILURE;
    };
    let node = args.node.as_str();
    finish(runtime.block_on(async {
        match &args.command {
            None => warm_cli::submit(args).await,
            Some(WarmCommand::Status { id, json }) => {
                warm_cli::status(node, id.as_deref(), *json).await
            }
            Some(WarmCommand::Follow { id }) => warm_cli::follow(&warm_cli::base(node), id).await,
            Some(WarmCommand::Cancel { id }) => warm_cli::act(node, id, "cancel").await,
            Some(WarmCommand::Unpin { id }) => warm_cli::act(node, id, "unpin").await,
        }
    }))
}

/// Runs `goproxy-ha purge MODULE@VERSION`.
fn purge(args: &cli::PurgeArgs) -> ExitCode {
    let Some((module, version)) = args.target.rsplit_once('@') else {
        eprintln!("goproxy-ha: purge {:?}: give MODULE@VERSION", args.target);
        return ExitCode::FAILURE;
    };
    let request = goproxy_consensus::wire::admin::PurgeRequest {
        module: module.to_string(),
        version: version.to_string(),
    };
    let Some(runtime) = client_runtime() else {
        return ExitCode::FAILURE;
    };
    finish(runtime.block_on(async {
        admin::change(&args.via, admin::Change::Purge(request), &args.tls).await?;
        eprintln!(
            "{} purged on every node; the next request fills it again",
            args.target
        );
        Ok(())
    }))
}

/// Runs `goproxy-ha block …`.
fn block(args: &cli::BlockArgs) -> ExitCode {
    let Some(runtime) = client_runtime() else {
        return ExitCode::FAILURE;
    };
    finish(runtime.block_on(async {
        if args.list {
            let rules = admin::blocks(&args.via, &args.tls).await?;
            for rule in rules {
                println!(
                    "{}\treason={:?}\tby={}\tat={}",
                    rule.rule,
                    rule.reason,
                    rule.by,
                    humantime::format_rfc3339_millis(
                        std::time::UNIX_EPOCH + std::time::Duration::from_millis(rule.at_ms)
                    )
                );
            }
            return Ok(());
        }
        let request = goproxy_consensus::wire::admin::BlockRequest {
            rule: args.rule.clone().unwrap_or_default(),
            reason: args.reason.clone().unwrap_or_default(),
        };
        admin::change(&args.via, admin::Change::Block(request), &args.tls).await?;
        eprintln!(
            "{} blocked on every node",
            args.rule.as_deref().unwrap_or_default()
        );
        Ok(())
    }))
}

/// Runs `goproxy-ha unblock RULE`.
fn unblock(args: &cli::UnblockArgs) -> ExitCode {
    let Some(runtime) = client_runtime() else {
        return ExitCode::FAILURE;
    };
    let request = goproxy_consensus::wire::admin::UnblockRequest {
        rule: args.rule.clone(),
    };
    finish(runtime.block_on(async {
        admin::change(&args.via, admin::Change::Unblock(request), &args.tls).await?;
        eprintln!("{} unblocked on every node", args.rule);
        Ok(())
    }))
}

/// Runs a `goproxy-ha cluster …` command.
fn cluster(args: &cli::ClusterArgs) -> ExitCode {
    use cli::ClusterCommand;
    let Some(runtime) = client_runtime() else {
        return ExitCode::FAILURE;
    };
    let tls = &args.tls;
    let result = runtime.block_on(async {
        match &args.command {
            ClusterCommand::Status { node } => admin::status(node).await,
            ClusterCommand::Join {
                via,
                id,
                raft,
                http,
                catch_up_timeout,
            } => {
                let change = admin::Change::Join {
                    id: *id,
                    raft: raft.clone(),
                    http: http.clone(),
                    catch_up: *catch_up_timeout,
                };
                admin::change(via, change, tls)
                    .await
                    .map(|_| println!("node {id} joined"))
            }
            ClusterCommand::Leave { via, id } => {
                admin::change(via, admin::Change::Leave { id: *id }, tls)
                    .await
                    .map(|_| println!("node {id} left"))
            }
            ClusterCommand::TransferLeader { via, to } => {
                let started = std::time::Instant::now();
                admin::change(via, admin::Change::TransferLeader { id: *to }, tls)
                    .await
                    .map(|_| println!("node {to} leads ({:?})", started.elapsed()))
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("goproxy-ha: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `goproxy-ha drill`: exit 0 with the report, 1 when refused or failed.
fn drill(args: &cli::DrillArgs) -> ExitCode {
    let options = drill::DrillOptions {
        node: args.node.clone(),
        probe: args.probe.clone(),
        to: args.to,
        interval: args.interval,
        request_timeout: args.request_timeout,
        max_lag: args.max_lag,
        settle: args.settle,
        timeout: args.timeout,
        tls: args.tls.clone(),
    };
    let Some(runtime) = client_runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(drill::run(&options)) {
        Ok(report) if args.json => match serde_json::to_string(&report) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("goproxy-ha: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("goproxy-ha: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The guard process: logs like its node (format and filter come through the environment).
fn vip_guard(guard: goproxy_vip::GuardConfig) -> ExitCode {
    let format = match std::env::var("GOPROXY_HA_LOG_FORMAT").as_deref() {
        Ok("json") => config::LogFormat::Json,
        _ => config::LogFormat::Text,
    };
    let level = std::env::var("GOPROXY_HA_LOG_LEVEL").unwrap_or_else(|_| "info".into());
    telemetry::init(format, &level);
    match goproxy_vip::guard_process_main(guard) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("vip guard: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Exit status of `route explain` for a denied path.
const EXIT_DENIED: u8 = 3;

/// `goproxy-ha route explain`.
fn route(command: &RouteCommand) -> ExitCode {
    let RouteCommand::Explain {
        module,
        env,
        config,
    } = command;
    let config = match Config::load(config.config.as_deref(), config.overrides()) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("goproxy-ha: {errors}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let table = match config.route_table() {
        Ok(table) => table,
        Err(problems) => {
            eprintln!(
                "goproxy-ha: invalid routes:\n  - {}",
                problems.join("\n  - ")
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let (path, version) = match module.split_once('@') {
        Some((path, version)) => (path, Some(version)),
        None => (module.as_str(), None),
    };
    if let Err(e) = goproxy_protocol::path::check_path(path) {
        eprintln!("goproxy-ha: {e}");
        return ExitCode::FAILURE;
    }
    let environment = env
        .as_deref()
        .unwrap_or(goproxy_routing::DEFAULT_ENVIRONMENT);
    match table.decide(environment, path) {
        Ok(decision) => {
            println!("module:      {path}");
            if let Some(version) = version {
                println!("version:     {version} (the route depends on the path only)");
            }
            println!("{decision}");
            if matches!(decision.action, goproxy_routing::Action::Deny(_)) {
                ExitCode::from(EXIT_DENIED)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            let known: Vec<&str> = table.environments().collect();
            eprintln!(
                "goproxy-ha: {e} (configured: {})",
                if known.is_empty() {
                    "none besides the root".to_string()
                } else {
                    known.join(", ")
                }
            );
            ExitCode::FAILURE
        }
    }
}
