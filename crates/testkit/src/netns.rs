//! Named network namespaces (`ip netns`): create, configure, run commands and threads inside,
//! and delete with every process in them.
//!
//! A thread that calls [`Netns::enter`] opens its sockets in that namespace, which is how the
//! client prober, the holder sampler and status queries run inside the lab from one process.

use std::fs::File;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A network namespace this process created (or adopted by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates namespace `name` with its loopback up. Fails if it exists already.
    pub fn create(name: &str) -> anyhow::Result<Netns> {
        run("ip", &["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Refers to an existing namespace without creating it.
    pub fn existing(name: &str) -> Netns {
        Netns {
            name: name.to_string(),
        }
    }

    /// The namespace's name (as `ip netns` lists it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n <ns> <args…>`.
    pub fn ip(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// `ip -n <ns> <args…>` and its standard output.
    pub fn ip_output(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        output("ip", &full)
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`, which `exec`s, so
    /// the child's pid is the program's pid).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Runs `program args…` inside the namespace and waits for success.
    pub fn exec(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        self.exec_with_input(program, args, "")
    }

    /// Runs `program` with `input` on its standard input, inside the namespace, and waits for
    /// success (the error carries its stderr).
    pub fn exec_with_input(&self, program: &str, args: &[&str], input: &str) -> anyhow::Result<()> {
        use std::io::Write;
        let mut child = self
            .command(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {program} in {}", self.name))?;
        let mut stdin = child.stdin.take().context("stdin")?;
        stdin.write_all(input.as_bytes())?;
        drop(stdin);
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "{program} {args:?} in {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Every process whose network namespace is this one.
    pub fn pids(&self) -> Vec<i32> {
        output("ip", &["netns", "pids", &self.name])
            .map(|out| {
                out.split_whitespace()
                    .filter_map(|pid| pid.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sends SIGKILL to every process in the namespace ("the power went out").
    pub fn kill_all(&self) {
        for pid in self.pids() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }

    /// Moves the calling thread into the namespace: sockets it opens from now on live there.
    pub fn enter(&self) -> anyhow::Result<()> {
        let path = format!("/run/netns/{}", self.name);
        let file = File::open(&path).with_context(|| format!("opening {path}"))?;
        setns(&file, CloneFlags::CLONE_NEWNET).with_context(|| format!("setns {path}"))?;
        Ok(())
    }

    /// Runs `make` on a fresh thread inside the namespace, on a current-thread runtime, and
    /// waits for its result.
    pub fn block_on<T, F, M>(&self, make: M) -> anyhow::Result<T>
    where
        M: FnOnce() -> F + Send + 'static,
        F: std::future::Future<Output = anyhow::Result<T>>,
        T: Send + 'static,
    {
        let ns = self.clone();
        std::thread::spawn(move || -> anyhow::Result<T> {
            ns.enter()?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(make())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("thread in {} panicked", self.name))?
    }

    /// Makes `text` the `/etc/hosts` of programs started with [`Netns::command`] (`ip netns
    /// exec` bind-mounts `/etc/netns/NAME/hosts`); the machine's own `/etc/hosts` is untouched.
    pub fn set_hosts(&self, text: &str) -> anyhow::Result<()> {
        let dir = format!("/etc/netns/{}", self.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {dir}"))?;
        std::fs::write(format!("{dir}/hosts"), text).with_context(|| format!("writing {dir}/hosts"))
    }

    /// A TCP listener bound to `addr` inside the namespace (serve it from any thread).
    pub fn bind_tcp(&self, addr: &str) -> anyhow::Result<std::net::TcpListener> {
        let ns = self.clone();
        let addr = addr.to_string();
        std::thread::spawn(move || -> anyhow::Result<std::net::TcpListener> {
            ns.enter()?;
            std::net::TcpListener::bind(&addr)
                .with_context(|| format!("binding {addr} in {}", ns.name))
        })
        .join()
        .map_err(|_| anyhow::anyhow!("binding thread panicked"))?
    }

    /// Kills every process inside, then deletes the namespace (and its `/etc/netns` files).
    /// Errors are ignored: this runs on the cleanup path.
    pub fn delete(&self) {
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.name));
        self.kill_all();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Names of the existing namespaces that start with `prefix`.
pub fn list(prefix: &str) -> Vec<String> {
    output("ip", &["netns", "list"])
        .map(|out| {
            out.lines()
                .filter_map(|line| line.split_whitespace().next())
                .filter(|name| name.starts_with(prefix))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Runs a host command and requires success.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    output(program, args).map(drop)
}

/// Runs a host command, requires success, returns its standard output.
pub fn output(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether this process runs as root (the lab needs it).
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}
