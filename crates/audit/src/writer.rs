//! The file side: lines waiting in memory, written in order, rotated by size.
//!
//! Synchronous (blocking I/O); [`AuditTask`](crate::AuditTask) runs it off the async threads.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::stats::Counters;
use crate::{AuditConfig, AuditError, AuditStats, Record};

/// The audit file and the lines not yet in it. Lines are written whole and in order; a line
/// never straddles two files, and a line that could not be written stays in memory until
/// a later [`flush`](Self::flush) succeeds.
#[derive(Debug)]
pub struct AuditWriter {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    /// None after a failed reopen; reopened by the next flush.
    file: Option<File>,
    /// Bytes in the current file.
    size: u64,
    /// Unwritten bytes are `buf[head..]`: whole lines, except that the first may have been
    /// partly written (`started`).
    buf: Vec<u8>,
    head: usize,
    /// Unwritten bytes of each waiting line.
    lines: VecDeque<usize>,
    started: bool,
    counters: Arc<Counters>,
    /// The last kind of failure logged (logged once until writing succeeds again).
    reported: Option<(u8, Option<ErrorKind>)>,
}

impl AuditWriter {
    /// Validates `config` and opens (or creates) its file for appending. The directory is not
    /// created: a missing one is an error naming it.
    pub fn open(config: &AuditConfig) -> Result<Self, AuditError> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(AuditError::Invalid(problems.join("; ")));
        }
        let path = config.path.clone().ok_or(AuditError::Disabled)?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(AuditError::MissingDirectory {
                dir: dir.to_path_buf(),
            });
        }
        let (file, size) = open_append(&path).map_err(|source| AuditError::Open {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            path,
            max_bytes: config.max_bytes,
            keep: config.keep,
            file: Some(file),
            size,
            buf: Vec::new(),
            head: 0,
            lines: VecDeque::new(),
            started: false,
            counters: Arc::default(),
            reported: None,
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> AuditStats {
        self.counters.snapshot()
    }

    pub(crate) fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Lines waiting in memory.
    pub fn pending_lines(&self) -> usize {
        self.lines.len()
    }

    /// Bytes waiting in memory.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len() - self.head
    }

    /// Adds `record` as one line to those waiting (nothing is written yet).
    pub fn push(&mut self, record: &Record) {
        let start = self.buf.len();
        match serde_json::to_writer(&mut self.buf, record) {
            Ok(()) => {
                self.buf.push(b'\n');
                self.lines.push_back(self.buf.len() - start);
            }
            Err(error) => {
                // Not expected: a Record has only strings and numbers.
                self.buf.truncate(start);
                let path = self.path.display();
                tracing::error!(%error, %path, "audit: cannot serialize a record");
            }
        }
    }

    /// Writes every waiting line, rotating as needed. On failure the unwritten lines stay in
    /// memory (a later flush resumes exactly where this one stopped), the failure is counted,
    /// and it is logged once per kind until writing succeeds again.
    pub fn flush(&mut self) -> Result<(), AuditError> {
        let result = self.write_pending();
        self.compact();
        self.note(result)
    }

    /// Writes every waiting line, then syncs the file to the disk.
    pub fn flush_and_sync(&mut self) -> Result<(), AuditError> {
        self.flush()?;
        let result = match &self.file {
            Some(file) => file.sync_all().map_err(|source| self.write_error(source)),
            None => Ok(()),
        };
        self.note(result)
    }

    fn note(&mut self, result: Result<(), AuditError>) -> Result<(), AuditError> {
        match &result {
            Ok(()) => {
                if self.reported.take().is_some() {
                    tracing::warn!(path = %self.path.display(), "audit: writing again");
                }
            }
            Err(error) => {
                self.counters.write_error();
                if self.reported != Some(error.kind()) {
                    self.reported = Some(error.kind());
                    let pending = self.lines.len();
                    tracing::error!(%error, pending, "audit: lines kept in memory, retrying");
                }
            }
        }
        result
    }

    fn write_pending(&mut self) -> Result<(), AuditError> {
        while !self.lines.is_empty() {
            if self.file.is_none() {
                let (file, size) = open_append(&self.path)
                    .map_err(|source| self.rotate_error(&self.path, source))?;
                (self.file, self.size) = (Some(file), size);
            }
            match self.fitting_bytes() {
                0 => self.rotate()?,
                bytes => self.write_bytes(bytes)?,
            }
        }
        Ok(())
    }

    /// Bytes of the waiting lines that go into the current file: whole lines up to
    /// `max_bytes`; the first line always goes into an empty file, and a partly written
    /// line is always finished.
    fn fitting_bytes(&self) -> usize {
        let mut bytes = 0;
        for (i, &len) in self.lines.iter().enumerate() {
            let forced = i == 0 && (self.size == 0 || self.started);
            if !forced && self.size + (bytes + len) as u64 > self.max_bytes {
                break;
            }
            bytes += len;
        }
        bytes
    }

    fn write_bytes(&mut self, mut bytes: usize) -> Result<(), AuditError> {
        while bytes > 0 {
            let Some(file) = self.file.as_mut() else {
                return Ok(());
            };
            let written = match file.write(&self.buf[self.head..self.head + bytes]) {
                Ok(0) => return Err(self.write_error(ErrorKind::WriteZero.into())),
                Ok(written) => written,
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                Err(error) => return Err(self.write_error(error)),
            };
            bytes -= written;
            self.head += written;
            self.size += written as u64;
            self.consume(written);
        }
        Ok(())
    }

    /// Marks `written` bytes of the waiting lines as in the file.
    fn consume(&mut self, mut written: usize) {
        while written > 0 {
            let Some(front) = self.lines.front_mut() else {
                return;
            };
            if *front <= written {
                written -= *front;
                self.lines.pop_front();
                self.started = false;
                self.counters.line();
            } else {
                *front -= written;
                written = 0;
                self.started = true;
            }
        }
    }

    /// `path.(keep-1)` → `path.keep` … `path` → `path.1`, then a fresh `path`.
    fn rotate(&mut self) -> Result<(), AuditError> {
        if let Some(file) = &self.file {
            file.sync_all().map_err(|source| self.write_error(source))?;
        }
        for n in (1..self.keep).rev() {
            rename_if_present(&numbered(&self.path, n), &numbered(&self.path, n + 1))
                .map_err(|source| self.rotate_error(&numbered(&self.path, n), source))?;
        }
        rename_if_present(&self.path, &numbered(&self.path, 1))
            .map_err(|source| self.rotate_error(&self.path, source))?;
        self.counters.rotation();
        (self.file, self.size) = (None, 0);
        let (file, size) =
            open_append(&self.path).map_err(|source| self.rotate_error(&self.path, source))?;
        (self.file, self.size) = (Some(file), size);
        Ok(())
    }

    fn compact(&mut self) {
        self.buf.drain(..self.head);
        self.head = 0;
    }

    fn write_error(&self, source: std::io::Error) -> AuditError {
        let path = self.path.clone();
        AuditError::Write { path, source }
    }

    fn rotate_error(&self, path: &Path, source: std::io::Error) -> AuditError {
        let path = path.to_path_buf();
        AuditError::Rotate { path, source }
    }
}

/// `path.n`.
pub(crate) fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn rename_if_present(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        result => result,
    }
}

fn open_append(path: &Path) -> std::io::Result<(File, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}
