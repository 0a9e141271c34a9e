//! The tiles of one signed tree that a verification has loaded.

use std::collections::{HashMap, HashSet};

use goproxy_sumdb::tile::{Tile, TileHashes};
use goproxy_sumdb::{Hash, HashReader, Tree};

use crate::TILE_HEIGHT;

/// Tiles cut for one tree, each from the cluster cache or fetched from the database.
pub(crate) struct TileSet {
    /// The (signed, verified) tree the tiles are cut for.
    pub tree: Tree,
    data: HashMap<Tile, Vec<u8>>,
    /// Fetched from the database and not yet proved part of `tree`.
    unproved: Vec<Tile>,
    /// Proved, or read from the cluster cache (kept only once proved).
    trusted: HashSet<Tile>,
}

impl TileSet {
    pub fn new(tree: Tree) -> Self {
        Self {
            tree,
            data: HashMap::new(),
            unproved: Vec::new(),
            trusted: HashSet::new(),
        }
    }

    /// Tiles among `tiles` not loaded yet.
    pub fn missing(&self, tiles: Vec<Tile>) -> Vec<Tile> {
        tiles
            .into_iter()
            .filter(|t| !self.data.contains_key(t))
            .collect()
    }

    /// Adds a tile from the cluster cache.
    pub fn add_cached(&mut self, tile: Tile, data: Vec<u8>) {
        self.trusted.insert(tile);
        self.data.insert(tile, data);
    }

    /// Adds a tile fetched from the database (to be proved before it is kept).
    pub fn add_fetched(&mut self, tile: Tile, data: Vec<u8>) {
        self.unproved.push(tile);
        self.data.insert(tile, data);
    }

    /// The next fetched tile still to prove, with its data.
    pub fn next_unproved(&mut self) -> Option<(Tile, Vec<u8>)> {
        let tile = self.unproved.pop()?;
        let data = self.data.get(&tile)?.clone();
        Some((tile, data))
    }

    /// Marks a tile proved.
    pub fn proved(&mut self, tile: Tile) {
        self.trusted.insert(tile);
    }
}

impl HashReader for TileSet {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, String> {
        TileHashes {
            height: TILE_HEIGHT,
            n: self.tree.n,
            fetch: |tile: &Tile| {
                self.data
                    .get(tile)
                    .cloned()
                    .ok_or_else(|| format!("{} was not loaded", tile.path()))
            },
        }
        .read_hashes(indexes)
    }
}
