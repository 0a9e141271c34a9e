//! The cost of client access control: cache-hit throughput of a node serving HTTPS with
//! `anonymous = "deny"` (every request a token looked up), the audit log on, next to a node
//! with all of it off, same files, same run.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::procs::{free_port, ProxyNode};
use crate::wrk::run_wrk_with;

/// The artifacts measured (a small answer, where per-request costs show, and a 1 MiB zip,
/// where encryption does).
const CASES: &[(&str, &str)] = &[
    ("info", "example.com/hello/@v/v1.1.0.info"),
    ("zip 1.1 MiB", "google.golang.org/protobuf/@v/v1.28.1.zip"),
];
const CONNECTIONS: u32 = 64;

/// Prints rps of the secured node against the open one, and their ratio.
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
    let raft = format!("127.0.0.1:{}", free_port()?);
    let audit = dir.join("audit.log");
    let config = dir.join("secure.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nanonymous = \"deny\"\n[audit]\npath = {audit:?}\n\
             [http.tls]\ncert_file = {:?}\nkey_file = {:?}\n\
             [cluster.tls]\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\n",
            dir.join("https.pem"),
            dir.join("https.key"),
            certs.join("ca.pem"),
            certs.join("node-1.pem"),
            certs.join("node-1.key"),
        ),
    )?;
    let secure = ProxyNode::start_with(
        &dir.join("node-secure"),
        upstream,
        &[
            "--verify-fills",
            "false",
            "--config",
            &config.to_string_lossy(),
            "--raft-listen",
            &raft,
        ],
    )?;
    let secure_url = secure.url.replacen("http://", "https://", 1);
    let token = create_token(&binary, &certs, &raft)?;
    let open = ProxyNode::start_with(
        &dir.join("node-open"),
        upstream,
        &["--verify-fills", "false"],
    )?;
    let header = format!("Authorization: Bearer {token}");
    for (_, path) in CASES {
        open.warm(path)?;
        curl_ok(&format!("{secure_url}/{path}"), &header)?;
    }
    println!(
        "\nclient access control on (HTTPS, a token per request, audit log) vs all off, hits, wrk -c{CONNECTIONS}:"
    );
    for (name, path) in CASES {
        let off = run_wrk_with(&format!("{}/{path}", open.url), CONNECTIONS, duration, &[])?;
        let on = run_wrk_with(
            &format!("{secure_url}/{path}"),
            CONNECTIONS,
            duration,
            &["-H", &header],
        )?;
        println!(
            "{name:<12} on {:>8.0} rps (p99 {:.2}ms), off {:>8.0} rps (p99 {:.2}ms), ratio {:.2}x (goal >= 0.9x)",
            on.requests_per_sec,
            on.p99.as_secs_f64() * 1e3,
            off.requests_per_sec,
            off.p99.as_secs_f64() * 1e3,
            on.requests_per_sec / off.requests_per_sec.max(f64::MIN_POSITIVE),
        );
    }
    let lines = std::fs::read_to_string(&audit).map_or(0, |t| t.lines().count());
    println!("audit lines written by the secured node so far: {lines}");
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
fn curl_ok(url: &str, header: &str) -> anyhow::Result<()> {
    let output = Command::new("curl")
        .args([
            "-sSk",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            header,
            url,
        ])
        .output()
        .context("running curl")?;
    let code = String::from_utf8_lossy(&output.stdout);
    if code != "200" {
        bail!("GET {url}: HTTP {code}");
    }
    Ok(())
}
