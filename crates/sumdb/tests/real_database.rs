//! Against a real checksum database (golang.org/x/mod/sumdb's server, Debian's
//! golang-golang-x-mod-dev) over the shared corpus: lookups and tiles fetched over HTTP are
//! verified here, the hashes match what this crate's neighbours compute from the corpus, and
//! another key or a forked history is refused.

use std::collections::HashMap;

use goproxy_sumdb::record::{needed_tiles, Lookup};
use goproxy_sumdb::tile::{verify_tile, Tile, TileHashes};
use goproxy_sumdb::tlog::{check_tree, prove_tree, ProofError};
use goproxy_sumdb::{Tree, Verifier};
use goproxy_testkit::sumdb_server::{http_get, SumdbServer};

const NAME: &str = "sum.test.example";

fn get(url: &str) -> Vec<u8> {
    let (status, body) = http_get(url).unwrap();
    assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
    body
}

/// Fetches tiles of the tree of `n` records from `db` (remembering them).
struct Tiles<'a> {
    db: &'a SumdbServer,
    fetched: std::cell::RefCell<HashMap<Tile, Vec<u8>>>,
}

impl Tiles<'_> {
    fn reader(&self, n: u64) -> TileHashes<impl Fn(&Tile) -> Result<Vec<u8>, String> + '_> {
        TileHashes {
            height: 8,
            n,
            fetch: move |t: &Tile| {
                let data = get(&format!("{}/{}", self.db.url, t.path()));
                self.fetched.borrow_mut().insert(*t, data.clone());
                Ok(data)
            },
        }
    }
}

fn latest(db: &SumdbServer, key: &Verifier) -> Tree {
    let note = get(&format!("{}/latest", db.url));
    Tree::parse(&goproxy_sumdb::note::open(&note, key).unwrap().text).unwrap()
}

#[test]
fn lookups_verify_and_match_the_corpus_and_tiles_verify_against_the_tree() {
    let corpus = goproxy_testkit::corpus::dir();
    let db = SumdbServer::start(&corpus, NAME, 7, 0).unwrap();
    let key = Verifier::parse(&db.vkey).unwrap();
    let tiles = Tiles {
        db: &db,
        fetched: Default::default(),
    };
    let mut last = None;
    for (module, version) in [
        ("example.com/hello", "v1.0.0"),
        ("example.com/hello", "v1.1.0"),
        ("github.com/gin-gonic/gin", "v1.8.1"),
    ] {
        let body = get(&format!("{}/lookup/{module}@{version}", db.url));
        let lookup = Lookup::parse(&body).unwrap();
        let tree = lookup.tree(&key).unwrap();
        assert!(!lookup.tiles(&tree, 8).is_empty() || tree.n == 1);
        let verified = lookup
            .verify(tree, &tiles.reader(tree.n), module, version)
            .unwrap();
        // The hashes agree with what goproxy-ha computes from the corpus itself.
        let escaped = goproxy_protocol::path::escape_path(module).unwrap();
        let base = corpus.join(&escaped).join("@v");
        let go_mod = std::fs::read(base.join(format!("{version}.mod"))).unwrap();
        assert_eq!(
            verified.mod_hash(),
            Some(goproxy_protocol::dirhash::go_mod_h1(&go_mod).as_str())
        );
        let zip = std::fs::File::open(base.join(format!("{version}.zip"))).unwrap();
        let summary = goproxy_protocol::zipcheck::check_zip(zip, module, version, &go_mod).unwrap();
        assert_eq!(verified.zip_hash(), Some(summary.h1.as_str()));
        // The other module's record is not this one's.
        assert!(lookup
            .verify(tree, &tiles.reader(tree.n), module, "v9.9.9")
            .is_err());
        last = Some(tree);
    }
    // Every tile read verifies against the latest tree; a flipped byte does not.
    let tree = latest(&db, &key);
    assert_eq!(Some(tree), last);
    let fetched = tiles.fetched.borrow().clone();
    for (tile, data) in &fetched {
        if tile.width as u64 * (1 << (tile.level.unwrap() * 8)) + (tile.index << 8) > tree.n {
            continue; // a narrower tile of an older tree
        }
        verify_tile(tile, data, &tree, &tiles.reader(tree.n)).unwrap();
        let mut bad = data.clone();
        bad[0] ^= 0x80;
        assert_eq!(
            verify_tile(tile, &bad, &tree, &tiles.reader(tree.n)),
            Err(ProofError::Mismatch)
        );
    }
}

#[test]
fn another_key_and_a_forked_history_are_refused() {
    let corpus = goproxy_testkit::corpus::dir();
    let honest = SumdbServer::start(&corpus, NAME, 7, 0).unwrap();
    let key = Verifier::parse(&honest.vkey).unwrap();
    for v in ["v1.0.0", "v1.1.0"] {
        get(&format!("{}/lookup/example.com/hello@{v}", honest.url));
    }
    let old = latest(&honest, &key);
    get(&format!(
        "{}/lookup/github.com/gin-gonic/gin@v1.8.1",
        honest.url
    ));
    let new = latest(&honest, &key);
    let tiles = Tiles {
        db: &honest,
        fetched: Default::default(),
    };
    let proof = prove_tree(old.n, new.n, &tiles.reader(new.n)).unwrap();
    check_tree(&proof, old.n, &old.hash, new.n, &new.hash).unwrap();

    // The same key, another history: its tree is not an extension of the one seen before.
    let forked = SumdbServer::start(&corpus, NAME, 7, 3).unwrap();
    assert_eq!(forked.vkey, honest.vkey);
    for v in ["v1.0.0", "v1.1.0", "v1.2.0-beta.1"] {
        get(&format!("{}/lookup/example.com/hello@{v}", forked.url));
    }
    let fork = latest(&forked, &key);
    assert!(fork.n >= old.n);
    let fork_tiles = Tiles {
        db: &forked,
        fetched: Default::default(),
    };
    let proof = prove_tree(old.n, fork.n, &fork_tiles.reader(fork.n)).unwrap();
    assert_eq!(
        check_tree(&proof, old.n, &old.hash, fork.n, &fork.hash),
        Err(ProofError::Mismatch)
    );
    let needed = needed_tiles(8, fork.n, |r| prove_tree(old.n, fork.n, r).map(drop));
    assert!(!needed.is_empty());

    // Another key: nothing it signs opens with this one.
    let stranger = SumdbServer::start(&corpus, NAME, 9, 0).unwrap();
    let note = get(&format!("{}/latest", stranger.url));
    assert!(goproxy_sumdb::note::open(&note, &key).is_err());
}
