//! Tiles: the stored hashes published in blocks. Tile `(H, L, N)` holds up to `2^H` hashes
//! of tree level `L*H`, those numbered `N*2^H ..`; a partial tile (`.p/W`) holds the first
//! `W`. Paths are `tile/H/L/NNN[.p/W]`, with `NNN` in groups of three digits (`x001/234`).
//! Level `data` tiles hold the records themselves.

use crate::tlog::{
    check_node_proof, node_hash, prove_node, stored_hash_index, Hash, HashReader, ProofError,
};
use crate::tree::Tree;

/// A tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tile {
    /// Tree levels per tile level (8 for sum.golang.org).
    pub height: u32,
    /// Tile level; `None` for a data tile.
    pub level: Option<u32>,
    /// Index at that level.
    pub index: u64,
    /// Number of hashes (or records) it holds, at most `2^height`.
    pub width: u32,
}

impl Tile {
    /// Whether it holds all `2^height` entries (and so never changes).
    pub fn is_full(&self) -> bool {
        self.width == 1 << self.height
    }

    /// Its path below the database's URL.
    pub fn path(&self) -> String {
        let mut groups = vec![format!("{:03}", self.index % 1000)];
        let mut n = self.index / 1000;
        while n > 0 {
            groups.push(format!("x{:03}", n % 1000));
            n /= 1000;
        }
        groups.reverse();
        let level = self.level.map_or("data".to_string(), |l| l.to_string());
        let partial = if self.is_full() {
            String::new()
        } else {
            format!(".p/{}", self.width)
        };
        format!("tile/{}/{level}/{}{partial}", self.height, groups.join("/"))
    }

    /// Parses a path; only the canonical spelling is accepted.
    pub fn parse(path: &str) -> Option<Self> {
        let rest = path.strip_prefix("tile/")?;
        let (height, rest) = rest.split_once('/')?;
        let (level, rest) = rest.split_once('/')?;
        let height: u32 = height.parse().ok().filter(|h| (1..=30).contains(h))?;
        let level = match level {
            "data" => None,
            l => Some(l.parse::<u32>().ok().filter(|l| *l < 64)?),
        };
        let (digits, width) = match rest.split_once(".p/") {
            Some((digits, w)) => (
                digits,
                w.parse::<u32>()
                    .ok()
                    .filter(|w| *w > 0 && *w < 1 << height)?,
            ),
            None => (rest, 1 << height),
        };
        let mut index: u64 = 0;
        for group in digits.split('/') {
            let n: u64 = group
                .trim_start_matches('x')
                .parse()
                .ok()
                .filter(|n| *n < 1000)?;
            index = index.checked_mul(1000)?.checked_add(n)?;
        }
        let tile = Self {
            height,
            level,
            index,
            width,
        };
        (tile.path() == path).then_some(tile)
    }

    /// The tile (of the tree of `n` records) holding stored hash `index`, and the byte range
    /// in its data that hash is computed from.
    pub fn for_index(height: u32, index: u64, n: u64) -> (Self, std::ops::Range<usize>) {
        let (level, k) = split_stored_hash_index(index);
        let tile_level = level / height;
        let within = level - tile_level * height;
        // The hashes of the tile's base level this one is made of.
        let first = k << within;
        let count = 1u64 << within;
        let per_tile = 1u64 << height;
        let tile_index = first / per_tile;
        let offset = (first % per_tile) as usize;
        let base_hashes = n >> (tile_level * height);
        let width = (base_hashes - tile_index * per_tile).min(per_tile) as u32;
        let tile = Self {
            height,
            level: Some(tile_level),
            index: tile_index,
            width,
        };
        (tile, offset * 32..(offset + count as usize) * 32)
    }
}

/// The level and index of stored hash `index`.
pub fn split_stored_hash_index(index: u64) -> (u32, u64) {
    // The record whose stored hashes include `index`: the last n with
    // stored_hash_index(0, n) <= index (it grows with n).
    // Record n's hash is at 2n - popcount(n) >= n, so n <= index.
    let (mut lo, mut hi) = (0u64, index + 1);
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        if stored_hash_index(0, mid) <= index {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let level = (index - stored_hash_index(0, lo)) as u32;
    (level, lo >> level)
}

/// The hash of a complete block of hashes (a power of two of them).
fn block_hash(data: &[u8]) -> Result<Hash, String> {
    let count = data.len() / 32;
    if count == 0 || !data.len().is_multiple_of(32) || !count.is_power_of_two() {
        return Err(format!(
            "{} bytes are not a complete block of hashes",
            data.len()
        ));
    }
    let mut level: Vec<Hash> = (0..count)
        .map(|i| Hash::at(data, i).expect("in range"))
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    Ok(level[0])
}

/// Stored hash `index` from the data of the tile [`Tile::for_index`] names (any wider tile of
/// the same position works too).
pub fn hash_from_tile(data: &[u8], range: std::ops::Range<usize>) -> Result<Hash, String> {
    let block = data
        .get(range.clone())
        .ok_or_else(|| format!("the tile ends before byte {}", range.end))?;
    block_hash(block)
}

/// Reads stored hashes through tiles of the tree of `n` records, fetched by `fetch`.
pub struct TileHashes<F> {
    /// Tile height.
    pub height: u32,
    /// Tree size the tiles are cut for.
    pub n: u64,
    /// Fetches a tile's data.
    pub fetch: F,
}

impl<F: Fn(&Tile) -> Result<Vec<u8>, String>> HashReader for TileHashes<F> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, String> {
        let mut fetched: std::collections::HashMap<Tile, Vec<u8>> = Default::default();
        let mut out = Vec::with_capacity(indexes.len());
        for &index in indexes {
            let (tile, range) = Tile::for_index(self.height, index, self.n);
            let data = match fetched.entry(tile) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let data = (self.fetch)(&tile)?;
                    if data.len() != tile.width as usize * 32 {
                        return Err(format!("{} holds {} bytes", tile.path(), data.len()));
                    }
                    e.insert(data)
                }
            };
            out.push(hash_from_tile(data, range)?);
        }
        Ok(out)
    }
}

/// Checks that every hash in a tile's `data` belongs to the signed `tree`, reading the proof's
/// hashes through `reader` (unverified tiles are fine: the proof is checked against the tree
/// hash). A tile that passes may be cached for good.
pub fn verify_tile(
    tile: &Tile,
    data: &[u8],
    tree: &Tree,
    reader: &dyn HashReader,
) -> Result<(), ProofError> {
    let Some(level) = tile.level else {
        return Err(ProofError::Invalid(
            "data tiles are checked record by record".into(),
        ));
    };
    if data.len() != tile.width as usize * 32 {
        return Err(ProofError::Invalid(format!(
            "{} must hold {} hashes, holds {} bytes",
            tile.path(),
            tile.width,
            data.len()
        )));
    }
    // Checked: tile coordinates come from request paths and must not wrap (a wrapped range
    // would prove nothing and let any data through).
    let beyond = || {
        ProofError::Invalid(format!(
            "{} reaches beyond the tree of {} records",
            tile.path(),
            tree.n
        ))
    };
    let base = level
        .checked_mul(tile.height)
        .filter(|b| *b < 64)
        .ok_or_else(beyond)?;
    if tile.height >= 64 || tile.index > u64::MAX >> tile.height {
        return Err(beyond());
    }
    let first = tile.index << tile.height;
    let end = first
        .checked_add(u64::from(tile.width))
        .ok_or_else(beyond)?;
    if end > tree.n >> base {
        return Err(ProofError::Invalid(format!(
            "{} reaches beyond the tree of {} records",
            tile.path(),
            tree.n
        )));
    }
    // Complete aligned blocks cover the tile; each is a subtree of the tree.
    let mut at = first;
    while at < end {
        let mut size = 1u64 << at.trailing_zeros().min(63);
        while at + size > end {
            size >>= 1;
        }
        let bytes = ((at - first) * 32) as usize..((at - first + size) * 32) as usize;
        let hash = block_hash(&data[bytes]).map_err(ProofError::Invalid)?;
        let (lo, hi) = (at << base, (at + size) << base);
        let proof = prove_node(lo, hi, tree.n, reader)?;
        check_node_proof(&proof, lo, hi, hash, tree.n, &tree.hash)?;
        at += size;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    use super::*;
    use crate::tlog::tests::{vectors, Stored};
    use crate::tlog::tree_hash;

    fn go_tiles() -> Vec<(Tile, Vec<u8>)> {
        vectors()
            .tiles
            .iter()
            .map(|t| {
                (
                    Tile::parse(&t.path).unwrap(),
                    STANDARD.decode(&t.data).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn paths_round_trip_and_only_canonical_ones_parse() {
        for (tile, _) in go_tiles() {
            assert_eq!(Tile::parse(&tile.path()), Some(tile));
        }
        let t = Tile::parse("tile/8/0/x001/x234/067.p/3").unwrap();
        assert_eq!(
            (t.height, t.level, t.index, t.width),
            (8, Some(0), 1_234_067, 3)
        );
        assert_eq!(Tile::parse("tile/8/data/000").unwrap().level, None);
        for bad in [
            "tile/8/0/1",
            "tile/8/0/000.p/256",
            "tile/8/0/000.p/0",
            "tile/8/0/x000/001",
            "tile/0/0/000",
            "tile/8/-1/000",
            "tile/8/0/1000",
            "tiles/8/0/000",
        ] {
            assert_eq!(Tile::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn hashes_read_through_go_tiles_match_the_tree() {
        let v = vectors();
        let tiles = go_tiles();
        let reader = TileHashes {
            height: 8,
            n: v.records,
            fetch: |t: &Tile| {
                tiles
                    .iter()
                    .find(|(have, _)| have == t)
                    .map(|(_, d)| d.clone())
                    .ok_or(format!("no {}", t.path()))
            },
        };
        let stored = Stored::build(v.records);
        for index in [0u64, 1, 2, 3, 500, 1000, 1500, 1993] {
            assert_eq!(
                reader.read_hashes(&[index]).unwrap(),
                stored.read_hashes(&[index]).unwrap(),
                "stored hash {index}"
            );
        }
        assert_eq!(
            tree_hash(v.records, &reader).unwrap().to_string(),
            v.tree_hashes["1000"]
        );
    }

    #[test]
    fn go_tiles_verify_against_the_signed_tree_and_altered_ones_do_not() {
        let v = vectors();
        let stored = Stored::build(v.records);
        let tree = Tree {
            n: v.records,
            hash: tree_hash(v.records, &stored).unwrap(),
        };
        for (tile, data) in go_tiles() {
            if tile.width
                != Tile::for_index(
                    8,
                    stored_hash_index(tile.level.unwrap() * 8, tile.index << 8),
                    v.records,
                )
                .0
                .width
            {
                continue; // a narrower partial tile of an older tree
            }
            verify_tile(&tile, &data, &tree, &stored).unwrap();
            let mut altered = data.clone();
            altered[40] ^= 1;
            assert_eq!(
                verify_tile(&tile, &altered, &tree, &stored),
                Err(ProofError::Mismatch),
                "{}",
                tile.path()
            );
        }
        let (full, data) = go_tiles().remove(0);
        let other = Tree {
            n: 999,
            hash: tree_hash(999, &stored).unwrap(),
        };
        verify_tile(&full, &data, &other, &stored).unwrap();
        let wrong = Tree {
            n: 1000,
            hash: tree_hash(999, &stored).unwrap(),
        };
        assert!(verify_tile(&full, &data, &wrong, &stored).is_err());
    }

    /// Review finding: tile coordinates from a request path wrapped (`index << 8` past u64,
    /// `level * height` past 63), so the proof loop ran zero times and any data "verified".
    #[test]
    fn tiles_whose_coordinates_overflow_are_refused_not_verified() {
        let v = vectors();
        let stored = Stored::build(v.records);
        let tree = Tree {
            n: v.records,
            hash: tree_hash(v.records, &stored).unwrap(),
        };
        let garbage = vec![7u8; 256 * 32];
        for tile in [
            Tile {
                height: 8,
                level: Some(0),
                index: (1 << 56) - 1,
                width: 256,
            },
            Tile {
                height: 8,
                level: Some(8),
                index: 0,
                width: 256,
            },
            Tile {
                height: 30,
                level: Some(3),
                index: 0,
                width: 256,
            },
        ] {
            let data = &garbage[..tile.width as usize * 32];
            assert!(
                matches!(
                    verify_tile(&tile, data, &tree, &stored),
                    Err(ProofError::Invalid(_))
                ),
                "{}",
                tile.path()
            );
        }
    }

    #[test]
    fn split_inverts_the_stored_index() {
        for level in 0..12u32 {
            for n in 0..200u64 {
                assert_eq!(
                    split_stored_hash_index(stored_hash_index(level, n)),
                    (level, n)
                );
            }
        }
    }
}
