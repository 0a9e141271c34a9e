//! The two servers under test: nginx with a generated config, and a goproxy-ha node.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

/// A port that was free a moment ago on 127.0.0.1 (below the ephemeral range, so no
/// outgoing connection takes it before the server binds it).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(goproxy_testkit::ports::unused(1)[0])
}

/// Where [`Nginx::start_logged`] logs, inside its work directory.
const ACCESS_LOG: &str = "access.log";

/// nginx serving `root` on loopback; stopped on drop.
pub struct Nginx {
    child: Child,
    /// Base URL.
    pub url: String,
}

impl Nginx {
    /// Starts nginx in the foreground with sendfile, no access log, one worker per core.
    pub fn start(root: &Path, work: &Path, port: u16) -> anyhow::Result<Self> {
        Self::start_with(root, work, port, &format!("listen 127.0.0.1:{port};"), None)
    }

    /// [`Nginx::start`] logging every request it answers to `work/access.log` (unbuffered,
    /// so each line is written when its request ends): an upstream that counts.
    pub fn start_logged(root: &Path, work: &Path, port: u16) -> anyhow::Result<Self> {
        let log = work.join(ACCESS_LOG);
        Self::start_with(
            root,
            work,
            port,
            &format!("listen 127.0.0.1:{port};"),
            Some(&log),
        )
    }

    /// The request paths in the access log of [`Nginx::start_logged`] started in `work`.
    pub fn logged_paths(work: &Path) -> anyhow::Result<Vec<String>> {
        let text = std::fs::read_to_string(work.join(ACCESS_LOG))?;
        // `$remote_addr - - [$time_local] "GET /path HTTP/1.1" ...`: the path is the second
        // word inside the first quotes.
        Ok(text
            .lines()
            .filter_map(|line| line.split('"').nth(1)?.split(' ').nth(1))
            .map(|path| path.trim_start_matches('/').to_string())
            .collect())
    }

    /// nginx serving `root` on `plain` (HTTP) and `tls` (HTTPS with `cert`/`key`).
    pub fn start_tls(
        root: &Path,
        work: &Path,
        plain: u16,
        tls: u16,
        cert: &Path,
        key: &Path,
    ) -> anyhow::Result<Self> {
        let listen = format!(
            "listen 127.0.0.1:{plain}; listen 127.0.0.1:{tls} ssl; ssl_certificate {}; ssl_certificate_key {};",
            cert.display(),
            key.display()
        );
        let nginx = Self::start_with(root, work, plain, &listen, None)?;
        wait_for(&format!("127.0.0.1:{tls}"))?;
        Ok(nginx)
    }

    /// nginx with one server whose `listen` (and TLS) directives are `listen`; its URL is
    /// plain HTTP on `port`; it logs requests to `access_log` if given.
    fn start_with(
        root: &Path,
        work: &Path,
        port: u16,
        listen: &str,
        access_log: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let conf = work.join("nginx.conf");
        let access_log = access_log.map_or("off".to_string(), |p| p.display().to_string());
        let text = format!(
            "daemon off;\nworker_processes auto;\npid {pid};\nerror_log {err} warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log {access_log};\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 1000000;\n\
               client_body_temp_path {tmp};\n  proxy_temp_path {tmp};\n  fastcgi_temp_path {tmp};\n  uwsgi_temp_path {tmp};\n  scgi_temp_path {tmp};\n\
               server {{ {listen} root {root}; }}\n}}\n",
            pid = work.join("nginx.pid").display(),
            err = work.join("nginx.err").display(),
            tmp = work.display(),
            root = root.display(),
        );
        std::fs::write(&conf, text)?;
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(work.join("nginx.err"))
            .spawn()
            .context("starting nginx (apt-get install nginx-light)")?;
        let url = format!("http://127.0.0.1:{port}");
        wait_for(&format!("127.0.0.1:{port}"))
            .with_context(|| std::fs::read_to_string(work.join("nginx.err")).unwrap_or_default())?;
        Ok(Self { child, url })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// How long a node may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A release goproxy-ha node; killed on drop.
pub struct ProxyNode {
    child: Child,
    /// Base URL.
    pub url: String,
}

impl ProxyNode {
    /// Starts a single node of the release binary next to this one, upstream `upstream`
    /// (nginx over the corpus: no checksum database, so fills are not verified).
    pub fn start(work: &Path, upstream: &str) -> anyhow::Result<Self> {
        Self::start_with(&work.join("node"), upstream, &["--verify-fills", "false"])
    }

    /// A single node in `data_dir` on loopback ports, upstream `upstream`, with `extra` flags.
    pub fn start_with(data_dir: &Path, upstream: &str, extra: &[&str]) -> anyhow::Result<Self> {
        let mut args: Vec<String> = [
            "--listen",
            "127.0.0.1:0",
            "--raft-listen",
            "127.0.0.1:0",
            "--upstream",
            upstream,
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|a| a.to_string()));
        Self::spawn(data_dir, &args)
    }

    /// Starts `goproxy-ha serve --data-dir DIR ARGS --log-level warn`.
    pub fn spawn(data_dir: &Path, args: &[String]) -> anyhow::Result<Self> {
        let binary = std::env::current_exe()?.with_file_name("goproxy-ha");
        std::fs::create_dir_all(data_dir)?;
        let mut child = Command::new(&binary)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .args(["--log-level", "warn"])
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(
                data_dir.with_extension("log"),
            )?))
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let Some(listening) = goproxy_testkit::process::wait(stdout, START_TIMEOUT) else {
            let _ = child.kill();
            bail!("goproxy-ha did not start listening within {START_TIMEOUT:?}");
        };
        let addr = listening.http;
        wait_for(&addr)?;
        Ok(Self {
            child,
            url: format!("http://{addr}"),
        })
    }

    /// Fetches `path` once so later requests are cache hits.
    pub fn warm(&self, path: &str) -> anyhow::Result<()> {
        self.get(path).map(|_| ())
    }

    /// GETs `path`, failing on anything but 200; returns how long it took.
    pub fn get(&self, path: &str) -> anyhow::Result<Duration> {
        let started = std::time::Instant::now();
        let status = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("{}/{path}", self.url),
            ])
            .output()?;
        let code = String::from_utf8_lossy(&status.stdout).to_string();
        if code != "200" {
            bail!("GET {path}: HTTP {code}");
        }
        Ok(started.elapsed())
    }

    /// Waits until `/readyz` answers 200.
    pub fn wait_ready(&self) -> anyhow::Result<()> {
        for _ in 0..400 {
            if self.get("readyz").is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        bail!("{} never became ready", self.url)
    }

    /// CPU time (user + system) the node has used so far.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let rest = stat.rsplit_once(')').context("/proc/PID/stat")?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields
            .get(11..13)
            .context("utime/stime")?
            .iter()
            .map(|f| f.parse::<u64>().unwrap_or(0))
            .sum();
        // USER_HZ is 100 on Linux.
        Ok(Duration::from_millis(ticks * 10))
    }

    /// Peak resident set size (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("VmHWM not found")
    }
}

impl Drop for ProxyNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_for(addr: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    bail!("{addr} never accepted connections")
}
