//! The checker against a real checksum database (golang.org/x/mod/sumdb's server over the
//! shared corpus): versions verify and what verified is kept; kept files suffice once the
//! database is gone; another key, a bad tile and a forked tree are each refused with their
//! own reason.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, FutureExt};
use goproxy_checksum::{CheckError, Checker, FetchError, Files};
use goproxy_protocol::index::{ArtifactKey, ArtifactKind};
use goproxy_sumdb::Database;
use goproxy_testkit::sumdb_server::{http_get, SumdbServer};

const NAME: &str = "sum.test.example";

/// The cluster cache as a map (first kept wins), and a database URL to fetch from.
#[derive(Clone, Default)]
struct MemoryFiles {
    kept: Arc<Mutex<BTreeMap<ArtifactKey, Vec<u8>>>>,
    url: Arc<Mutex<String>>,
    /// Flips a byte of every tile fetched (a database serving a bad tile).
    corrupt_tiles: Arc<Mutex<bool>>,
}

impl MemoryFiles {
    fn kept_versions(&self, module: &str) -> Vec<String> {
        let kept = self.kept.lock().unwrap();
        kept.keys()
            .filter(|k| k.module == module)
            .map(|k| k.version.clone())
            .collect()
    }

    fn kept_paths(&self, kind: ArtifactKind) -> Vec<String> {
        let kept = self.kept.lock().unwrap();
        kept.keys()
            .filter(|k| k.kind == kind)
            .map(|k| k.version.clone())
            .collect()
    }
}

impl Files for MemoryFiles {
    fn cached(&self, key: &ArtifactKey) -> BoxFuture<'_, Result<Option<Vec<u8>>, String>> {
        let found = self.kept.lock().unwrap().get(key).cloned();
        async move { Ok(found) }.boxed()
    }

    fn keep(&self, key: ArtifactKey, bytes: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        let kept = self
            .kept
            .lock()
            .unwrap()
            .entry(key)
            .or_insert(bytes)
            .clone();
        async move { Ok(kept) }.boxed()
    }

    fn versions(&self, module: &str) -> BoxFuture<'_, Result<Vec<String>, String>> {
        let versions = self.kept_versions(module);
        async move { Ok(versions) }.boxed()
    }

    fn last_version(&self, module: &str) -> BoxFuture<'_, Result<Option<String>, String>> {
        let last = self.kept_versions(module).into_iter().max();
        async move { Ok(last) }.boxed()
    }

    fn fetch(&self, name: &str, path: &str) -> BoxFuture<'_, Result<Vec<u8>, FetchError>> {
        assert_eq!(name, NAME);
        let url = format!("{}/{path}", self.url.lock().unwrap());
        let corrupt = *self.corrupt_tiles.lock().unwrap() && path.starts_with("tile/");
        async move {
            let (status, mut body) = tokio::task::spawn_blocking(move || http_get(&url))
                .await
                .unwrap()
                .map_err(|e| FetchError::Unavailable(e.to_string()))?;
            match status {
                200 => {
                    if corrupt {
                        body[0] ^= 1;
                    }
                    Ok(body)
                }
                404 | 410 => Err(FetchError::NotFound(
                    String::from_utf8_lossy(&body).into_owned(),
                )),
                other => Err(FetchError::Unavailable(format!("status {other}"))),
            }
        }
        .boxed()
    }
}

fn checker(db: &SumdbServer, files: &MemoryFiles) -> Checker<MemoryFiles> {
    *files.url.lock().unwrap() = db.url.clone();
    let database = Database {
        name: NAME.into(),
        vkey: db.vkey.clone(),
        url: db.url.clone(),
    };
    Checker::new(&[database], files.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_verify_and_what_verified_is_enough_without_the_database() {
    let corpus = goproxy_testkit::corpus::dir();
    let mut db = SumdbServer::start(&corpus, NAME, 7, 0).unwrap();
    let files = MemoryFiles::default();
    let checker = checker(&db, &files);
    let versions = [
        ("example.com/hello", "v1.0.0"),
        ("example.com/hello", "v1.1.0"),
        ("github.com/gin-gonic/gin", "v1.8.1"),
    ];
    let mut hashes = Vec::new();
    for (module, version) in versions {
        let (verified, body) = checker.lookup(NAME, module, version).await.unwrap();
        assert!(verified.zip_hash().unwrap().starts_with("h1:"));
        assert!(verified.mod_hash().unwrap().starts_with("h1:"));
        assert!(String::from_utf8_lossy(&body).contains(module));
        hashes.push((
            verified.zip_hash().map(String::from),
            verified.mod_hash().map(String::from),
        ));
    }
    // The database grows with each new lookup: three trees, each consistent with the last.
    let status = checker.status();
    assert_eq!(status[0].verified, 3);
    assert_eq!(status[0].forks, 0);
    assert!(status[0].tree_size.unwrap() >= 3, "{status:?}");
    let lookups = files.kept_paths(ArtifactKind::SumdbFile);
    assert!(
        lookups.iter().filter(|p| p.starts_with("lookup/")).count() == 3,
        "{lookups:?}"
    );
    assert!(
        lookups.iter().any(|p| p.starts_with("tile/8/0/")),
        "{lookups:?}"
    );
    // The first tree head was recorded for the cluster.
    assert!(!files.kept_paths(ArtifactKind::SumdbTree).is_empty());

    // The database is gone: another node's checker (same cluster cache) still verifies
    // every version seen, and says the database is unreachable for one never seen.
    db.stop();
    let other = checker_for(&files, &db);
    for ((module, version), (zip, modh)) in versions.iter().zip(&hashes) {
        let (verified, _) = other.lookup(NAME, module, version).await.unwrap();
        assert_eq!(verified.zip_hash().map(String::from), *zip);
        assert_eq!(verified.mod_hash().map(String::from), *modh);
    }
    let unseen = other
        .lookup(NAME, "example.com/hello", "v1.2.0-beta.1")
        .await;
    assert!(
        matches!(unseen, Err(CheckError::Unreachable { .. })),
        "{unseen:?}"
    );
    assert_eq!(other.status()[0].unreachable, 1);
}

fn checker_for(files: &MemoryFiles, db: &SumdbServer) -> Checker<MemoryFiles> {
    let database = Database {
        name: NAME.into(),
        vkey: db.vkey.clone(),
        url: db.url.clone(),
    };
    Checker::new(&[database], files.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_key_a_bad_tile_and_a_forked_tree_are_refused_each_with_its_reason() {
    let corpus = goproxy_testkit::corpus::dir();
    let honest = SumdbServer::start(&corpus, NAME, 7, 0).unwrap();

    // A database signing with another key than the configured one.
    let stranger = SumdbServer::start(&corpus, NAME, 9, 0).unwrap();
    let files = MemoryFiles::default();
    let checker = checker(&honest, &files);
    *files.url.lock().unwrap() = stranger.url.clone();
    let refused = checker.lookup(NAME, "example.com/hello", "v1.0.0").await;
    match &refused {
        Err(CheckError::Invalid { reason, .. }) => {
            assert!(reason.contains("tree head"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(files.kept.lock().unwrap().is_empty(), "nothing kept");

    // The right key, but a tile with one bit flipped: the record's proof fails.
    let files = MemoryFiles::default();
    let checker = checker_at(&honest, &files);
    *files.corrupt_tiles.lock().unwrap() = true;
    // Two records, so the proof needs a tile.
    let _ = checker.lookup(NAME, "example.com/hello", "v1.0.0").await;
    let refused = checker.lookup(NAME, "example.com/hello", "v1.1.0").await;
    match &refused {
        Err(CheckError::Invalid { reason, .. }) => {
            assert!(reason.contains("not in the signed tree"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        files
            .kept_paths(ArtifactKind::SumdbFile)
            .iter()
            .all(|p| !p.starts_with("tile/")),
        "a bad tile was kept"
    );

    // The honest history is verified; then the same key signs another history.
    let files = MemoryFiles::default();
    let checker = checker_at(&honest, &files);
    for v in ["v1.0.0", "v1.1.0"] {
        checker.lookup(NAME, "example.com/hello", v).await.unwrap();
    }
    let forked = SumdbServer::start(&corpus, NAME, 7, 3).unwrap();
    assert_eq!(forked.vkey, honest.vkey);
    *files.url.lock().unwrap() = forked.url.clone();
    // A new process of the cluster (the newest tree comes from the cluster cache).
    let restarted = checker_at(&forked, &files);
    let refused = restarted
        .lookup(NAME, "github.com/gin-gonic/gin", "v1.8.1")
        .await;
    match &refused {
        Err(CheckError::Fork {
            known, presented, ..
        }) => {
            assert!(known.contains("records"), "{known}");
            assert_ne!(known, presented);
        }
        other => panic!("{other:?}"),
    }
    let status = restarted.status();
    assert_eq!(status[0].forks, 1);
    assert!(status[0]
        .last_fork
        .as_deref()
        .unwrap()
        .contains("forked tree"));
    assert!(
        !files
            .kept_paths(ArtifactKind::SumdbFile)
            .iter()
            .any(|p| p.contains("gin")),
        "the forked lookup was kept"
    );
}

fn checker_at(db: &SumdbServer, files: &MemoryFiles) -> Checker<MemoryFiles> {
    *files.url.lock().unwrap() = db.url.clone();
    checker_for(files, db)
}

/// Review finding: a client's tile request made the cluster keep any tile path it named
/// (every partial width): now only full tiles and partial ones of a recorded tree are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tiles_are_kept_only_when_full_or_of_a_recorded_tree() {
    let corpus = goproxy_testkit::corpus::dir();
    let db = SumdbServer::start(&corpus, NAME, 7, 0).unwrap();
    let files = MemoryFiles::default();
    let checker = checker_at(&db, &files);
    for v in ["v1.0.0", "v1.1.0"] {
        checker.lookup(NAME, "example.com/hello", v).await.unwrap();
    }
    // The database grows by two records in trees this checker never sees.
    for path in [
        "example.com/hello/v2@v2.0.0",
        "github.com/!burnt!sushi/toml@v1.2.0",
    ] {
        let (status, _) = http_get(&format!("{}/lookup/{path}", db.url)).unwrap();
        assert_eq!(status, 200, "{path}");
    }
    checker
        .lookup(NAME, "github.com/gin-gonic/gin", "v1.8.1")
        .await
        .unwrap();
    assert_eq!(checker.status()[0].tree_size, Some(5));
    let before = files.kept.lock().unwrap().len();
    // Width 3: within the tree and provable, but no recorded tree has 3 records.
    let partial = checker.tile(NAME, "tile/8/0/000.p/3").await.unwrap();
    assert_eq!(partial.len(), 3 * 32);
    assert_eq!(files.kept.lock().unwrap().len(), before, "kept");
    // Width 2: a recorded tree's (a go command verifying a kept lookup of it reads this).
    checker.tile(NAME, "tile/8/0/000.p/2").await.unwrap();
    let kept = files.kept_paths(ArtifactKind::SumdbFile);
    assert!(kept.contains(&"tile/8/0/000.p/2".to_string()), "{kept:?}");
}

/// Review finding: two fresh lookups from two histories, checked at the same time against
/// the same known tree, were both accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lookups_from_two_histories_are_caught_as_a_fork() {
    let corpus = goproxy_testkit::corpus::dir();
    let honest = SumdbServer::start(&corpus, NAME, 7, 0).unwrap();
    let files = MemoryFiles::default();
    let checker = checker_at(&honest, &files);
    for v in ["v1.0.0", "v1.1.0"] {
        checker.lookup(NAME, "example.com/hello", v).await.unwrap();
    }

    // Two more histories under the same key, both extending the honest tree of 2 records:
    // one of 3 records, one of 4 (so their tiles have different paths).
    let one = SumdbServer::start(&corpus, NAME, 7, 0).unwrap();
    let two = SumdbServer::start(&corpus, NAME, 7, 0).unwrap();
    for db in [&one, &two] {
        for v in ["v1.0.0", "v1.1.0"] {
            http_get(&format!("{}/lookup/example.com/hello@{v}", db.url)).unwrap();
        }
    }
    http_get(&format!(
        "{}/lookup/example.com/hello@v1.2.0-beta.1",
        two.url
    ))
    .unwrap();
    let routed = RoutedFiles {
        inner: files.clone(),
        one: one.url.clone(),
        two: two.url.clone(),
    };
    let database = Database {
        name: NAME.into(),
        vkey: honest.vkey.clone(),
        url: honest.url.clone(),
    };
    let checker = Checker::new(&[database], routed).unwrap();
    let (a, b) = tokio::join!(
        checker.lookup(NAME, "github.com/gin-gonic/gin", "v1.8.1"),
        checker.lookup(NAME, "github.com/BurntSushi/toml", "v1.2.0"),
    );
    let forks = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Err(CheckError::Fork { .. })))
        .count();
    assert_eq!(forks, 1, "{a:?}\n{b:?}");
    assert_eq!(checker.status()[0].forks, 1);
}

/// [`MemoryFiles`] whose database answers come from two servers: gin's lookup and the
/// tiles of 3-record trees from `one`, the rest from `two` (two histories, one key).
#[derive(Clone)]
struct RoutedFiles {
    inner: MemoryFiles,
    one: String,
    two: String,
}

impl Files for RoutedFiles {
    fn cached(&self, key: &ArtifactKey) -> BoxFuture<'_, Result<Option<Vec<u8>>, String>> {
        self.inner.cached(key)
    }

    fn keep(&self, key: ArtifactKey, bytes: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        self.inner.keep(key, bytes)
    }

    fn versions(&self, module: &str) -> BoxFuture<'_, Result<Vec<String>, String>> {
        self.inner.versions(module)
    }

    fn last_version(&self, module: &str) -> BoxFuture<'_, Result<Option<String>, String>> {
        self.inner.last_version(module)
    }

    fn fetch(&self, _name: &str, path: &str) -> BoxFuture<'_, Result<Vec<u8>, FetchError>> {
        let base = if path.contains("gin") || path.ends_with(".p/3") {
            &self.one
        } else {
            &self.two
        };
        let url = format!("{base}/{path}");
        async move {
            // Slow answers, so both lookups are in flight at once.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let (status, body) = tokio::task::spawn_blocking(move || http_get(&url))
                .await
                .unwrap()
                .map_err(|e| FetchError::Unavailable(e.to_string()))?;
            match status {
                200 => Ok(body),
                other => Err(FetchError::Unavailable(format!("status {other}"))),
            }
        }
        .boxed()
    }
}
