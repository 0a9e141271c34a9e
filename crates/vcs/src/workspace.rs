//! The environment `go` runs in for one credential set: its own HOME with a `.netrc` and a
//! `.gitconfig`, its own module cache (so one set's private clones are never another's),
//! and variables that make every fetch direct, non-interactive and host-key checked.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::config::{CredentialSpec, VcsConfig};
use crate::secret::{Redactor, Secret};

/// Name of the workspace used by routes without `credentials`.
pub const ANONYMOUS: &str = "anonymous";

/// One credential set's prepared environment.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// Root of this set's files.
    pub dir: PathBuf,
    /// Its module cache (downloads and VCS clones).
    pub modcache: PathBuf,
    /// Where each operation's temporary directory is made.
    pub tmp: PathBuf,
    /// Variables `go` runs with (the whole environment: nothing else is inherited).
    pub env: Vec<(String, String)>,
    /// Hides this set's secrets in anything shown.
    pub redactor: Redactor,
    /// Local paths of this set's files, never shown to clients.
    pub hidden: Vec<String>,
}

impl Workspace {
    /// Creates (or refreshes) the workspace of set `name` under `root`: reads its secrets,
    /// writes `.netrc` and `.gitconfig` (mode 0600 in a 0700 HOME). Errors name files and
    /// variables, never secret values.
    pub fn prepare(
        root: &Path,
        name: &str,
        spec: &CredentialSpec,
        config: &VcsConfig,
    ) -> Result<Self, String> {
        let dir = root.join(name);
        let home = dir.join("home");
        let modcache = dir.join("modcache");
        let tmp = dir.join("tmp");
        for d in [&dir, &home, &modcache, &tmp, &root.join("gocache")] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(d)
                .map_err(|e| format!("creating the VCS workspace: {e}"))?;
        }
        // Leftovers of operations that a crash interrupted.
        if let Ok(entries) = fs::read_dir(&tmp) {
            for entry in entries.flatten() {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        let mut redactor = Redactor::default();
        let base = match &spec.netrc_file {
            Some(path) => {
                let text = fs::read_to_string(path)
                    .map_err(|e| format!("reading netrc_file {}: {e}", path.display()))?;
                redactor.add_netrc(&text);
                Some(text)
            }
            None => None,
        };
        let mut tokens = Vec::new();
        for token in &spec.tokens {
            let secret = match (&token.token_file, &token.token_env) {
                (Some(file), _) => Secret::from_file(file),
                (None, Some(var)) => Secret::from_env(var),
                (None, None) => Err("no token source".into()),
            }
            .map_err(|e| format!("token for {}: {e}", token.host))?;
            redactor.add(secret.clone());
            tokens.push((token.host.clone(), token.username.clone(), secret));
        }
        for (path, what) in [
            (&spec.ssh_key_file, "ssh_key_file"),
            (&spec.known_hosts_file, "known_hosts_file"),
        ] {
            if let Some(path) = path {
                fs::metadata(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
            }
        }
        write_private(&home.join(".netrc"), &netrc_text(base.as_deref(), &tokens))?;
        let plain_http = !config.insecure_hosts.is_empty();
        write_private(
            &home.join(".gitconfig"),
            &gitconfig_text(&spec.insteadof, plain_http),
        )?;
        let hidden = [&spec.netrc_file, &spec.ssh_key_file, &spec.known_hosts_file]
            .into_iter()
            .flatten()
            .chain(spec.tokens.iter().filter_map(|t| t.token_file.as_ref()))
            .map(|p| p.display().to_string())
            .collect();
        let ssh = ssh_command(
            spec.ssh_key_file.as_deref(),
            spec.known_hosts_file.as_deref(),
        );
        let env = environment(root, &home, &modcache, config, &ssh);
        Ok(Self {
            dir,
            modcache,
            tmp,
            env,
            redactor,
            hidden,
        })
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    // A file that existed keeps its old mode through open(): tighten it.
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("restricting {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// The netrc: the configured file's lines, then one line per token.
pub fn netrc_text(base: Option<&str>, tokens: &[(String, String, Secret)]) -> String {
    let mut text = base.unwrap_or_default().to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for (host, user, token) in tokens {
        text.push_str(&format!(
            "machine {host} login {user} password {}\n",
            token.expose()
        ));
    }
    text
}

/// The git configuration: no credential helper (nothing may prompt or read a keyring), URL
/// rewrites, and no protocols but https, ssh, and http only with `insecure_hosts`.
pub fn gitconfig_text(insteadof: &BTreeMap<String, String>, plain_http: bool) -> String {
    let mut text = String::from(
        "[credential]\n\thelper =\n[protocol]\n\tallow = never\n[protocol \"https\"]\n\tallow = always\n\
         [protocol \"ssh\"]\n\tallow = always\n",
    );
    if plain_http {
        text.push_str("[protocol \"http\"]\n\tallow = always\n");
    }
    for (from, to) in insteadof {
        text.push_str(&format!("[url \"{to}\"]\n\tinsteadOf = {from}\n"));
    }
    text
}

/// `GIT_SSH_COMMAND`: batch mode, strict host key checking, only the configured key and
/// known hosts (without them, every SSH host is unknown and refused).
pub fn ssh_command(key: Option<&Path>, known_hosts: Option<&Path>) -> String {
    let known = known_hosts.map_or_else(|| "/dev/null".to_string(), quote);
    let mut command = format!(
        "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes \
         -o UserKnownHostsFile={known} -o GlobalKnownHostsFile=/dev/null -o IdentityAgent=none"
    );
    if let Some(key) = key {
        command.push_str(&format!(" -o IdentitiesOnly=yes -i {}", quote(key)));
    }
    command
}

/// A path quoted for the shell git runs `GIT_SSH_COMMAND` with.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// The whole environment of a `go` run.
pub fn environment(
    root: &Path,
    home: &Path,
    modcache: &Path,
    config: &VcsConfig,
    ssh: &str,
) -> Vec<(String, String)> {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let dir = |p: &Path| p.display().to_string();
    let mut env: Vec<(String, String)> = [
        ("PATH", path),
        ("HOME", dir(home)),
        ("GOPATH", dir(&root.join("gopath"))),
        ("GOMODCACHE", dir(modcache)),
        ("GOCACHE", dir(&root.join("gocache"))),
        ("GOENV", "off".into()),
        ("GOWORK", "off".into()),
        ("GOPROXY", "direct".into()),
        // Checksums are the checksum database layer's job; a private path must never be
        // sent to a public checksum database.
        ("GOSUMDB", "off".into()),
        ("GOVCS", "*:git".into()),
        ("GO111MODULE", "on".into()),
        ("GOFLAGS", "-modcacherw".into()),
        ("GOTOOLCHAIN", "local".into()),
        ("GOTELEMETRY", "off".into()),
        ("CGO_ENABLED", "0".into()),
        ("GIT_TERMINAL_PROMPT", "0".into()),
        ("GIT_ASKPASS", "/bin/false".into()),
        ("SSH_ASKPASS", "/bin/false".into()),
        ("GCM_INTERACTIVE", "never".into()),
        ("GIT_CONFIG_NOSYSTEM", "1".into()),
        ("GIT_CONFIG_GLOBAL", dir(&home.join(".gitconfig"))),
        ("GIT_SSH_COMMAND", ssh.to_string()),
        ("LANG", "C".into()),
        ("LC_ALL", "C".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if !config.insecure_hosts.is_empty() {
        env.push(("GOINSECURE".into(), config.insecure_hosts.join(",")));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenSpec;

    #[test]
    fn a_workspace_holds_its_secrets_in_private_files_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let netrc = dir.path().join("netrc");
        std::fs::write(&netrc, "machine a.example login u password netrc-pw").unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "tok-123456\n").unwrap();
        let key = dir.path().join("id key");
        std::fs::write(&key, "KEY").unwrap();
        let known = dir.path().join("known_hosts");
        std::fs::write(&known, "").unwrap();
        let spec = CredentialSpec {
            netrc_file: Some(netrc),
            tokens: vec![TokenSpec {
                host: "git.corp.example".into(),
                username: "oauth2".into(),
                token_file: Some(token),
                token_env: None,
            }],
            ssh_key_file: Some(key),
            known_hosts_file: Some(known),
            insteadof: [(
                "https://git.corp.example/".to_string(),
                "ssh://git@git.corp.example/".to_string(),
            )]
            .into(),
        };
        let config = VcsConfig {
            insecure_hosts: vec!["git.lab.test".into()],
            ..VcsConfig::default()
        };
        let root = dir.path().join("vcs");
        let ws = Workspace::prepare(&root, "corp", &spec, &config).unwrap();
        let home = ws.dir.join("home");
        let netrc_text = std::fs::read_to_string(home.join(".netrc")).unwrap();
        assert_eq!(
            netrc_text,
            "machine a.example login u password netrc-pw\n\
             machine git.corp.example login oauth2 password tok-123456\n"
        );
        for file in [".netrc", ".gitconfig"] {
            let mode = std::fs::metadata(home.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        let gitconfig = std::fs::read_to_string(home.join(".gitconfig")).unwrap();
        assert!(gitconfig.contains(
            "[url \"ssh://git@git.corp.example/\"]\n\tinsteadOf = https://git.corp.example/\n"
        ));
        let env: BTreeMap<_, _> = ws.env.iter().cloned().collect();
        assert_eq!(env["GOPROXY"], "direct");
        assert_eq!(env["GIT_TERMINAL_PROMPT"], "0");
        assert_eq!(env["GOINSECURE"], "git.lab.test");
        assert!(env["GIT_SSH_COMMAND"].contains("StrictHostKeyChecking=yes"));
        assert!(
            env["GIT_SSH_COMMAND"].contains("-i '"),
            "{}",
            env["GIT_SSH_COMMAND"]
        );
        // No secret in the environment, where /proc/PID/environ would show it.
        let all = format!("{:?}", ws.env);
        assert!(
            !all.contains("tok-123456") && !all.contains("netrc-pw"),
            "{all}"
        );
        assert_eq!(ws.redactor.scrub("x tok-123456 netrc-pw"), "x *** ***");
    }

    /// Review findings: a .netrc that existed kept its old (wider) mode; plain http was
    /// allowed to git even without insecure hosts; configured file paths reached clients.
    #[test]
    fn existing_files_are_tightened_http_needs_insecure_hosts_and_paths_are_hidden() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let netrc = dir.path().join("netrc");
        std::fs::write(&netrc, "machine h login u password pw-123456\n").unwrap();
        let home = dir.path().join("vcs/x/home");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join(".netrc"), "old").unwrap();
        std::fs::set_permissions(home.join(".netrc"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let spec = CredentialSpec {
            netrc_file: Some(netrc.clone()),
            ..CredentialSpec::default()
        };
        let ws =
            Workspace::prepare(&dir.path().join("vcs"), "x", &spec, &VcsConfig::default()).unwrap();
        let mode = std::fs::metadata(home.join(".netrc"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let gitconfig = std::fs::read_to_string(home.join(".gitconfig")).unwrap();
        assert!(!gitconfig.contains("protocol \"http\""), "{gitconfig}");
        assert_eq!(ws.hidden, [netrc.display().to_string()]);
    }

    #[test]
    fn unreadable_secret_files_are_reported_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let spec = CredentialSpec {
            netrc_file: Some(dir.path().join("missing-netrc")),
            ..CredentialSpec::default()
        };
        let err = Workspace::prepare(dir.path(), "x", &spec, &VcsConfig::default()).unwrap_err();
        assert!(err.contains("missing-netrc"), "{err}");
    }
}
