//! Go's `h1:` hash (`golang.org/x/mod/sumdb/dirhash.Hash1`), as written in go.sum.
//!
//! For a zip the file names are the entry names exactly as stored (with the
//! `module@version/` prefix, directories included), as `dirhash.HashZip` does; for a
//! `.mod` the single name is `go.mod` (the `/go.mod` line of go.sum).

use base64::Engine;
use sha2::{Digest, Sha256};

/// The prefix of every `h1:` hash.
pub const H1_PREFIX: &str = "h1:";

/// A file name that `Hash1` cannot represent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dirhash: file name {0:?} contains a newline")]
pub struct NewlineInName(pub String);

/// One file of a [`hash1`] input: its name and the SHA-256 of its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    /// The name hashed into the summary line.
    pub name: String,
    /// SHA-256 of the file's bytes.
    pub sha256: [u8; 32],
}

/// `Hash1`: SHA-256 over the sorted lines `"<hex sha256>  <name>\n"`, base64, `h1:` prefix.
pub fn hash1(mut files: Vec<FileDigest>) -> Result<String, NewlineInName> {
    if let Some(bad) = files.iter().find(|f| f.name.contains('\n')) {
        return Err(NewlineInName(crate::path::shown(&bad.name)));
    }
    // Go's sort.Strings is a byte-wise order, as is `str`'s.
    files.sort_by(|a, b| a.name.cmp(&b.name));
    let mut summary = Sha256::new();
    for file in &files {
        summary.update(format!("{}  {}\n", hex::encode(file.sha256), file.name));
    }
    let digest = base64::engine::general_purpose::STANDARD.encode(summary.finalize());
    Ok(format!("{H1_PREFIX}{digest}"))
}

/// The go.sum hash of a `.mod` file (`<module> <version>/go.mod h1:…`).
pub fn go_mod_h1(go_mod: &[u8]) -> String {
    let file = FileDigest {
        name: "go.mod".to_string(),
        sha256: Sha256::digest(go_mod).into(),
    };
    // "go.mod" has no newline, so this cannot fail; keep the error path total anyway.
    hash1(vec![file]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(name: &str, body: &[u8]) -> FileDigest {
        FileDigest {
            name: name.to_string(),
            sha256: Sha256::digest(body).into(),
        }
    }

    #[test]
    fn order_of_input_does_not_matter_and_names_do() {
        let a = hash1(vec![digest("m@v1.0.0/a", b"1"), digest("m@v1.0.0/b", b"2")]).unwrap();
        let b = hash1(vec![digest("m@v1.0.0/b", b"2"), digest("m@v1.0.0/a", b"1")]).unwrap();
        let c = hash1(vec![digest("m@v1.0.0/a", b"2"), digest("m@v1.0.0/b", b"1")]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with(H1_PREFIX));
    }

    #[test]
    fn hash1_of_nothing_is_sha256_of_nothing() {
        // base64(sha256("")), the value Go's Hash1 gives for an empty file list.
        assert_eq!(
            hash1(Vec::new()).unwrap(),
            "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn newlines_in_names_are_refused() {
        assert!(hash1(vec![digest("a\nb", b"")]).is_err());
    }
}
