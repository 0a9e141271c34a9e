//! HTTPS for the client listener: the certificate and key files, loaded into a rustls server
//! configuration whose certificate can be replaced while the listener runs.
//!
//! The configuration never changes; its certificate resolver hands each new handshake the
//! certificate in force at that moment. [`ServerTls::reload`] reads the files again and, only
//! if they make a valid pair, replaces that certificate: connections already open keep theirs
//! (TLS does not present a certificate again), new handshakes get the new one, and a bad
//! file leaves the old one in use. rustls' safe defaults (TLS 1.2 and 1.3, its cipher
//! suites, the `ring` provider), ALPN `http/1.1` only, no client certificates.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use tokio_rustls::TlsAcceptor;

/// Where the listener's certificate and private key are (PEM files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain: the server's certificate first, then any intermediates
    /// (`cert_file`).
    #[serde(rename = "cert_file")]
    pub cert: PathBuf,
    /// The private key of the first certificate (PKCS#8, PKCS#1 or SEC1).
    #[serde(rename = "key_file")]
    pub key: PathBuf,
    /// The CA (PEM) that signed the members' HTTPS certificates, which members verify when
    /// they forward misses to the leader (`ca_file`; none: the public web roots).
    #[serde(default, rename = "ca_file", skip_serializing_if = "Option::is_none")]
    pub peer_ca: Option<PathBuf>,
}

/// Why the certificate or key could not be used. Messages name the file and never include
/// key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("TLS {what} file {}: {source}", path.display())]
    Read {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("TLS certificate file {}: no PEM certificate (BEGIN CERTIFICATE) in it", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The certificate file is not valid PEM, or its certificate cannot be parsed.
    #[error("TLS certificate file {}: {reason}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key file holds no PEM private key.
    #[error(
        "TLS key file {}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in it",
        path.display()
    )]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The key file is not valid PEM, or its key is of a kind that cannot be used.
    #[error("TLS key file {}: {reason}", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the key itself).
        reason: String,
    },
    /// The key is not the one of the certificate.
    #[error(
        "TLS key file {} does not match the certificate in {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
}

/// The listener's TLS configuration, with a certificate that [`reload`](Self::reload) can
/// replace. Cheap to clone; clones share the certificate.
#[derive(Clone)]
pub struct ServerTls {
    files: Arc<TlsFiles>,
    current: Arc<Current>,
    config: Arc<ServerConfig>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads the certificate and key in `files`, and checks that they make a pair.
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let key = read_pair(files)?;
        let current = Arc::new(Current(RwLock::new(key)));
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // HTTP/1.1 only (see the listener's documentation). A client offering only h2 fails
        // its handshake rather than sending HTTP/2 frames to an HTTP/1.1 server.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            files: Arc::new(files.clone()),
            current,
            config: Arc::new(config),
        })
    }

    /// Reads the same files again and, if they make a valid pair, uses them for new
    /// handshakes; open connections are untouched. On error the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = read_pair(&self.files)?;
        *self.current.0.write().unwrap_or_else(|p| p.into_inner()) = key;
        Ok(())
    }

    /// The files this configuration reads.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// An acceptor for one connection's handshake.
    pub(super) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }
}

/// The certificate in force, handed to every new handshake.
struct Current(RwLock<Arc<CertifiedKey>>);

impl fmt::Debug for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Current").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate chain and key in `files`, checked to belong together.
fn read_pair(files: &TlsFiles) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = read_chain(&files.cert)?;
    let key = read_key(&files.key)?;
    let signing_key =
        provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| TlsError::BadKey {
                path: files.key.clone(),
                reason: format!("unusable private key: {e}"),
            })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                cert: files.cert.clone(),
                key: files.key.clone(),
            })
        }
        // The key cannot tell its public half (no such key with the ring provider): the
        // handshake would reveal a mismatch.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(e) => Err(TlsError::BadCertificate {
            path: files.cert.clone(),
            reason: format!("the first certificate cannot be parsed: {e}"),
        }),
    }
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_file("certificate", path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| match e {
            pem::Error::NoItemsFound => TlsError::NoCertificate {
                path: path.to_path_buf(),
            },
            e => TlsError::BadCertificate {
                path: path.to_path_buf(),
                reason: pem_problem(&e),
            },
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_file("key", path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_path_buf(),
        },
        e => TlsError::BadKey {
            path: path.to_path_buf(),
            reason: pem_problem(&e),
        },
    })
}

/// What is wrong with a PEM file, without quoting it (it may be a key).
fn pem_problem(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => "malformed PEM: a section has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "malformed PEM: a bad BEGIN line".into(),
        pem::Error::Base64Decode(_) => "malformed PEM: invalid base64".into(),
        pem::Error::SectionTooLarge => "malformed PEM: a section is too large".into(),
        pem::Error::NoItemsFound => "no PEM item of the expected kind".into(),
        pem::Error::Io(e) => format!("reading: {e}"),
        _ => "malformed PEM".into(),
    }
}
