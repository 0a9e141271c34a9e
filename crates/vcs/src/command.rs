//! One bounded `go` process: its own process group (so git and ssh children die with it),
//! killed on timeout or when the caller gives up, with capped output.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// Most stdout kept (a `list` of thousands of versions fits).
pub const MAX_STDOUT: usize = 8 << 20;
/// Most stderr kept (the reason of a failure is at its start).
pub const MAX_STDERR: usize = 64 << 10;

/// What a finished run printed.
#[derive(Debug)]
pub struct Output {
    /// Exit success.
    pub success: bool,
    /// Standard output, cut at [`MAX_STDOUT`].
    pub stdout: Vec<u8>,
    /// Standard error, cut at [`MAX_STDERR`].
    pub stderr: String,
}

/// Why a run produced no [`Output`].
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// It ran longer than allowed and was killed with its process group.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Reading its output failed.
    #[error("reading its output: {0}")]
    Io(#[from] std::io::Error),
}

/// Kills the process group unless disarmed: covers timeouts and a dropped caller.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = killpg(pid, Signal::SIGKILL);
        }
    }
}

/// Runs `program args` in `dir` with exactly `env`, for at most `timeout`.
pub async fn run(
    program: &Path,
    args: &[&str],
    dir: &Path,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<Output, RunError> {
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|source| RunError::Spawn {
        program: program.display().to_string(),
        source,
    })?;
    let mut guard = GroupGuard(child.id().map(|id| Pid::from_raw(id as i32)));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let work = async {
        let (out, err, status) = tokio::join!(
            read_capped(stdout, MAX_STDOUT),
            read_capped(stderr, MAX_STDERR),
            child.wait()
        );
        Ok::<_, std::io::Error>((out?, err?, status?))
    };
    match tokio::time::timeout(timeout, work).await {
        Err(_) => Err(RunError::Timeout(timeout)),
        Ok(Err(e)) => Err(e.into()),
        Ok(Ok((stdout, stderr, status))) => {
            // Reaped: its pid (the group id) may be reused from now on, so never signal it.
            guard.0 = None;
            Ok(Output {
                success: status.success(),
                stdout,
                stderr: String::from_utf8_lossy(&stderr).into_owned(),
            })
        }
    }
}

/// Reads all of `reader`, keeping at most `cap` bytes (the rest is drained, so the child
/// never blocks on a full pipe).
async fn read_capped(
    reader: Option<impl AsyncRead + Unpin>,
    cap: usize,
) -> std::io::Result<Vec<u8>> {
    let Some(mut reader) = reader else {
        return Ok(Vec::new());
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(kept);
        }
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        vec![("PATH".into(), "/usr/bin:/bin".into())]
    }

    #[tokio::test]
    async fn output_is_captured_and_the_environment_is_exactly_the_given_one() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("GOPROXY_HA_TEST_LEAK", "leak");
        let out = run(
            Path::new("/bin/sh"),
            &["-c", "echo out; echo err >&2; env"],
            dir.path(),
            &env(),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        assert!(out.success);
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(stdout.starts_with("out\n"), "{stdout}");
        assert!(!stdout.contains("GOPROXY_HA_TEST_LEAK"), "{stdout}");
        assert_eq!(out.stderr, "err\n");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("grandchild.pid");
        let script = format!("sleep 300 & echo $! > '{}'; wait", marker.display());
        let started = std::time::Instant::now();
        let err = run(
            Path::new("/bin/sh"),
            &["-c", &script],
            dir.path(),
            &env(),
            Duration::from_millis(500),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RunError::Timeout(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(60));
        let pid: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild (sleep) must be gone too; poll generously for the kernel to reap it.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let gone = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true)
        };
        while !gone(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(gone(pid), "sleep {pid} survived the timeout");
    }

    #[tokio::test]
    async fn huge_output_is_capped_without_blocking_the_child() {
        let dir = tempfile::tempdir().unwrap();
        let out = run(
            Path::new("/bin/sh"),
            &["-c", "head -c 20000000 /dev/zero; echo done >&2"],
            dir.path(),
            &env(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert!(out.success);
        assert_eq!(out.stdout.len(), MAX_STDOUT);
        assert_eq!(out.stderr, "done\n");
    }

    #[tokio::test]
    async fn a_missing_program_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = run(
            Path::new("/nonexistent/go"),
            &["version"],
            dir.path(),
            &env(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("cannot run /nonexistent/go"),
            "{err}"
        );
    }
}
