//! Errors of certificate handling.

/// Why a certificate could not be made, loaded or read.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The certificate is not parseable DER/PEM.
    #[error("unreadable certificate: {0}")]
    Unreadable(String),
    /// The certificate names no goproxy-ha identity (no `urn:goproxy-ha:` URI).
    #[error("the certificate names no goproxy-ha identity (expected a URI SAN like urn:goproxy-ha:node:3)")]
    NoIdentity,
    /// The certificate names more than one identity.
    #[error("the certificate names more than one goproxy-ha identity ({0} and {1})")]
    Ambiguous(String, String),
    /// A `urn:goproxy-ha:` URI that is not a valid identity.
    #[error("invalid goproxy-ha identity {0:?}")]
    BadIdentity(String),
    /// rcgen could not build or sign a certificate.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
}
