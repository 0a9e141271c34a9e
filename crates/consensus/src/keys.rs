//! Byte encodings of index keys: `module \0 version \0 kind`, so all artifacts of one
//! module are one prefix scan and `a/b` never matches `a/bc` (module paths contain no NUL).

use goproxy_protocol::index::{ArtifactKey, ArtifactKind};

/// The key of one artifact.
pub fn artifact(key: &ArtifactKey) -> Vec<u8> {
    let mut out = module_prefix(&key.module);
    out.extend_from_slice(key.version.as_bytes());
    out.push(0);
    out.push(kind_byte(key.kind));
    out
}

/// The prefix shared by every artifact of `module`.
pub fn module_prefix(module: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(module.len() + 40);
    out.extend_from_slice(module.as_bytes());
    out.push(0);
    out
}

fn kind_byte(kind: ArtifactKind) -> u8 {
    match kind {
        ArtifactKind::Info => b'i',
        ArtifactKind::Mod => b'm',
        ArtifactKind::Zip => b'z',
        ArtifactKind::SumdbFile => b's',
        ArtifactKind::SumdbTree => b't',
    }
}

/// Big-endian log index, so sled's byte order is log order.
pub fn log_index(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// Inverse of [`log_index`].
pub fn parse_log_index(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_prefixes_do_not_overlap() {
        let key = ArtifactKey {
            module: "a.b/cd".into(),
            version: "v1.0.0".into(),
            kind: ArtifactKind::Zip,
        };
        assert!(!artifact(&key).starts_with(&module_prefix("a.b/c")));
        assert!(artifact(&key).starts_with(&module_prefix("a.b/cd")));
        assert_eq!(parse_log_index(&log_index(42)), Some(42));
    }
}
