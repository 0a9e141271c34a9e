//! A `Fetch` over the GOPROXY file tree in /work/shared/testdata/goproxy-corpus, with an
//! in-memory overlay, an optional delay, and counters of calls and concurrency.

#![allow(dead_code)] // Each test binary uses a different part.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use goproxy_protocol::path::{escape_path, escape_version};
use goproxy_protocol::semver;
use goproxy_warm::{Artifact, Fetch, Fetched, Item, Target};

/// Longest a test run may take: a hung runner fails the test instead of stalling it.
const HANG: Duration = Duration::from_secs(60);

/// Awaits `run`, failing the test if it hangs.
pub async fn within<T>(run: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG, run).await.expect("the run hung")
}

/// The corpus root.
pub fn corpus() -> PathBuf {
    PathBuf::from("/work/shared/testdata/goproxy-corpus")
}

pub fn t(text: &str) -> Target {
    Target::parse(text).unwrap()
}

pub fn gin() -> Target {
    t("github.com/gin-gonic/gin@v1.8.1")
}

/// Where the corpus keeps one artifact.
pub fn file(target: &Target, artifact: Artifact) -> PathBuf {
    let module = escape_path(&target.module).unwrap();
    let version = escape_version(&target.version).unwrap();
    corpus()
        .join(module)
        .join("@v")
        .join(format!("{version}{}", artifact.extension()))
}

#[derive(Default)]
pub struct CorpusFetcher {
    /// `.mod` texts served instead of (or besides) the corpus; their `.info` and `.zip`
    /// are a few fake bytes.
    pub overlay: BTreeMap<Target, String>,
    /// Each fetch waits this long first.
    pub delay: Option<Duration>,
    /// Every fetch started, in order.
    pub calls: Mutex<Vec<Item>>,
    /// Fetches in flight now.
    pub in_flight: AtomicUsize,
    /// The most fetches ever in flight at once.
    pub max_in_flight: AtomicUsize,
}

/// Decrements the in-flight count even when the fetch is dropped (cancelled).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl CorpusFetcher {
    pub fn calls(&self) -> Vec<Item> {
        self.calls.lock().unwrap().clone()
    }

    pub fn fetched(&self, artifact: Artifact) -> BTreeSet<Target> {
        let calls = self.calls();
        calls
            .into_iter()
            .filter(|i| i.artifact == artifact)
            .map(|i| i.target)
            .collect()
    }
}

#[async_trait]
impl Fetch for CorpusFetcher {
    async fn fetch(
        &self,
        module: &str,
        version: &str,
        artifact: Artifact,
    ) -> Result<Fetched, String> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let _guard = InFlight(&self.in_flight);
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let target = Target::new(module, version).map_err(|e| e.to_string())?;
        self.calls.lock().unwrap().push(Item {
            target: target.clone(),
            artifact,
        });
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        let bytes = match self.overlay.get(&target) {
            Some(text) if artifact == Artifact::Mod => text.clone().into_bytes(),
            Some(_) => b"overlay".to_vec(),
            None => tokio::fs::read(file(&target, artifact))
                .await
                .map_err(|e| format!("{target}{artifact}: {e}"))?,
        };
        Ok(Fetched {
            bytes: bytes.len() as u64,
            body: (artifact == Artifact::Mod).then_some(bytes),
            filled: true,
        })
    }
}

/// The requirements of a `.mod`, read naively (independently of the crate's parser).
fn naive_requires(text: &str) -> Vec<Target> {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        let line = line.split("//").next().unwrap().trim();
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            ["require", "("] => in_block = true,
            [")"] => in_block = false,
            ["require", module, version] => out.push(Target::new(module, version).unwrap()),
            [module, version] if in_block => out.push(Target::new(module, version).unwrap()),
            _ => {}
        }
    }
    out
}

/// Breadth-first search over the corpus's `.mod` files: every module version reached.
pub fn bfs(root: &Target) -> BTreeSet<Target> {
    let mut seen = BTreeSet::from([root.clone()]);
    let mut queue = VecDeque::from([root.clone()]);
    while let Some(target) = queue.pop_front() {
        let text = std::fs::read_to_string(file(&target, Artifact::Mod)).unwrap();
        for required in naive_requires(&text) {
            if seen.insert(required.clone()) {
                queue.push_back(required);
            }
        }
    }
    seen
}

/// The highest version of each module path in `reached`.
pub fn mvs(reached: &BTreeSet<Target>) -> BTreeSet<Target> {
    let mut best: BTreeMap<&str, &str> = BTreeMap::new();
    for target in reached {
        let entry = best.entry(&target.module).or_insert(&target.version);
        if semver::compare(&target.version, entry).is_gt() {
            *entry = &target.version;
        }
    }
    best.into_iter()
        .map(|(module, version)| Target {
            module: module.into(),
            version: version.into(),
        })
        .collect()
}
