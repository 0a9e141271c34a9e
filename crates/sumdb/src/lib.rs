//! The Go checksum database (sum.golang.org and compatible ones), as the go command checks it.
//!
//! Everything here is pure: bytes in, verified values or a reason out. Vectors made by the Go
//! implementation (`testdata/gen`, golang.org/x/mod/sumdb) check every function.
//!
//! # Layout
//! - [`config`]: the databases a proxy serves (name, verifier key, URL).
//! - [`note`]: verifier keys (`name+hash+key`) and signed notes (ed25519).
//! - [`tlog`]: the Merkle tree of records: hashes, the stored-hash layout, tree hashes,
//!   inclusion of a record (or of any complete subtree) and consistency of two trees.
//! - [`tile`]: tiles (`tile/H/L/NNN[.p/W]`), which hashes they hold, and reading hashes
//!   through them.
//! - [`record`]: lookup answers: split, tree head verified, record proved in it, go.sum
//!   lines about the version asked for; which tiles a proof needs.
//! - [`tree`]: the signed tree head a note carries (`go.sum database tree`).
#![forbid(unsafe_code)]

pub mod config;
pub mod note;
pub mod record;
pub mod tile;
pub mod tlog;
pub mod tree;

pub use config::Database;
pub use note::{Note, NoteError, Verifier};
pub use tlog::{Hash, HashReader, ProofError};
pub use tree::Tree;
