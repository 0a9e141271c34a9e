//! Headless Chromium, run once per page load: `--dump-dom` for the DOM after the page's
//! scripts ran, `--screenshot` for a PNG. Virtual time makes "after three polls" exact
//! without sleeping: Chromium advances its clock only while the page is idle.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::process::Command;

/// Virtual milliseconds the page runs before the DOM is dumped: three polls at 0, 2 and 4 s.
pub const VIRTUAL_TIME_MS: u32 = 5_000;
/// Wall-clock bound on one Chromium run; a hung browser is killed, the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// How the page is looked at.
#[derive(Clone, Copy)]
pub struct View {
    /// Viewport width and height in CSS pixels.
    pub size: (u32, u32),
    /// `prefers-color-scheme: dark`.
    pub dark: bool,
}

/// A laptop-sized window in the light theme.
pub const DESKTOP: View = View {
    size: (1400, 1000),
    dark: false,
};

/// A page as Chromium left it.
pub struct Page {
    /// The DOM, serialized.
    pub dom: String,
    /// What the page logged to its console: script errors, CSP violations, `console.*`.
    pub console: Vec<String>,
}

/// The `chromium` binary on `PATH`.
pub struct Chromium {
    binary: PathBuf,
}

impl Chromium {
    /// Finds `chromium`, or fails the test: CI has it, so a missing browser is a broken
    /// machine, not a reason to skip.
    pub fn find() -> Self {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let binary = std::env::split_paths(&path)
            .map(|dir| dir.join("chromium"))
            .find(|candidate| candidate.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "chromium is not installed (not on PATH): run `scripts/bootstrap.sh test` \
                     (as root) to install it; the dashboard test needs a real browser"
                )
            });
        Chromium { binary }
    }

    /// The page after [`VIRTUAL_TIME_MS`] of virtual time.
    pub async fn load(&self, url: &str) -> Page {
        let output = self.run(&["--dump-dom".into(), url.into()], DESKTOP).await;
        let console = String::from_utf8_lossy(&output.stderr)
            .lines()
            .filter(|line| line.contains(":CONSOLE"))
            .map(String::from)
            .collect();
        let dom = String::from_utf8(output.stdout).expect("the DOM is UTF-8");
        Page { dom, console }
    }

    /// Saves a PNG of the page after [`VIRTUAL_TIME_MS`] of virtual time.
    pub async fn screenshot(&self, url: &str, png: &Path, view: View) {
        let _ = std::fs::remove_file(png);
        let shot = format!("--screenshot={}", png.display());
        self.run(&[shot, url.into()], view).await;
        let size = std::fs::metadata(png).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 0,
            "chromium wrote no screenshot to {}",
            png.display()
        );
    }

    async fn run(&self, args: &[String], view: View) -> Output {
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut command = Command::new(&self.binary);
        command
            .args([
                "--headless",
                "--disable-gpu",
                "--no-sandbox",
                "--hide-scrollbars",
            ])
            .args([
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
            ])
            .args(["--disable-dev-shm-usage", "--mute-audio", "--disable-sync"])
            .args(["--enable-logging=stderr", "--v=0"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--virtual-time-budget={VIRTUAL_TIME_MS}"))
            .arg(format!("--window-size={},{}", view.size.0, view.size.1))
            .args(view.dark.then_some("--force-dark-mode"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout kills the renderer and GPU processes too.
            .process_group(0)
            .kill_on_drop(true);
        let child = command.spawn().expect("chromium starts");
        let group = child.id().expect("chromium has a pid");
        let outcome = tokio::time::timeout(RUN_TIMEOUT, child.wait_with_output()).await;
        kill_group(group);
        let output = match outcome {
            Ok(output) => output.expect("chromium runs"),
            Err(_) => panic!("chromium did not finish within {RUN_TIMEOUT:?}: {args:?}"),
        };
        assert!(
            output.status.success(),
            "chromium failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

/// Kills what is left of the process group Chromium led (helpers outliving it, or all of it
/// after a timeout). An empty group is not an error.
fn kill_group(group: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status();
}
