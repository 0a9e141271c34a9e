//! Who is speaking on the node-to-node port, and the certificates that prove it.
//!
//! Every node-to-node connection is mutual TLS against one cluster CA. The certificate does
//! not only say "member of this cluster": it names exactly one [`Identity`], a node id or an
//! admin name, in a `urn:goproxy-ha:` URI subject-alternative name. Servers read it from the
//! peer's verified certificate and authorize each call by it (a node may speak only as the id
//! in its certificate; admin calls need an admin certificate).
//!
//! # Layout
//! - [`identity`]: [`Identity`], its URN form, the DNS names servers present, and reading
//!   the identity out of a DER certificate.
//! - [`authority`]: a cluster CA made or loaded with rcgen, issuing node and admin
//!   certificates (`goproxy-ha certs init | issue`).
//! - [`error`]: the error type, [`PkiError`].
#![forbid(unsafe_code)]

pub mod authority;
pub mod error;
pub mod identity;

pub use authority::{Authority, Issued};
pub use error::PkiError;
pub use identity::{identity_of, Identity, CLUSTER_SERVER_NAME};
