//! The lab's node-to-node certificates: a CA, one certificate per node and an operator
//! certificate, made with `goproxy-ha certs` exactly as the runbook tells an operator to.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::bail;

/// The operator name of the lab's admin certificate.
pub const ADMIN: &str = "lab";

/// Creates (once) the CA in `dir` and the certificates of nodes `1..=nodes` and of the lab's
/// operator. Returns `dir`.
pub fn ensure(goproxy_ha: &Path, dir: &Path, nodes: usize) -> anyhow::Result<PathBuf> {
    let run = |args: &[String]| -> anyhow::Result<()> {
        let output = Command::new(goproxy_ha)
            .arg("certs")
            .args(args)
            .arg("--dir")
            .arg(dir)
            .output()?;
        if !output.status.success() {
            bail!(
                "goproxy-ha certs {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    };
    if !dir.join("ca.pem").is_file() {
        run(&["init".into()])?;
    }
    if !dir.join(format!("admin-{ADMIN}.pem")).is_file() {
        run(&["issue".into(), "--admin".into(), ADMIN.into()])?;
    }
    for id in 1..=nodes {
        if !dir.join(format!("node-{id}.pem")).is_file() {
            run(&["issue".into(), "--node".into(), id.to_string()])?;
        }
    }
    Ok(dir.to_path_buf())
}

/// The environment giving `goproxy-ha cluster …` / `drill` the lab's operator certificate.
pub fn admin_env(dir: &Path) -> Vec<(String, PathBuf)> {
    vec![
        ("GOPROXY_HA_ADMIN_CA".into(), dir.join("ca.pem")),
        (
            "GOPROXY_HA_ADMIN_CERT".into(),
            dir.join(format!("admin-{ADMIN}.pem")),
        ),
        (
            "GOPROXY_HA_ADMIN_KEY".into(),
            dir.join(format!("admin-{ADMIN}.key")),
        ),
    ]
}
