//! Access times on disk: JSON, replaced atomically (temporary file, fsync, rename), so a
//! crash leaves either the old file or the new one.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::{AccessEntry, AccessTimes};

/// Format of the saved file; bumped if the shape changes, so an old binary refuses a
/// newer file instead of misreading it.
const FORMAT: u32 = 1;

/// Why access times could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Reading, writing, syncing or renaming failed.
    #[error("{path}: {source}")]
    Io {
        /// The file (or directory) concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// The file was written in a format this version does not read.
    #[error("{path}: access times format {found}, expected {FORMAT}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The format it declares.
        found: u32,
    },
}

/// The saved file.
#[derive(Serialize, Deserialize)]
struct SavedFile {
    format: u32,
    entries: Vec<AccessEntry>,
}

impl AccessTimes {
    /// Saves a snapshot to `path`, atomically replacing any previous file. The snapshot
    /// is copied under the lock and written after, so touches are not held up by disk I/O.
    pub fn save(&self, path: &Path) -> Result<(), PersistError> {
        let saved = SavedFile {
            format: FORMAT,
            entries: self.snapshot(),
        };
        let tmp = temp_path(path);
        let result = write_synced(&tmp, &saved).and_then(|()| {
            fs::rename(&tmp, path).map_err(|source| io_error(path, source))?;
            sync_parent(path)
        });
        if result.is_err() {
            // Best effort: the temporary file may not exist, and the first error matters.
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Merges the access times saved at `path` (see [`Self::merge`]) and returns how many
    /// entries the file held. A missing file (first start) adds nothing.
    pub fn load(&self, path: &Path) -> Result<usize, PersistError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(source) => return Err(io_error(path, source)),
        };
        let saved: SavedFile =
            serde_json::from_reader(BufReader::new(file)).map_err(|source| PersistError::Json {
                path: path.to_path_buf(),
                source,
            })?;
        if saved.format != FORMAT {
            return Err(PersistError::Format {
                path: path.to_path_buf(),
                found: saved.format,
            });
        }
        let count = saved.entries.len();
        self.merge(saved.entries);
        Ok(count)
    }
}

/// A temporary name next to `path` (same file system, so the rename is atomic), unique
/// per process and call so concurrent saves do not write the same file.
fn temp_path(path: &Path) -> PathBuf {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}.{n}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `saved` to `tmp` and syncs it to disk.
fn write_synced(tmp: &Path, saved: &SavedFile) -> Result<(), PersistError> {
    let file = File::create(tmp).map_err(|source| io_error(tmp, source))?;
    let mut out = BufWriter::new(file);
    serde_json::to_writer(&mut out, saved).map_err(|source| PersistError::Json {
        path: tmp.to_path_buf(),
        source,
    })?;
    out.flush().map_err(|source| io_error(tmp, source))?;
    let file = out
        .into_inner()
        .map_err(|e| io_error(tmp, e.into_error()))?;
    file.sync_all().map_err(|source| io_error(tmp, source))
}

/// Syncs the directory holding `path`, so the rename itself survives a crash.
fn sync_parent(path: &Path) -> Result<(), PersistError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| io_error(dir, source))
}

fn io_error(path: &Path, source: io::Error) -> PersistError {
    PersistError::Io {
        path: path.to_path_buf(),
        source,
    }
}
