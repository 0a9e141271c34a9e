//! A lookup answer (`/lookup/MODULE@VERSION`): the record's id, its text (the go.sum lines of
//! that version) and the signed tree head it is proved against — verified: the note's
//! signature, the record's inclusion in that tree (through tiles), and that the lines are
//! about the version asked for.

use std::collections::BTreeSet;

use crate::note::{open, NoteError, Verifier};
use crate::tile::Tile;
use crate::tlog::{check_record, prove_record, record_hash, Hash, HashReader, ProofError};
use crate::tree::Tree;

/// Longest lookup answer accepted.
pub const MAX_LOOKUP: usize = 64 << 10;

/// Why a lookup answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Not `ID\nTEXT\n\nNOTE`, or lines that are not go.sum lines.
    #[error("malformed lookup answer: {0}")]
    Malformed(String),
    /// The tree head's signature.
    #[error("tree head: {0}")]
    Note(#[from] NoteError),
    /// The record is not in the signed tree.
    #[error("record {id} is not in the signed tree of {n} records: {source}")]
    NotInTree {
        /// Record id.
        id: u64,
        /// Tree size.
        n: u64,
        /// What failed.
        source: ProofError,
    },
    /// The record is about another module or version.
    #[error("the record is about {found}, not {expected}")]
    OtherVersion {
        /// What was asked.
        expected: String,
        /// What the record says.
        found: String,
    },
}

/// A go.sum line: `MODULE VERSION[/go.mod] h1:HASH`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoSum {
    /// Module path.
    pub module: String,
    /// Version, with `/go.mod` for the go.mod's hash.
    pub version: String,
    /// The hash, `h1:...`.
    pub hash: String,
}

/// A verified lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The tree the record was proved in.
    pub tree: Tree,
    /// The record's id.
    pub id: u64,
    /// Its lines.
    pub lines: Vec<GoSum>,
}

impl Verified {
    /// The `h1:` of the module zip.
    pub fn zip_hash(&self) -> Option<&str> {
        self.lines
            .iter()
            .find(|l| !l.version.ends_with("/go.mod"))
            .map(|l| l.hash.as_str())
    }

    /// The `h1:` of the go.mod.
    pub fn mod_hash(&self) -> Option<&str> {
        self.lines
            .iter()
            .find(|l| l.version.ends_with("/go.mod"))
            .map(|l| l.hash.as_str())
    }
}

/// A lookup answer split into its parts (nothing verified yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup<'a> {
    /// Record id.
    pub id: u64,
    /// Record text.
    pub text: &'a str,
    /// The signed tree head.
    pub note: &'a str,
}

impl<'a> Lookup<'a> {
    /// Splits `body`.
    pub fn parse(body: &'a [u8]) -> Result<Self, RecordError> {
        let bad = |why: &str| RecordError::Malformed(why.to_string());
        if body.len() > MAX_LOOKUP {
            return Err(bad("too long"));
        }
        let body = std::str::from_utf8(body).map_err(|_| bad("not UTF-8"))?;
        let (id, rest) = body.split_once('\n').ok_or_else(|| bad("no record id"))?;
        let parsed: u64 = id.parse().map_err(|_| bad("bad record id"))?;
        if parsed.to_string() != id {
            return Err(bad("bad record id"));
        }
        let end = rest.find("\n\n").ok_or_else(|| bad("no tree head"))?;
        Ok(Self {
            id: parsed,
            text: &rest[..=end],
            note: &rest[end + 2..],
        })
    }

    /// The tree head, if its signature verifies.
    pub fn tree(&self, verifier: &Verifier) -> Result<Tree, RecordError> {
        let note = open(self.note.as_bytes(), verifier)?;
        Tree::parse(&note.text).ok_or_else(|| RecordError::Malformed("bad tree head".into()))
    }

    /// The tiles (of height `height`) whose hashes prove this record in `tree`.
    pub fn tiles(&self, tree: &Tree, height: u32) -> Vec<Tile> {
        needed_tiles(height, tree.n, |reader| {
            prove_record(self.id, tree.n, reader).map(drop)
        })
    }

    /// Verifies the record in `tree` (whose note verified) with hashes read through `reader`,
    /// and that it is about `module@version`.
    pub fn verify(
        &self,
        tree: Tree,
        reader: &dyn HashReader,
        module: &str,
        version: &str,
    ) -> Result<Verified, RecordError> {
        let not_in_tree = |source| RecordError::NotInTree {
            id: self.id,
            n: tree.n,
            source,
        };
        if self.id >= tree.n {
            return Err(not_in_tree(ProofError::Invalid(
                "the id is beyond the tree".into(),
            )));
        }
        let proof = prove_record(self.id, tree.n, reader).map_err(not_in_tree)?;
        check_record(
            &proof,
            self.id,
            record_hash(self.text.as_bytes()),
            tree.n,
            &tree.hash,
        )
        .map_err(not_in_tree)?;
        let lines = parse_lines(self.text)?;
        let versions: BTreeSet<(&str, &str)> = lines
            .iter()
            .map(|l| (l.module.as_str(), l.version.trim_end_matches("/go.mod")))
            .collect();
        if versions.len() != 1 || !versions.contains(&(module, version)) {
            return Err(RecordError::OtherVersion {
                expected: format!("{module}@{version}"),
                found: versions
                    .iter()
                    .map(|(m, v)| format!("{m}@{v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(Verified {
            tree,
            id: self.id,
            lines,
        })
    }
}

fn parse_lines(text: &str) -> Result<Vec<GoSum>, RecordError> {
    text.lines()
        .map(|line| {
            let mut parts = line.split(' ');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(module), Some(version), Some(hash), None) if hash.starts_with("h1:") => {
                    Ok(GoSum {
                        module: module.to_string(),
                        version: version.to_string(),
                        hash: hash.to_string(),
                    })
                }
                _ => Err(RecordError::Malformed(format!(
                    "not a go.sum line: {line:?}"
                ))),
            }
        })
        .collect()
}

/// The tiles `prove` reads hashes from, found by running it on a reader that only records
/// what it is asked (proofs read before they compute, so the answers do not matter).
pub fn needed_tiles(
    height: u32,
    n: u64,
    prove: impl FnOnce(&dyn HashReader) -> Result<(), ProofError>,
) -> Vec<Tile> {
    struct Recording(std::cell::RefCell<Vec<u64>>);
    impl HashReader for Recording {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, String> {
            self.0.borrow_mut().extend_from_slice(indexes);
            Ok(vec![Hash([0; 32]); indexes.len()])
        }
    }
    let recording = Recording(Default::default());
    let _ = prove(&recording);
    let mut tiles: Vec<Tile> = recording
        .0
        .into_inner()
        .into_iter()
        .map(|index| Tile::for_index(height, index, n).0)
        .collect();
    tiles.sort_by_key(|t| (t.level, t.index));
    tiles.dedup();
    tiles
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::tests::{record, vectors, Stored};
    use crate::tlog::tree_hash;

    fn lookup_body(id: u64, text: &str, note: &str) -> String {
        format!("{id}\n{text}\n{note}")
    }

    #[test]
    fn a_record_in_a_signed_tree_verifies_and_anything_else_is_refused() {
        let v = vectors();
        let key = Verifier::parse(&v.vkey).unwrap();
        let stored = Stored::build(v.records);
        let note = &v.tree_notes["1000"];
        // The vectors' records are "record N\n": a go.sum-shaped stand-in is checked below.
        let body = lookup_body(511, &String::from_utf8(record(511)).unwrap(), note);
        let lookup = Lookup::parse(body.as_bytes()).unwrap();
        assert_eq!((lookup.id, lookup.text), (511, "record 511\n"));
        let tree = lookup.tree(&key).unwrap();
        assert_eq!(tree.n, 1000);
        // Inclusion holds; the text is not go.sum lines, so it is refused as malformed.
        match lookup.verify(tree, &stored, "m", "v1.0.0") {
            Err(RecordError::Malformed(why)) => assert!(why.contains("not a go.sum line"), "{why}"),
            other => panic!("{other:?}"),
        }
        // Another record's text under this id: not in the tree.
        let forged = lookup_body(511, "record 512\n", note);
        let forged = Lookup::parse(forged.as_bytes()).unwrap();
        assert!(matches!(
            forged.verify(tree, &stored, "m", "v1.0.0"),
            Err(RecordError::NotInTree {
                id: 511,
                n: 1000,
                ..
            })
        ));
        // An id beyond the tree.
        let beyond = lookup_body(1000, "record 1000\n", note);
        assert!(Lookup::parse(beyond.as_bytes())
            .unwrap()
            .verify(tree, &stored, "m", "v1.0.0")
            .is_err());
        // A tree head signed by another key.
        let other = Verifier::parse(&v.other_vkey).unwrap();
        assert!(matches!(lookup.tree(&other), Err(RecordError::Note(_))));
        assert!(tree_hash(1000, &stored).unwrap() == tree.hash);
    }

    #[test]
    fn lookups_split_and_go_sum_lines_parse() {
        let body = "7\nexample.com/m v1.0.0 h1:abc=\nexample.com/m v1.0.0/go.mod h1:def=\n\ngo.sum database tree\n";
        let lookup = Lookup::parse(body.as_bytes()).unwrap();
        assert_eq!(lookup.id, 7);
        let lines = parse_lines(lookup.text).unwrap();
        let verified = Verified {
            tree: Tree {
                n: 8,
                hash: Hash([0; 32]),
            },
            id: 7,
            lines,
        };
        assert_eq!(verified.zip_hash(), Some("h1:abc="));
        assert_eq!(verified.mod_hash(), Some("h1:def="));
        for bad in ["", "x\n", "07\na\n\n", "7\nno blank line\n"] {
            assert!(Lookup::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_tiles_a_proof_needs_are_named_before_it_runs() {
        let tiles = needed_tiles(8, 1000, |r| prove_record(511, 1000, r).map(drop));
        let paths: Vec<String> = tiles.iter().map(Tile::path).collect();
        assert!(paths.contains(&"tile/8/0/001".to_string()), "{paths:?}");
        assert!(paths.iter().all(|p| p.starts_with("tile/8/")), "{paths:?}");
    }
}
