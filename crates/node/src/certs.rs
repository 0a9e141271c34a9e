//! `goproxy-ha certs init | issue`: a cluster CA and node/admin certificates on disk, for a
//! quick start (`cluster/RUNBOOK.md` covers rotation). Keys are written mode 0600 and never
//! overwritten without `--force`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use goproxy_pki::{Authority, Identity};

/// The CA certificate's file name in the certificate directory.
pub const CA_CERT: &str = "ca.pem";
/// The CA key's file name.
pub const CA_KEY: &str = "ca.key";
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Writes `contents` to `path` with `mode`, refusing to replace a file unless `force`.
fn write_file(path: &Path, contents: &str, mode: u32, force: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(mode);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).with_context(|| {
        if path.exists() && !force {
            format!("{} exists (use --force to replace it)", path.display())
        } else {
            format!("writing {}", path.display())
        }
    })?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// `certs init`: a new CA in `dir`.
pub fn init(dir: &Path, name: &str, days: u32, force: bool) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca = Authority::generate(name, DAY * days)?;
    let (cert, key) = (dir.join(CA_CERT), dir.join(CA_KEY));
    write_file(&key, &ca.key_pem(), 0o600, force)?;
    write_file(&cert, ca.cert_pem(), 0o644, force)?;
    Ok(vec![cert, key])
}

/// `certs issue`: a certificate for `identity`, signed by the CA in `dir`, written beside it.
pub fn issue(
    dir: &Path,
    identity: &Identity,
    days: u32,
    force: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (create a CA first: goproxy-ha certs init --dir {})",
                path.display(),
                dir.display()
            )
        })
    };
    let ca = Authority::load(&read(CA_CERT)?, &read(CA_KEY)?)?;
    let issued = ca.issue(identity, DAY * days)?;
    let label = identity.label();
    let (cert, key) = (
        dir.join(format!("{label}.pem")),
        dir.join(format!("{label}.key")),
    );
    write_file(&key, &issued.key_pem, 0o600, force)?;
    write_file(&cert, &issued.cert_pem, 0o644, force)?;
    Ok(vec![cert, key])
}

/// The identity `certs issue` was asked for.
pub fn identity(node: Option<u64>, admin: Option<&str>) -> anyhow::Result<Identity> {
    match (node, admin) {
        (Some(0), _) => bail!("--node: ids start at 1"),
        (Some(id), None) => Ok(Identity::Node(id)),
        (None, Some(name)) if goproxy_pki::identity::valid_admin_name(name) => {
            Ok(Identity::Admin(name.to_string()))
        }
        (None, Some(name)) => bail!("--admin {name:?}: 1-64 characters of a-z 0-9 . _ -"),
        _ => bail!("give --node ID or --admin NAME"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn issued_files_load_as_a_transport_and_keys_are_private() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), "test", 30, false).unwrap();
        assert!(
            init(dir.path(), "test", 30, false).is_err(),
            "overwrote the CA"
        );
        let files = issue(dir.path(), &Identity::Node(2), 30, false).unwrap();
        for path in &files {
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            let private = path.extension().is_some_and(|e| e == "key");
            assert_eq!(
                mode,
                if private { 0o600 } else { 0o644 },
                "{}",
                path.display()
            );
        }
        let transport =
            goproxy_rpc::Transport::from_files(&dir.path().join(CA_CERT), &files[0], &files[1])
                .unwrap();
        assert_eq!(transport.identity(), Some(&Identity::Node(2)));
        assert!(identity(None, Some("Bad Name")).is_err());
        assert!(identity(Some(0), None).is_err());
    }
}
