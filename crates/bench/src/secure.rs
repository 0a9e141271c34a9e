//! The cost of client access control: cache-hit throughput of a node serving HTTPS with
//! `anonymous = "deny"` (every request a token looked up), the audit log on, next to a node
//! with all of it off, same files, same run.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::procs::{free_port, ProxyNode};
use crate::wrk::{run_wrk_with, WrkResult};

/// The artifacts measured (a small answer, where per-request costs show, and a 1 MiB zip,
/// where encryption does).
const CASES: &[(&str, &str)] = &[
    ("info", "example.com/hello/@v/v1.1.0.info"),
    ("zip 1.1 MiB", "google.golang.org/protobuf/@v/v1.28.1.zip"),
];
const CONNECTIONS: u32 = 64;
/// wrk runs per server and case, interleaved.
const ROUNDS: usize = 3;

/// The run with the median throughput.
fn median(mut runs: Vec<Measured>) -> Measured {
    runs.sort_by(|a, b| a.0.requests_per_sec.total_cmp(&b.0.requests_per_sec));
    runs.swap_remove(runs.len() / 2)
}

/// One way of serving: which of HTTPS, tokens and the audit log are on.
struct Variant {
    label: &'static str,
    https: bool,
    tokens: bool,
    audit: bool,
}

const VARIANTS: &[Variant] = &[
    Variant {
        label: "HTTPS only",
        https: true,
        tokens: false,
        audit: false,
    },
    Variant {
        label: "tokens only",
        https: false,
        tokens: true,
        audit: false,
    },
    Variant {
        label: "audit only",
        https: false,
        tokens: false,
        audit: true,
    },
    Variant {
        label: "all three",
        https: true,
        tokens: true,
        audit: true,
    },
];

/// A running variant: its node, base URL and the request header it needs.
struct Running {
    node: ProxyNode,
    url: String,
    header: Option<String>,
}

/// Prints, per artifact, each variant's hit throughput against the open node's (medians of
/// interleaved runs), and what TLS alone costs nginx on this machine (the same client, wrk,
/// decrypts on the same cores).
pub fn run(work: &Path, upstream: &str, duration: Duration) -> anyhow::Result<()> {
    let dir = work.join("secure");
    std::fs::create_dir_all(&dir)?;
    let binary = std::env::current_exe()?.with_file_name("goproxy-ha");
    let certs = dir.join("tls");
    for args in [
        vec!["init"],
        vec!["issue", "--node", "1"],
        vec!["issue", "--admin", "bench"],
    ] {
        let output = Command::new(&binary)
            .arg("certs")
            .args(&args)
            .arg("--dir")
            .arg(&certs)
            .output()?;
        if !output.status.success() {
            bail!(
                "goproxy-ha certs {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    https_files(&dir)?;
    let open = ProxyNode::start_with(
        &dir.join("node-open"),
        upstream,
        &["--verify-fills", "false"],
    )?;
    let mut running = Vec::new();
    for (i, variant) in VARIANTS.iter().enumerate() {
        running.push(start_variant(&binary, &dir, &certs, upstream, i, variant)?);
    }
    for (_, path) in CASES {
        open.warm(path)?;
        for r in &running {
            curl_ok(&format!("{}/{path}", r.url), r.header.as_deref())?;
        }
    }
    println!(
        "\nclient access control, cache hits, wrk -c{CONNECTIONS}, medians of {ROUNDS} runs interleaved with the open node (goal for all three: >= 0.9x):"
    );
    for (name, path) in CASES {
        for (variant, r) in VARIANTS.iter().zip(&running) {
            let url = format!("{}/{path}", r.url);
            let extra: Vec<&str> = match &r.header {
                Some(h) => vec!["-H", h],
                None => vec![],
            };
            let open_url = format!("{}/{path}", open.url);
            let (on, off) = interleaved(
                || {
                    measured(&r.node, || {
                        run_wrk_with(&url, CONNECTIONS, duration, &extra)
                    })
                },
                || {
                    measured(&open, || {
                        run_wrk_with(&open_url, CONNECTIONS, duration, &[])
                    })
                },
            )?;
            println!(
                "{name:<12} {:<12} {:>8.0} rps vs open {:>8.0} rps, ratio {:.2}x | node CPU per request {:.1}us vs {:.1}us | p99 {:.2}ms vs {:.2}ms",
                variant.label,
                on.0.requests_per_sec,
                off.0.requests_per_sec,
                on.0.requests_per_sec / off.0.requests_per_sec.max(f64::MIN_POSITIVE),
                on.1,
                off.1,
                on.0.p99.as_secs_f64() * 1e3,
                off.0.p99.as_secs_f64() * 1e3,
            );
        }
    }
    tls_anchor(work, &dir, duration)?;
    let lines = std::fs::read_to_string(dir.join("audit-3.log")).map_or(0, |t| t.lines().count());
    println!("audit lines written by the all-three node: {lines}");
    Ok(())
}

/// A wrk run and the node's CPU time per request during it (microseconds).
type Measured = (WrkResult, f64);

/// Runs `load` against `node`, noting the node's CPU time per completed request.
fn measured(
    node: &ProxyNode,
    load: impl Fn() -> anyhow::Result<WrkResult>,
) -> anyhow::Result<Measured> {
    let before = node.cpu_time()?;
    let result = load()?;
    let used = node.cpu_time()?.saturating_sub(before);
    let requests = result.requests_per_sec * result.duration.as_secs_f64();
    Ok((result, used.as_secs_f64() * 1e6 / requests.max(1.0)))
}

/// Medians (by throughput) of [`ROUNDS`] runs of `on` and `off`, interleaved (which goes
/// first alternates).
fn interleaved<T: Into<Measured>>(
    on: impl Fn() -> anyhow::Result<T>,
    off: impl Fn() -> anyhow::Result<T>,
) -> anyhow::Result<(Measured, Measured)> {
    let (mut ons, mut offs) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            offs.push(off()?.into());
            ons.push(on()?.into());
        } else {
            ons.push(on()?.into());
            offs.push(off()?.into());
        }
    }
    Ok((median(ons), median(offs)))
}

/// Starts one variant's node (a node with tokens needs the admin service: cluster TLS).
fn start_variant(
    binary: &Path,
    dir: &Path,
    certs: &Path,
    upstream: &str,
    i: usize,
    variant: &Variant,
) -> anyhow::Result<Running> {
    let raft = format!("127.0.0.1:{}", free_port()?);
    let mut config = String::new();
    if variant.tokens {
        config.push_str(&format!(
            "[auth]\nanonymous = \"deny\"\n[cluster.tls]\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\n",
            certs.join("ca.pem"),
            certs.join("node-1.pem"),
            certs.join("node-1.key"),
        ));
    }
    if variant.audit {
        config.push_str(&format!(
            "[audit]\npath = {:?}\n",
            dir.join(format!("audit-{i}.log"))
        ));
    }
    if variant.https {
        config.push_str(&format!(
            "[http.tls]\ncert_file = {:?}\nkey_file = {:?}\n",
            dir.join("https.pem"),
            dir.join("https.key")
        ));
    }
    let file = dir.join(format!("variant-{i}.toml"));
    std::fs::write(&file, config)?;
    let node = ProxyNode::spawn(
        &dir.join(format!("node-{i}")),
        &[
            "--listen",
            "127.0.0.1:0",
            "--raft-listen",
            &raft,
            "--upstream",
            upstream,
            "--verify-fills",
            "false",
            "--config",
            &file.to_string_lossy(),
        ]
        .map(String::from),
    )?;
    let url = if variant.https {
        node.url.replacen("http://", "https://", 1)
    } else {
        node.url.clone()
    };
    let header = match variant.tokens {
        true => Some(format!(
            "Authorization: Bearer {}",
            create_token(binary, certs, &raft)?
        )),
        false => None,
    };
    Ok(Running { node, url, header })
}

/// nginx over the same files with and without TLS: what TLS itself costs on this machine.
fn tls_anchor(work: &Path, dir: &Path, duration: Duration) -> anyhow::Result<()> {
    let corpus = goproxy_testkit::corpus::try_dir()?;
    let nginx_dir = dir.join("nginx-tls");
    std::fs::create_dir_all(&nginx_dir)?;
    let (plain, tls) = (free_port()?, free_port()?);
    let nginx = crate::procs::Nginx::start_tls(
        &corpus,
        &nginx_dir,
        plain,
        tls,
        &dir.join("https.pem"),
        &dir.join("https.key"),
    );
    let _ = work;
    let nginx = match nginx {
        Ok(nginx) => nginx,
        Err(e) => {
            println!("nginx with TLS not measured: {e:#}");
            return Ok(());
        }
    };
    for (name, path) in CASES {
        let (on, off) = interleaved(
            || {
                let url = format!("https://127.0.0.1:{tls}/{path}");
                run_wrk_with(&url, CONNECTIONS, duration, &[]).map(|r| (r, f64::NAN))
            },
            || {
                let url = format!("http://127.0.0.1:{plain}/{path}");
                run_wrk_with(&url, CONNECTIONS, duration, &[]).map(|r| (r, f64::NAN))
            },
        )?;
        println!(
            "{name:<12} {:<12} {:>8.0} rps vs plain {:>8.0} rps, ratio {:.2}x (TLS alone, the anchor)",
            "nginx HTTPS",
            on.0.requests_per_sec,
            off.0.requests_per_sec,
            on.0.requests_per_sec / off.0.requests_per_sec.max(f64::MIN_POSITIVE),
        );
    }
    drop(nginx);
    Ok(())
}

/// A CA and a certificate for 127.0.0.1 in `dir` (`https.pem`, `https.key`).
fn https_files(dir: &Path) -> anyhow::Result<()> {
    let ca_key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "bench HTTPS CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.self_signed(&ca_key)?;
    let issuer = Issuer::new(params, ca_key);
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])?.signed_by(&key, &issuer)?;
    std::fs::write(dir.join("https.pem"), cert.pem())?;
    std::fs::write(dir.join("https.key"), key.serialize_pem())?;
    Ok(())
}

/// A read token made through the admin service with the bench's admin certificate.
fn create_token(binary: &Path, certs: &Path, raft: &str) -> anyhow::Result<String> {
    let mut last = String::new();
    for _ in 0..100 {
        let output = Command::new(binary)
            .args([
                "token", "create", "--via", raft, "--name", "bench", "--role", "read",
            ])
            .env("GOPROXY_HA_ADMIN_CA", certs.join("ca.pem"))
            .env("GOPROXY_HA_ADMIN_CERT", certs.join("admin-bench.pem"))
            .env("GOPROXY_HA_ADMIN_KEY", certs.join("admin-bench.key"))
            .output()?;
        if output.status.success() {
            return Ok(String::from_utf8(output.stdout)?.trim().to_string());
        }
        last = String::from_utf8_lossy(&output.stderr).into_owned();
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("creating the bench token: {last}")
}

/// GETs `url` (certificate not verified: the bench's own) with `header`; fails unless 200.
fn curl_ok(url: &str, header: Option<&str>) -> anyhow::Result<()> {
    let mut args = vec!["-sSk", "-o", "/dev/null", "-w", "%{http_code}"];
    if let Some(header) = header {
        args.extend(["-H", header]);
    }
    let output = Command::new("curl")
        .args(&args)
        .arg(url)
        .output()
        .context("running curl")?;
    let code = String::from_utf8_lossy(&output.stdout);
    if code != "200" {
        bail!("GET {url}: HTTP {code}");
    }
    Ok(())
}
