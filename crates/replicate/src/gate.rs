//! What a node checks before it accepts a pushed blob, declared here and implemented by the
//! node over its index and its view of leadership.

use goproxy_protocol::index::{ArtifactKey, ArtifactKind, BlobRef};

use crate::wire;

/// Whether a pushed blob may be stored.
pub trait PushGate: Send + Sync + 'static {
    /// `Ok` when `sender` (the node id its certificate proved; `None` on an insecure cluster)
    /// may push `blob` as the content of `key`: the key is committed with exactly this blob,
    /// or it is not committed yet and `sender` is the leader this node follows (a fill in
    /// progress). `Err` says why not.
    fn admit(&self, sender: Option<u64>, key: &ArtifactKey, blob: &BlobRef) -> Result<(), String>;
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
