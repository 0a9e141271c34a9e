//! `make scale`: how a node fares with an index of up to millions of entries.
//!
//! # Layout
//! - [`naming`]: the synthetic corpus: module versions and their `.info`, `.mod` and `.zip`
//!   bytes, a pure function of a version number (pure).
//! - [`generate`]: makes or extends a node's data directory to `N` committed entries and
//!   their blobs, through a single node's own Raft member.
//! - [`cluster`]: ports, certificates and configurations of a run's three nodes;
//!   [`process`]: their `goproxy-ha serve` processes.
//! - [`probe`]: what is asked over HTTP (status, hits, a snapshot build);
//!   [`stats`]: percentiles and `/proc` memory figures (pure).
//! - [`rejoin`]: two wiped nodes joining, timed to their snapshot install and blob catch-up.
//! - [`harness`]: one level after another; [`report`]: their figures and the table (pure).
//!
//! A level is a number of index entries; versions are rounded up so that every version
//! has its three entries (`index_entries` ≥ the level).

pub mod cluster;
pub mod generate;
pub mod harness;
pub mod naming;
pub mod probe;
pub mod process;
pub mod rejoin;
pub mod report;
pub mod stats;

pub use harness::{run, Options};
pub use report::{table, Level, Rejoin};

/// Blob files in the store of the node whose data directory is `data_dir`.
pub fn count_blobs(data_dir: &std::path::Path) -> anyhow::Result<u64> {
    let root = data_dir.join(generate::BLOBS_DIR).join("sha256");
    let mut count = 0;
    for fanout in std::fs::read_dir(&root)? {
        let fanout = fanout?;
        if fanout.file_type()?.is_dir() {
            for blob in std::fs::read_dir(fanout.path())? {
                count += u64::from(blob?.file_type()?.is_file());
            }
        }
    }
    Ok(count)
}
