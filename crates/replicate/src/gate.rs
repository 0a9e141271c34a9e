//! What a node checks before it accepts a pushed blob, declared here and implemented by the
//! node over its index and its view of leadership.

use std::sync::Arc;

use goproxy_protocol::index::{ArtifactKey, ArtifactKind, BlobRef};

use crate::cluster::ClusterView;
use crate::wire;

/// Whether a pushed blob may be stored.
pub trait PushGate: Send + Sync + 'static {
    /// `Ok` when `sender` (the node id its certificate proved; `None` on an insecure cluster)
    /// may push `blob` as the content of `key`: the key is committed with exactly this blob,
    /// or it is not committed yet and `sender` is the leader this node follows (a fill in
    /// progress). `Err` says why not.
    fn admit(&self, sender: Option<u64>, key: &ArtifactKey, blob: &BlobRef) -> Result<(), String>;
}

/// The gate a node uses: the content of a committed entry, or of a fill in progress on the
/// leader it follows.
pub struct CommittedOrLeader {
    cluster: Arc<dyn ClusterView>,
}

impl CommittedOrLeader {
    /// A gate over `cluster`'s applied index and leadership.
    pub fn new(cluster: Arc<dyn ClusterView>) -> Self {
        Self { cluster }
    }
}

impl PushGate for CommittedOrLeader {
    fn admit(&self, sender: Option<u64>, key: &ArtifactKey, blob: &BlobRef) -> Result<(), String> {
        match self.cluster.committed(key) {
            Ok(Some(committed)) if &committed == blob => return Ok(()),
            Ok(Some(committed)) => {
                return Err(format!(
                    "{key} is committed with blob {} ({} bytes)",
                    committed.sha256, committed.size
                ))
            }
            Ok(None) => {}
            Err(e) => return Err(format!("reading the index: {e}")),
        }
        let leader = self.cluster.leader();
        match (sender, leader) {
            // An insecure cluster cannot tell who pushes.
            (None, _) => Ok(()),
            (Some(sender), Some(leader)) if sender == leader => Ok(()),
            (Some(sender), leader) => Err(format!(
                "{key} is not committed, and only the leader (node {}) pushes fills in progress, not node {sender}",
                leader.map_or("unknown".to_string(), |l| l.to_string())
            )),
        }
    }
}

/// The artifact of a push, as sent on the wire.
pub fn to_wire(key: &ArtifactKey) -> wire::Artifact {
    wire::Artifact {
        module: key.module.clone(),
        version: key.version.clone(),
        kind: key.kind.extension().to_string(),
    }
}

/// The artifact of a push as received; `Err` for a missing or malformed one.
pub fn from_wire(artifact: Option<wire::Artifact>) -> Result<ArtifactKey, String> {
    let artifact = artifact.ok_or("a push must name its artifact")?;
    let kind = ArtifactKind::from_extension(&artifact.kind)
        .ok_or_else(|| format!("unknown artifact kind {:?}", artifact.kind))?;
    if artifact.module.is_empty() || artifact.version.is_empty() {
        return Err("a push must name its module and version".into());
    }
    Ok(ArtifactKey {
        module: artifact.module,
        version: artifact.version,
        kind,
    })
}
