//! Content-addressed blob storage for module artifacts.
//!
//! # Layout
//! - [`BlobStore`]: the on-disk store (`<dir>/sha256/ab/abcdef…` files, `<dir>/tmp/` staging).
//! - [`StagedBlob`]: bytes written and fsynced to a temp file, hashed, not yet visible.
//!   The caller validates the staged file, then [`StagedBlob::commit`]s it (rename + dir fsync)
//!   or drops it (the temp file is removed).
//! - [`digest`]: parsing and checking of hex sha256 content addresses, so a hostile
//!   digest can never name a path outside the store.
//!
//! Blobs are immutable: a committed address never changes content. Readers open files
//! and stream them; nothing is buffered whole in memory.

mod blob_store;
pub mod digest;
mod error;
mod staged;

pub use blob_store::BlobStore;
pub use error::StoreError;
pub use staged::{BlobWriter, StagedBlob};
