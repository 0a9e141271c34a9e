//! An SSH git host for tests: Debian's sshd inside a test's network namespace, with its own
//! host key and one authorized client key, serving the repositories under a directory
//! (`ssh://root@HOST/<dir>/team/lib.git`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};

use crate::netns::Netns;

/// A running sshd; killed on drop.
pub struct SshHost {
    /// The client's private key (authorized on the host).
    pub client_key: PathBuf,
    /// A known_hosts file with the host's real key for `name`.
    pub known_hosts: PathBuf,
    /// A known_hosts file naming `name` with another key (a host that is not the real one).
    pub wrong_known_hosts: PathBuf,
    child: Child,
}

impl SshHost {
    /// Starts sshd on 127.0.0.1:22 in `ns` for host `name`, keeping its files in `dir`.
    pub fn start(ns: &Netns, name: &str, dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let keygen = |file: &Path| -> anyhow::Result<()> {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(file)
                .status()
                .context("ssh-keygen (apt-get install openssh-client)")?;
            anyhow::ensure!(status.success(), "ssh-keygen failed");
            Ok(())
        };
        let (host_key, client_key, other_key) = (
            dir.join("host_key"),
            dir.join("client_key"),
            dir.join("other_key"),
        );
        for key in [&host_key, &client_key, &other_key] {
            let _ = std::fs::remove_file(key);
            let _ = std::fs::remove_file(key.with_extension("pub"));
            keygen(key)?;
        }
        let public = |key: &Path| -> anyhow::Result<String> {
            let text = std::fs::read_to_string(key.with_extension("pub"))?;
            Ok(text
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" "))
        };
        std::fs::write(dir.join("authorized_keys"), public(&client_key)? + "\n")?;
        let known_hosts = dir.join("known_hosts");
        std::fs::write(&known_hosts, format!("{name} {}\n", public(&host_key)?))?;
        let wrong_known_hosts = dir.join("wrong_known_hosts");
        std::fs::write(
            &wrong_known_hosts,
            format!("{name} {}\n", public(&other_key)?),
        )?;
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1:22\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 StrictModes no\nPermitRootLogin prohibit-password\nPidFile {}\n",
                host_key.display(),
                dir.join("authorized_keys").display(),
                dir.join("sshd.pid").display()
            ),
        )?;
        std::fs::create_dir_all("/run/sshd")?;
        let sshd = ["/usr/sbin/sshd", "/sbin/sshd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .context("no sshd (apt-get install openssh-server)")?;
        let mut child = ns
            .command(sshd)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.join("sshd.log"))?))
            .spawn()
            .context("starting sshd")?;
        // Listening once port 22 accepts inside the namespace.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let ns = ns.clone();
            let up = std::thread::spawn(move || {
                ns.enter().is_ok() && std::net::TcpStream::connect("127.0.0.1:22").is_ok()
            })
            .join()
            .unwrap_or(false);
            if up {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "sshd exited ({status}): {}",
                    std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
                );
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                bail!("sshd did not listen within 30 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(Self {
            client_key,
            known_hosts,
            wrong_known_hosts,
            child,
        })
    }
}

impl Drop for SshHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
