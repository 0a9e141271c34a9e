//! The cache index's data model: what the cluster agrees on for each cached artifact.
//!
//! These are plain values shared by the front end (which creates them after a validated
//! fill) and the consensus layer (which replicates and applies them). They carry no I/O.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What an index entry holds: one of the three immutable files the GOPROXY protocol serves
/// for a module version, or an immutable file of a checksum database the proxy verified.
///
/// Checksum-database entries use [`sumdb_key`] and [`sumdb_tree_key`]: the "module" is
/// `sumdb/NAME` (never a module path: its first element has no dot) and the "version" is the
/// file's path in that database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ArtifactKind {
    /// `@v/$version.info`: JSON metadata.
    Info,
    /// `@v/$version.mod`: the go.mod file.
    Mod,
    /// `@v/$version.zip`: the module source archive.
    Zip,
    /// A verified lookup answer or tile of a checksum database (immutable by its path).
    SumdbFile,
    /// A verified signed tree head of a checksum database, by tree size.
    SumdbTree,
}

impl ArtifactKind {
    /// File extension used in the protocol (`info`, `mod`, `zip`).
    pub fn extension(self) -> &'static str {
        match self {
            ArtifactKind::Info => "info",
            ArtifactKind::Mod => "mod",
            ArtifactKind::Zip => "zip",
            ArtifactKind::SumdbFile => "sumdb",
            ArtifactKind::SumdbTree => "sumdb-tree",
        }
    }

    /// The kind with file extension `ext` (`info`, `mod`, `zip`, `sumdb`, `sumdb-tree`).
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "info" => Some(ArtifactKind::Info),
            "mod" => Some(ArtifactKind::Mod),
            "zip" => Some(ArtifactKind::Zip),
            "sumdb" => Some(ArtifactKind::SumdbFile),
            "sumdb-tree" => Some(ArtifactKind::SumdbTree),
            _ => None,
        }
    }

    /// Whether this is one of a module version's own files (not a checksum database's).
    pub fn is_module_file(self) -> bool {
        matches!(
            self,
            ArtifactKind::Info | ArtifactKind::Mod | ArtifactKind::Zip
        )
    }

    /// The largest artifact of this kind the proxy accepts (from upstream or from a peer).
    pub fn max_size(self) -> u64 {
        match self {
            ArtifactKind::Info => crate::artifact::MAX_INFO_SIZE,
            ArtifactKind::Mod => crate::artifact::MAX_GO_MOD_SIZE,
            ArtifactKind::Zip => crate::zipcheck::MAX_ZIP_SIZE,
            ArtifactKind::SumdbFile => MAX_SUMDB_FILE_SIZE,
            ArtifactKind::SumdbTree => MAX_SUMDB_TREE_SIZE,
        }
    }

    /// The `Content-Type` a proxy answers with for this artifact.
    pub fn content_type(self) -> &'static str {
        match self {
            ArtifactKind::Info => "application/json",
            ArtifactKind::Mod | ArtifactKind::SumdbFile | ArtifactKind::SumdbTree => {
                "text/plain; charset=utf-8"
            }
            ArtifactKind::Zip => "application/zip",
        }
    }
}

/// Largest checksum-database file kept (a lookup is at most 64 KiB, a hash tile 8 KiB, a
/// data tile of 256 records well under this).
pub const MAX_SUMDB_FILE_SIZE: u64 = 1 << 20;
/// Largest signed tree head kept.
pub const MAX_SUMDB_TREE_SIZE: u64 = 16 << 10;

/// The "module" under which database `name`'s files are indexed.
pub fn sumdb_module(name: &str) -> String {
    format!("sumdb/{name}")
}

/// The index key of file `path` (`lookup/M@V`, `tile/H/L/N[.p/W]`) of database `name`.
pub fn sumdb_key(name: &str, path: &str) -> ArtifactKey {
    ArtifactKey {
        module: sumdb_module(name),
        version: path.to_string(),
        kind: ArtifactKind::SumdbFile,
    }
}

/// The "module" under which database `name`'s signed tree heads are indexed (apart from its
/// files, so finding the newest reads only tree heads).
pub fn sumdb_tree_module(name: &str) -> String {
    format!("sumdb/{name}/tree")
}

/// The index key of database `name`'s signed tree head of `n` records. The size is
/// zero-padded so that key order is size order.
pub fn sumdb_tree_key(name: &str, n: u64) -> ArtifactKey {
    ArtifactKey {
        module: sumdb_tree_module(name),
        version: format!("tree/{n:020}"),
        kind: ArtifactKind::SumdbTree,
    }
}

/// The "module" under which fills accepted while database `name` was unreachable are
/// listed until they are verified.
pub fn sumdb_unverified_module(name: &str) -> String {
    format!("sumdb/{name}/unverified")
}

/// The index key that marks `artifact` (a `.mod` or `.zip`) as filled without database
/// `name`'s verification; its blob is the `h1:` computed at the fill.
pub fn sumdb_unverified_key(name: &str, artifact: &ArtifactKey) -> ArtifactKey {
    ArtifactKey {
        module: sumdb_unverified_module(name),
        version: artifact.to_string(),
        kind: ArtifactKind::SumdbFile,
    }
}

/// The artifact a [`sumdb_unverified_key`] version (`MODULE@VERSION.EXT`) names.
pub fn sumdb_unverified_artifact(version: &str) -> Option<ArtifactKey> {
    let (rest, ext) = version.rsplit_once('.')?;
    let (module, version) = rest.rsplit_once('@')?;
    Some(ArtifactKey {
        module: module.to_string(),
        version: version.to_string(),
        kind: ArtifactKind::from_extension(ext)?,
    })
}

/// The tree size of a [`sumdb_tree_key`] version (`tree/000…123`).
pub fn sumdb_tree_size(version: &str) -> Option<u64> {
    version.strip_prefix("tree/")?.parse().ok()
}

/// Identifies one artifact: decoded (not case-encoded) module path, canonical version, kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ArtifactKey {
    /// Module path as written in go.mod (e.g. `github.com/BurntSushi/toml`).
    pub module: String,
    /// Canonical semantic version (e.g. `v1.2.0`).
    pub version: String,
    /// Which of the three files.
    pub kind: ArtifactKind,
}

impl fmt::Display for ArtifactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}.{}",
            self.module,
            self.version,
            self.kind.extension()
        )
    }
}

/// Content address of a blob: lowercase hex sha256 and its length in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobRef {
    /// Lowercase hex sha256 of the bytes (64 characters).
    pub sha256: String,
    /// Length in bytes.
    pub size: u64,
}

/// One committed index entry: which bytes the cluster serves for an artifact, forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The artifact this entry describes.
    pub key: ArtifactKey,
    /// The content-addressed bytes.
    pub blob: BlobRef,
    /// Go `h1:` dirhash of the module zip (zips only).
    pub h1: Option<String>,
    /// The version's RFC 3339 time from `.info`, when known (used to order `list`).
    pub version_time: Option<String>,
    /// Wall-clock milliseconds since the Unix epoch when the filling node validated it.
    /// Informational only; never used for ordering decisions.
    pub filled_at_ms: u64,
}

impl IndexEntry {
    /// True when `other` describes the same bytes (same key and same content address).
    pub fn same_content(&self, other: &IndexEntry) -> bool {
        self.key == other.key && self.blob == other.blob
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_database_keys_round_trip_and_stay_apart_from_modules() {
        let artifact = ArtifactKey {
            module: "example.com/m".into(),
            version: "v1.2.0-beta.1".into(),
            kind: ArtifactKind::Zip,
        };
        let marker = sumdb_unverified_key("sum.golang.org", &artifact);
        assert_eq!(marker.module, "sumdb/sum.golang.org/unverified");
        assert_eq!(sumdb_unverified_artifact(&marker.version), Some(artifact));
        assert_eq!(sumdb_unverified_artifact("no-extension"), None);
        let tree = sumdb_tree_key("sum.golang.org", 42);
        assert_eq!(sumdb_tree_size(&tree.version), Some(42));
        assert!(sumdb_tree_key("d.example", 9).version < sumdb_tree_key("d.example", 10).version);
        // A module path's first element has a dot: none is "sumdb".
        assert!(crate::path::check_path("sumdb/sum.golang.org").is_err());
        for kind in [ArtifactKind::SumdbFile, ArtifactKind::SumdbTree] {
            assert_eq!(ArtifactKind::from_extension(kind.extension()), Some(kind));
            assert!(!kind.is_module_file());
        }
    }
}
