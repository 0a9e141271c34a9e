//! The signed tree head: `go.sum database tree\nN\nHASH\n` (later lines ignored, for forward
//! compatibility, as the go command does).

use crate::tlog::Hash;

const PREFIX: &str = "go.sum database tree\n";

/// Largest tree accepted (sum.golang.org holds tens of millions of records; this leaves room
/// for many more, and keeps every index computed from a tree size far from overflowing).
pub const MAX_TREE_SIZE: u64 = 1 << 40;

/// A tree size and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tree {
    /// Number of records.
    pub n: u64,
    /// The tree hash.
    pub hash: Hash,
}

impl Tree {
    /// Parses a (verified) note's text.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix(PREFIX)?;
        let mut lines = rest.splitn(3, '\n');
        let (n, hash, _) = (lines.next()?, lines.next()?, lines.next()?);
        let parsed: u64 = n.parse().ok()?;
        if parsed.to_string() != n || parsed > MAX_TREE_SIZE {
            return None;
        }
        Some(Self {
            n: parsed,
            hash: Hash::parse(hash)?,
        })
    }

    /// The note text for this tree.
    pub fn format(&self) -> String {
        format!("{PREFIX}{}\n{}\n", self.n, self.hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{open, Verifier};
    use crate::tlog::tests::vectors;

    #[test]
    fn signed_tree_heads_from_go_parse_and_round_trip() {
        let v = vectors();
        let key = Verifier::parse(&v.vkey).unwrap();
        for (n, note) in &v.tree_notes {
            let text = open(note.as_bytes(), &key).unwrap().text;
            let tree = Tree::parse(&text).unwrap();
            assert_eq!(tree.n.to_string(), *n);
            assert_eq!(tree.hash.to_string(), v.tree_hashes[n]);
            assert_eq!(tree.format(), text);
        }
        assert!(Tree::parse(
            "go.sum database tree\n05\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
        )
        .is_none());
        assert!(Tree::parse("go.sum database tree\n5\n").is_none());
        // A signed but absurd size is refused before any index is computed from it.
        let huge = format!(
            "go.sum database tree\n{}\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
            MAX_TREE_SIZE + 1
        );
        assert!(Tree::parse(&huge).is_none());
        assert!(
            Tree::parse("other tree\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").is_none()
        );
        let extra = "go.sum database tree\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nmore\n";
        assert_eq!(Tree::parse(extra).unwrap().n, 5);
    }
}
