//! The checksum database's Merkle tree (RFC 6962 hashing, as golang.org/x/mod/sumdb/tlog).
//!
//! Records are leaves; `record_hash(data) = SHA-256(0x00 || data)`, `node_hash(l, r) =
//! SHA-256(0x01 || l || r)`. A tree of `n` records splits at the largest power of two below
//! `n`. The server stores, after each record, the record's hash and every subtree hash it
//! completes ("stored hashes", numbered by [`stored_hash_index`]); tiles publish them.
//!
//! Proofs are recomputed, never trusted: checking one recomputes the tree hash from the
//! proved value and the proof's hashes, and compares it with a signed tree hash.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// A SHA-256 hash in the tree.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// Parses standard base64.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = STANDARD.decode(text).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// Reads the `i`th hash of concatenated hashes.
    pub fn at(data: &[u8], i: usize) -> Option<Self> {
        let bytes = data.get(i * 32..(i + 1) * 32)?;
        Some(Self(bytes.try_into().ok()?))
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&STANDARD.encode(self.0))
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({self})")
    }
}

/// The hash of a record.
pub fn record_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    Hash(h.finalize().into())
}

/// The hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// Where the hash of the subtree at `level` (0: records) and index `n` is stored.
pub fn stored_hash_index(level: u32, n: u64) -> u64 {
    // The subtree is stored right after its last record, `(n + 1) * 2^level - 1`, and after
    // that record's own hash and the `level - 1` subtrees below it that end there too.
    let last = ((n + 1) << level) - 1;
    stored_records_before(last) + u64::from(level)
}

/// Number of hashes stored before record `n`'s own hash.
fn stored_records_before(n: u64) -> u64 {
    // Record i stores 1 + trailing_ones(i) hashes; summed over i < n that is 2n - popcount(n).
    2 * n - u64::from(n.count_ones())
}

/// Number of stored hashes in a tree of `n` records.
pub fn stored_hash_count(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    stored_records_before(n - 1) + 1 + u64::from((n - 1).trailing_ones())
}

/// The largest power of two strictly less than `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Reads stored hashes by index.
pub trait HashReader {
    /// The hashes at `indexes`, in order; an error names what could not be read.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, String>;
}

/// Why a proof was not produced or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The hashes it needs could not be read.
    #[error("reading hashes: {0}")]
    Read(String),
    /// The request makes no sense (a record beyond the tree, a shrinking tree).
    #[error("{0}")]
    Invalid(String),
    /// The proof does not lead to the signed tree hash.
    #[error("the proof does not verify against the signed tree")]
    Mismatch,
}

/// Stored-hash indexes of the complete subtrees covering records `[lo, hi)`, left to right.
fn cover(lo: u64, hi: u64, out: &mut Vec<u64>) {
    let mut lo = lo;
    while lo < hi {
        let width = if hi - lo == 1 { 1 } else { split(hi - lo + 1) };
        let level = width.trailing_zeros();
        out.push(stored_hash_index(level, lo >> level));
        lo += width;
    }
}

/// The hash of records `[lo, hi)` from the hashes of its covering subtrees (consumed).
fn fold(covering: &mut std::vec::IntoIter<Hash>, lo: u64, hi: u64) -> Result<Hash, ProofError> {
    let mut hashes = Vec::new();
    let mut start = lo;
    while start < hi {
        let width = if hi - start == 1 {
            1
        } else {
            split(hi - start + 1)
        };
        hashes.push(
            covering
                .next()
                .ok_or_else(|| ProofError::Read("too few hashes".into()))?,
        );
        start += width;
    }
    let mut root = hashes
        .pop()
        .ok_or_else(|| ProofError::Invalid("empty range".into()))?;
    while let Some(left) = hashes.pop() {
        root = node_hash(&left, &root);
    }
    Ok(root)
}

fn read(reader: &dyn HashReader, indexes: &[u64]) -> Result<std::vec::IntoIter<Hash>, ProofError> {
    let hashes = reader.read_hashes(indexes).map_err(ProofError::Read)?;
    if hashes.len() != indexes.len() {
        return Err(ProofError::Read(format!(
            "asked for {} hashes, got {}",
            indexes.len(),
            hashes.len()
        )));
    }
    Ok(hashes.into_iter())
}

/// The hash of the tree of `n` records (all zero for no records, as the Go implementation).
pub fn tree_hash(n: u64, reader: &dyn HashReader) -> Result<Hash, ProofError> {
    if n == 0 {
        return Ok(Hash([0; 32]));
    }
    let mut indexes = Vec::new();
    cover(0, n, &mut indexes);
    fold(&mut read(reader, &indexes)?, 0, n)
}

/// The proof that the complete subtree of records `[node_lo, node_hi)` (a power-of-two
/// span, aligned) is in the tree of `n` records: sibling hashes, deepest first. For a record,
/// `node_hi = node_lo + 1`.
pub fn prove_node(
    node_lo: u64,
    node_hi: u64,
    n: u64,
    reader: &dyn HashReader,
) -> Result<Vec<Hash>, ProofError> {
    check_node(node_lo, node_hi, n)?;
    // Sibling spans from the top down; read their covers, fold each.
    let mut spans = Vec::new();
    let (mut lo, mut hi) = (0, n);
    while (lo, hi) != (node_lo, node_hi) {
        let mid = lo + split(hi - lo);
        if node_hi <= mid {
            spans.push((mid, hi));
            hi = mid;
        } else {
            spans.push((lo, mid));
            lo = mid;
        }
    }
    let mut indexes = Vec::new();
    for &(lo, hi) in &spans {
        cover(lo, hi, &mut indexes);
    }
    let mut hashes = read(reader, &indexes)?;
    let mut proof = Vec::with_capacity(spans.len());
    for &(lo, hi) in &spans {
        proof.push(fold(&mut hashes, lo, hi)?);
    }
    proof.reverse();
    Ok(proof)
}

fn check_node(node_lo: u64, node_hi: u64, n: u64) -> Result<(), ProofError> {
    let width = node_hi.saturating_sub(node_lo);
    if width == 0 || !width.is_power_of_two() || !node_lo.is_multiple_of(width) || node_hi > n {
        return Err(ProofError::Invalid(format!(
            "[{node_lo}, {node_hi}) is not a complete subtree of a tree of {n} records"
        )));
    }
    Ok(())
}

/// Checks that `hash` is the complete subtree `[node_lo, node_hi)` of the tree of `n` records
/// whose hash is `tree`.
pub fn check_node_proof(
    proof: &[Hash],
    node_lo: u64,
    node_hi: u64,
    hash: Hash,
    n: u64,
    tree: &Hash,
) -> Result<(), ProofError> {
    check_node(node_lo, node_hi, n)?;
    // Which side the node is on at each split, from the top.
    let mut sides = Vec::new();
    let (mut lo, mut hi) = (0, n);
    while (lo, hi) != (node_lo, node_hi) {
        let mid = lo + split(hi - lo);
        let left = node_hi <= mid;
        sides.push(left);
        if left {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    if sides.len() != proof.len() {
        return Err(ProofError::Mismatch);
    }
    let mut h = hash;
    for (sibling, left) in proof.iter().zip(sides.iter().rev()) {
        h = if *left {
            node_hash(&h, sibling)
        } else {
            node_hash(sibling, &h)
        };
    }
    if h == *tree {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

/// The proof that record `i` is in the tree of `n` records.
pub fn prove_record(i: u64, n: u64, reader: &dyn HashReader) -> Result<Vec<Hash>, ProofError> {
    prove_node(i, i + 1, n, reader)
}

/// Checks that record `i` with hash `record` is in the tree of `n` records with hash `tree`.
pub fn check_record(
    proof: &[Hash],
    i: u64,
    record: Hash,
    n: u64,
    tree: &Hash,
) -> Result<(), ProofError> {
    check_node_proof(proof, i, i + 1, record, n, tree)
}

/// The proof that the tree of `old` records is a prefix of the tree of `new` records.
pub fn prove_tree(old: u64, new: u64, reader: &dyn HashReader) -> Result<Vec<Hash>, ProofError> {
    if old == 0 || old > new {
        return Err(ProofError::Invalid(format!(
            "no consistency proof from {old} to {new} records"
        )));
    }
    // The spans whose hashes make up the proof, in proof order.
    fn spans(lo: u64, hi: u64, n: u64, out: &mut Vec<(u64, u64)>) {
        if n == hi {
            if lo != 0 {
                out.push((lo, hi));
            }
            return;
        }
        let mid = lo + split(hi - lo);
        if n <= mid {
            spans(lo, mid, n, out);
            out.push((mid, hi));
        } else {
            spans(mid, hi, n, out);
            out.push((lo, mid));
        }
    }
    let mut parts = Vec::new();
    spans(0, new, old, &mut parts);
    let mut indexes = Vec::new();
    for &(lo, hi) in &parts {
        cover(lo, hi, &mut indexes);
    }
    let mut hashes = read(reader, &indexes)?;
    parts
        .iter()
        .map(|&(lo, hi)| fold(&mut hashes, lo, hi))
        .collect()
}

/// Checks that the tree of `old` records with hash `old_hash` is a prefix of the tree of
/// `new` records with hash `new_hash` (a fork, otherwise).
pub fn check_tree(
    proof: &[Hash],
    old: u64,
    old_hash: &Hash,
    new: u64,
    new_hash: &Hash,
) -> Result<(), ProofError> {
    if old == 0 || old > new {
        return Err(ProofError::Invalid(format!(
            "no consistency proof from {old} to {new} records"
        )));
    }
    /// Returns (hash of the old tree's part of [lo, hi), hash of [lo, hi)).
    fn run(
        proof: &[Hash],
        lo: u64,
        hi: u64,
        n: u64,
        old: &Hash,
    ) -> Result<(Hash, Hash), ProofError> {
        if n == hi {
            return match (lo, proof) {
                (0, []) => Ok((*old, *old)),
                (0, _) => Err(ProofError::Mismatch),
                (_, [h]) => Ok((*h, *h)),
                _ => Err(ProofError::Mismatch),
            };
        }
        let (last, rest) = proof.split_last().ok_or(ProofError::Mismatch)?;
        let mid = lo + split(hi - lo);
        if n <= mid {
            let (oh, th) = run(rest, lo, mid, n, old)?;
            Ok((oh, node_hash(&th, last)))
        } else {
            let (oh, th) = run(rest, mid, hi, n, old)?;
            Ok((node_hash(last, &oh), node_hash(last, &th)))
        }
    }
    let (oh, th) = run(proof, 0, new, old, old_hash)?;
    if oh == *old_hash && th == *new_hash {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use super::*;

    #[derive(serde::Deserialize)]
    pub struct RecordProof {
        pub tree: u64,
        pub record: u64,
        pub proof: Vec<String>,
    }

    #[derive(serde::Deserialize)]
    pub struct TreeProof {
        pub old: u64,
        pub new: u64,
        pub proof: Vec<String>,
    }

    #[derive(serde::Deserialize)]
    pub struct Tile {
        pub path: String,
        pub data: String,
    }

    /// `testdata/vectors.json`, written by the Go implementation (`testdata/gen`).
    #[derive(serde::Deserialize)]
    pub struct Vectors {
        pub vkey: String,
        pub other_vkey: String,
        pub text: String,
        pub signed: String,
        pub signed_by_both: String,
        pub records: u64,
        pub tree_hashes: HashMap<String, String>,
        pub tree_notes: HashMap<String, String>,
        pub record_proofs: Vec<RecordProof>,
        pub tree_proofs: Vec<TreeProof>,
        pub tiles: Vec<Tile>,
        pub stored_index: Vec<[u64; 3]>,
    }

    pub fn vectors() -> Vectors {
        serde_json::from_str(include_str!("../testdata/vectors.json")).unwrap()
    }

    pub fn record(i: u64) -> Vec<u8> {
        format!("record {i}\n").into_bytes()
    }

    /// Every stored hash of the vectors' tree, computed here.
    pub struct Stored(pub Vec<Hash>);

    impl Stored {
        pub fn build(n: u64) -> Self {
            let mut stored = Vec::new();
            let mut levels: Vec<Vec<Hash>> = Vec::new();
            for i in 0..n {
                let mut h = record_hash(&record(i));
                stored.push(h);
                let mut level = 0;
                let mut k = i;
                loop {
                    if levels.len() <= level {
                        levels.push(Vec::new());
                    }
                    levels[level].push(h);
                    if k & 1 == 0 {
                        break;
                    }
                    let len = levels[level].len();
                    h = node_hash(&levels[level][len - 2], &levels[level][len - 1]);
                    stored.push(h);
                    level += 1;
                    k >>= 1;
                }
            }
            assert_eq!(stored.len() as u64, stored_hash_count(n));
            Self(stored)
        }
    }

    impl HashReader for Stored {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, String> {
            indexes
                .iter()
                .map(|&i| {
                    self.0
                        .get(i as usize)
                        .copied()
                        .ok_or(format!("no hash {i}"))
                })
                .collect()
        }
    }

    fn hashes(b64: &[String]) -> Vec<Hash> {
        b64.iter().map(|h| Hash::parse(h).unwrap()).collect()
    }

    #[test]
    fn stored_hash_layout_matches_go() {
        for [level, n, index] in vectors().stored_index {
            assert_eq!(
                stored_hash_index(level as u32, n),
                index,
                "level {level} n {n}"
            );
        }
        // The layout built record by record agrees with the index formula.
        let stored = Stored::build(300);
        assert_eq!(
            stored.0[stored_hash_index(0, 5) as usize],
            record_hash(&record(5))
        );
        assert_eq!(
            stored.0[stored_hash_index(1, 2) as usize],
            node_hash(&record_hash(&record(4)), &record_hash(&record(5)))
        );
    }

    #[test]
    fn tree_hashes_match_go() {
        let v = vectors();
        let stored = Stored::build(v.records);
        for (n, hash) in &v.tree_hashes {
            let n: u64 = n.parse().unwrap();
            assert_eq!(tree_hash(n, &stored).unwrap().to_string(), *hash, "n = {n}");
        }
    }

    #[test]
    fn record_proofs_match_go_and_verify() {
        let v = vectors();
        let stored = Stored::build(v.records);
        for p in &v.record_proofs {
            let proof = prove_record(p.record, p.tree, &stored).unwrap();
            assert_eq!(proof, hashes(&p.proof), "record {} of {}", p.record, p.tree);
            let tree = tree_hash(p.tree, &stored).unwrap();
            let leaf = record_hash(&record(p.record));
            check_record(&proof, p.record, leaf, p.tree, &tree).unwrap();
            // Another record's data, or another tree, does not verify.
            let other = record_hash(b"record 12345\n");
            assert_eq!(
                check_record(&proof, p.record, other, p.tree, &tree),
                Err(ProofError::Mismatch)
            );
            if p.tree > 1 {
                let smaller = tree_hash(p.tree - 1, &stored).unwrap();
                assert!(check_record(&proof, p.record, leaf, p.tree, &smaller).is_err());
            }
        }
        assert!(prove_record(10, 10, &stored).is_err());
    }

    #[test]
    fn tree_proofs_match_go_and_detect_forks() {
        let v = vectors();
        let stored = Stored::build(v.records);
        for p in &v.tree_proofs {
            let proof = prove_tree(p.old, p.new, &stored).unwrap();
            assert_eq!(proof, hashes(&p.proof), "{} -> {}", p.old, p.new);
            let old = tree_hash(p.old, &stored).unwrap();
            let new = tree_hash(p.new, &stored).unwrap();
            check_tree(&proof, p.old, &old, p.new, &new).unwrap();
            // A fork: the same size, another history.
            let forked = node_hash(&old, &old);
            if p.old != p.new {
                assert_eq!(
                    check_tree(&proof, p.old, &forked, p.new, &new),
                    Err(ProofError::Mismatch)
                );
            }
            assert_eq!(
                check_tree(&proof, p.old, &old, p.new, &forked),
                Err(ProofError::Mismatch)
            );
        }
    }

    #[test]
    fn complete_subtrees_prove_like_records() {
        let stored = Stored::build(1000);
        let tree = tree_hash(1000, &stored).unwrap();
        // The subtree of records [256, 512) (level 8, index 1).
        let node = stored.read_hashes(&[stored_hash_index(8, 1)]).unwrap()[0];
        let proof = prove_node(256, 512, 1000, &stored).unwrap();
        check_node_proof(&proof, 256, 512, node, 1000, &tree).unwrap();
        assert!(check_node_proof(&proof, 256, 512, record_hash(b"x"), 1000, &tree).is_err());
        assert!(prove_node(256, 513, 1000, &stored).is_err());
        assert!(prove_node(768, 1024, 1000, &stored).is_err());
    }
}
