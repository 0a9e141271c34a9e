//! A private git host for tests: Debian's `git http-backend` (CGI) behind a small HTTP server,
//! requiring basic auth for git traffic, answering `?go-get=1` with a `go-import` meta tag
//! (as GitLab and Gitea do, without auth), and counting what it is asked.
//!
//! [`fixture_repos`] creates the repositories the private-module tests use.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use tokio::io::AsyncWriteExt;

use crate::HttpServer;

struct Host {
    name: String,
    port: u16,
    root: PathBuf,
    authorization: String,
    backend: PathBuf,
    requests: Mutex<Vec<String>>,
}

/// A running git host; stopped on drop.
pub struct GitHost {
    /// The HTTP server (its `url` is the address it listens on).
    pub server: HttpServer,
    host: Arc<Host>,
}

impl GitHost {
    /// Serves the bare repositories under `root` (`team/lib.git` is
    /// `NAME/team/lib`) on `listener`, as host `name`, to `user`:`password`.
    pub fn start(
        listener: std::net::TcpListener,
        name: &str,
        root: &Path,
        user: &str,
        password: &str,
    ) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        let exec_path = std::process::Command::new("git")
            .arg("--exec-path")
            .output()?;
        let backend =
            PathBuf::from(String::from_utf8(exec_path.stdout)?.trim()).join("git-http-backend");
        anyhow::ensure!(
            backend.exists(),
            "{} is missing (apt-get install git)",
            backend.display()
        );
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let host = Arc::new(Host {
            name: name.to_string(),
            port,
            root: root.to_path_buf(),
            authorization: format!("Basic {credentials}"),
            backend,
            requests: Mutex::new(Vec::new()),
        });
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(host.clone());
        Ok(Self {
            server: HttpServer::serve_on(listener, router),
            host,
        })
    }

    /// Every request so far, as `METHOD path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.host.requests.lock().unwrap().clone()
    }

    /// Git fetches so far (`POST …/git-upload-pack`: one per clone or fetch).
    pub fn fetches(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.starts_with("POST ") && r.contains("/git-upload-pack"))
            .count()
    }

    /// Stops serving: the host is down.
    pub fn stop(&mut self) {
        self.server.stop();
    }
}

async fn handle(
    State(host): State<Arc<Host>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = uri.query().unwrap_or_default().to_string();
    let path = uri.path().to_string();
    host.requests
        .lock()
        .unwrap()
        .push(format!("{method} {path}?{query}"));
    if query.split('&').any(|q| q == "go-get=1") {
        // The repository is the first two path elements: host/team/repo[/sub...].
        let repo: Vec<&str> = path.trim_matches('/').splitn(3, '/').take(2).collect();
        let repo = repo.join("/");
        let html = format!(
            "<!DOCTYPE html><html><head><meta name=\"go-import\" content=\"{0}/{repo} git http://{0}:{1}/{repo}.git\"></head><body></body></html>\n",
            host.name, host.port
        );
        return ([("content-type", "text/html; charset=utf-8")], html).into_response();
    }
    let authorized = headers
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == host.authorization.as_bytes());
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Basic realm=\"git\"")],
            "authentication required\n",
        )
            .into_response();
    }
    cgi(&host, &method, &path, &query, &headers, body)
        .await
        .unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response())
}

/// Runs `git http-backend` for one request.
async fn cgi(
    host: &Host,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> anyhow::Result<Response> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut child = tokio::process::Command::new(&host.backend)
        .env_clear()
        .env("GIT_PROJECT_ROOT", &host.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REQUEST_METHOD", method.as_str())
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_USER", "git")
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = async move {
        let _ = stdin.write_all(&body).await;
    };
    let (_, out) = tokio::join!(writer, child.wait_with_output());
    let out = out?;
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| {
            out.stdout
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, i + 2))
        })
        .ok_or_else(|| anyhow::anyhow!("git http-backend printed no headers"))?;
    let head = String::from_utf8_lossy(&out.stdout[..split.0]).into_owned();
    let mut response = Response::builder();
    let mut status = StatusCode::OK;
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("status") {
            let code = value.trim().split(' ').next().unwrap_or("500");
            status = StatusCode::from_u16(code.parse().unwrap_or(500))?;
        } else {
            response = response.header(name.trim(), value.trim());
        }
    }
    Ok(response
        .status(status)
        .body(Body::from(out.stdout[split.1..].to_vec()))?)
}

/// Commit dates of the fixture (fixed, so pseudo-versions are the same in every run).
const DATES: [&str; 4] = [
    "2026-01-01T00:00:00Z",
    "2026-02-01T00:00:00Z",
    "2026-03-01T00:00:00Z",
    "2026-04-01T00:00:00Z",
];

/// Creates the bare repositories of host `name` under `root`:
/// - `team/lib`: `NAME/team/lib` tagged v1.0.0 and v1.1.0, one commit after the last tag on
///   `main`, and `NAME/team/lib/v2` in the `v2/` subdirectory tagged v2.0.0;
/// - `team/liar`: go.mod declares `example.com/someone-else` (tag v1.0.0);
/// - `team/escape`: a symlink to `/etc/passwd` (tag v1.0.0);
/// - `team/case`: `Lib.go` and `lib.go` (tag v1.0.0);
/// - `team/big`: a 3 MiB file of random bytes (tag v1.0.0), for a lowered zip limit.
pub fn fixture_repos(root: &Path, name: &str) -> anyhow::Result<()> {
    let work = root.join(".work");
    let lib = work.join("lib");
    std::fs::create_dir_all(&lib)?;
    let module = format!("{name}/team/lib");
    let git = Git::init(&lib)?;
    std::fs::write(lib.join("go.mod"), format!("module {module}\n\ngo 1.18\n"))?;
    let source = |v: &str| {
        format!("package lib\n\n// Version names this revision.\nfunc Version() string {{ return \"{v}\" }}\n")
    };
    std::fs::write(lib.join("lib.go"), source("v1.0.0"))?;
    git.commit("v1.0.0", DATES[0])?;
    git.run(&["tag", "v1.0.0"])?;
    std::fs::write(lib.join("lib.go"), source("v1.1.0"))?;
    git.commit("v1.1.0", DATES[1])?;
    git.run(&["tag", "v1.1.0"])?;
    std::fs::create_dir_all(lib.join("v2"))?;
    std::fs::write(
        lib.join("v2/go.mod"),
        format!("module {module}/v2\n\ngo 1.18\n"),
    )?;
    std::fs::write(lib.join("v2/lib.go"), source("v2.0.0"))?;
    git.commit("v2", DATES[2])?;
    git.run(&["tag", "v2.0.0"])?;
    std::fs::write(lib.join("lib.go"), source("main"))?;
    git.commit("after the last tag", DATES[3])?;
    git.bare_into(&root.join("team/lib.git"))?;

    for (repo, setup) in [
        ("liar", Setup::GoMod("example.com/someone-else")),
        ("escape", Setup::Symlink),
        ("case", Setup::CaseFold),
        ("big", Setup::Big),
    ] {
        let dir = work.join(repo);
        std::fs::create_dir_all(&dir)?;
        let git = Git::init(&dir)?;
        let declared = match setup {
            Setup::GoMod(other) => other.to_string(),
            _ => format!("{name}/team/{repo}"),
        };
        std::fs::write(
            dir.join("go.mod"),
            format!("module {declared}\n\ngo 1.18\n"),
        )?;
        std::fs::write(dir.join("x.go"), "package x\n")?;
        match setup {
            Setup::Symlink => std::os::unix::fs::symlink("/etc/passwd", dir.join("passwd"))?,
            Setup::CaseFold => std::fs::write(dir.join("X.go"), "package x\n")?,
            Setup::Big => {
                let mut bytes = vec![0u8; 3 << 20];
                let mut state = 0x2545_f491_4f6c_dd1d_u64;
                for b in bytes.iter_mut() {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    *b = state as u8;
                }
                std::fs::write(dir.join("blob.bin"), bytes)?;
            }
            Setup::GoMod(_) => {}
        }
        git.commit("v1.0.0", DATES[0])?;
        git.run(&["tag", "v1.0.0"])?;
        git.bare_into(&root.join(format!("team/{repo}.git")))?;
    }
    std::fs::remove_dir_all(&work)?;
    Ok(())
}

enum Setup {
    GoMod(&'static str),
    Symlink,
    CaseFold,
    Big,
}

struct Git<'a> {
    dir: &'a Path,
}

impl<'a> Git<'a> {
    fn init(dir: &'a Path) -> anyhow::Result<Self> {
        let git = Self { dir };
        git.run(&["init", "-q", "-b", "main"])?;
        Ok(git)
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<()> {
        self.run_at(args, DATES[0])
    }

    fn run_at(&self, args: &[&str], date: &str) -> anyhow::Result<()> {
        let status = std::process::Command::new("git")
            .args(args)
            .current_dir(self.dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Fixture")
            .env("GIT_AUTHOR_EMAIL", "fixture@example.com")
            .env("GIT_COMMITTER_NAME", "Fixture")
            .env("GIT_COMMITTER_EMAIL", "fixture@example.com")
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date)
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "git {args:?} in {}", self.dir.display());
        Ok(())
    }

    fn commit(&self, message: &str, date: &str) -> anyhow::Result<()> {
        self.run_at(&["add", "-A"], date)?;
        self.run_at(&["commit", "-q", "-m", message], date)
    }

    fn bare_into(&self, target: &Path) -> anyhow::Result<()> {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let status = std::process::Command::new("git")
            .args(["clone", "-q", "--bare"])
            .arg(self.dir)
            .arg(target)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .status()?;
        anyhow::ensure!(status.success(), "git clone --bare {}", self.dir.display());
        Ok(())
    }
}
