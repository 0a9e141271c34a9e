//! How node-to-node connections are made: mutual TLS against the cluster CA, or plaintext
//! when the operator explicitly runs an insecure cluster (`cluster.insecure_plaintext`).
//!
//! With TLS the server requires a client certificate chaining to the CA (any other
//! connection, plaintext included, fails its handshake) and the client verifies the server's
//! certificate names the member it meant to reach ([`PeerName`]). Both sides read the CA file
//! as a bundle, so a rotation can trust an old and a new CA at once (`cluster/RUNBOOK.md`).
//! The limits every node-to-node server shares are here too.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use goproxy_pki::identity::node_server_name;
use goproxy_pki::{identity_of, Identity, CLUSTER_SERVER_NAME};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Server, ServerTlsConfig};

/// Time allowed to establish a TCP connection to a peer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Time a connecting peer has to finish its TLS handshake before it is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Concurrent streams on one node-to-node connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 128;
/// HTTP/2 pings on idle node-to-node connections, to find dead peers.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// How long a ping may go unanswered before the connection is dropped.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the node-to-node transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A file could not be read.
    #[error("{what} {path}: {source}")]
    Read {
        /// Which file (CA, certificate, key).
        what: &'static str,
        /// Its path.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// A file holds no usable PEM of the expected kind.
    #[error("{what}: {reason}")]
    Pem {
        /// Which file.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The certificate does not verify against the CA (wrong CA, expired, not for clients).
    #[error("the certificate does not verify against the cluster CA: {0}")]
    Untrusted(String),
    /// The certificate names no usable identity.
    #[error("the certificate: {0}")]
    Identity(#[from] goproxy_pki::PkiError),
    /// tonic refused the settings.
    #[error("TLS settings: {0}")]
    Tonic(#[from] tonic::transport::Error),
    /// A peer address that is not `host:port`.
    #[error("peer address {0:?}: {1}")]
    Address(String, String),
}

/// PEM material of one identity and the CA bundle it trusts.
struct TlsMaterial {
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    identity: Identity,
}

/// The node-to-node transport. Cheap to clone.
#[derive(Clone)]
pub enum Transport {
    /// Mutual TLS against the cluster CA.
    Tls(Arc<TlsMaterialHandle>),
    /// No TLS: anyone who reaches the port may act as any member. For benchmarks and
    /// isolated labs only; the node logs a warning at start.
    Plaintext,
}

/// Opaque handle to loaded TLS material (keys never printed).
pub struct TlsMaterialHandle(TlsMaterial);

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Tls(m) => write!(f, "Transport::Tls({})", m.0.identity),
            Transport::Plaintext => f.write_str("Transport::Plaintext"),
        }
    }
}

/// Which member a client expects at the address it dials.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerName {
    /// Exactly node `id` (Raft, replication, a transfer's calls).
    Node(u64),
    /// Any member of the cluster (the CLI, which only knows an address).
    AnyMember,
}

impl PeerName {
    fn server_name(&self) -> String {
        match self {
            PeerName::Node(id) => node_server_name(*id),
            PeerName::AnyMember => CLUSTER_SERVER_NAME.to_string(),
        }
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TransportError> {
    std::fs::read(path).map_err(|source| TransportError::Read {
        what,
        path: path.display().to_string(),
        source,
    })
}

impl Transport {
    /// Loads the CA bundle, this identity's certificate and its key (PEM files), and checks
    /// that the certificate verifies against the CA and names an identity.
    pub fn from_files(ca: &Path, cert: &Path, key: &Path) -> Result<Self, TransportError> {
        warn_if_readable_by_others(key);
        Self::from_pem(
            read("CA file", ca)?,
            read("certificate file", cert)?,
            read("key file", key)?,
        )
    }

    /// As [`from_files`](Self::from_files), from PEM bytes.
    pub fn from_pem(
        ca_pem: Vec<u8>,
        cert_pem: Vec<u8>,
        key_pem: Vec<u8>,
    ) -> Result<Self, TransportError> {
        let pem = |what, reason: String| TransportError::Pem { what, reason };
        let roots: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&ca_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| pem("CA file", e.to_string()))?;
        if roots.is_empty() {
            return Err(pem("CA file", "no certificate in it".into()));
        }
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| pem("certificate file", e.to_string()))?;
        let leaf = chain
            .first()
            .ok_or_else(|| pem("certificate file", "no certificate in it".into()))?;
        PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| pem("key file", format!("no private key: {e}")))?;
        verify_chain(&roots, leaf, &chain[1..])?;
        let identity = identity_of(leaf.as_ref())?;
        Ok(Transport::Tls(Arc::new(TlsMaterialHandle(TlsMaterial {
            ca_pem,
            cert_pem,
            key_pem,
            identity,
        }))))
    }

    /// The identity this side presents (`None` in plaintext).
    pub fn identity(&self) -> Option<&Identity> {
        match self {
            Transport::Tls(m) => Some(&m.0.identity),
            Transport::Plaintext => None,
        }
    }

    /// Whether connections are mutual TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// A server builder with this transport's TLS (client certificates required) and the
    /// shared connection limits.
    pub fn server(&self) -> Result<Server, TransportError> {
        let builder = Server::builder()
            .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
            .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
            .tcp_nodelay(true);
        Ok(match self {
            Transport::Plaintext => builder,
            Transport::Tls(m) => {
                let m = &m.0;
                let tls = ServerTlsConfig::new()
                    .identity(tonic::transport::Identity::from_pem(
                        &m.cert_pem,
                        &m.key_pem,
                    ))
                    .client_ca_root(Certificate::from_pem(&m.ca_pem))
                    .client_auth_optional(false)
                    .timeout(HANDSHAKE_TIMEOUT);
                builder.tls_config(tls)?
            }
        })
    }

    /// An endpoint for `addr` (`host:port`) expecting `peer` there; connect lazily.
    pub fn endpoint(&self, addr: &str, peer: &PeerName) -> Result<Endpoint, TransportError> {
        let scheme = if self.is_tls() { "https" } else { "http" };
        let endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| TransportError::Address(addr.to_string(), e.to_string()))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT);
        Ok(match self {
            Transport::Plaintext => endpoint,
            Transport::Tls(m) => {
                let m = &m.0;
                let tls = ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(&m.ca_pem))
                    .identity(tonic::transport::Identity::from_pem(
                        &m.cert_pem,
                        &m.key_pem,
                    ))
                    .domain_name(peer.server_name())
                    .timeout(HANDSHAKE_TIMEOUT);
                endpoint.tls_config(tls)?
            }
        })
    }
}

/// Checks `leaf` (with `intermediates`) chains to one of `roots`, is valid now and may be
/// used as a TLS client certificate: a mistake found at start, not as failed handshakes.
fn verify_chain(
    roots: &[CertificateDer<'static>],
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Result<(), TransportError> {
    let mut store = rustls::RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(roots.iter().cloned());
    if added == 0 {
        return Err(TransportError::Pem {
            what: "CA file",
            reason: "no usable CA certificate".into(),
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider)
            .build()
            .map_err(|e| TransportError::Untrusted(e.to_string()))?;
    verifier
        .verify_client_cert(leaf, intermediates, UnixTime::now())
        .map(|_| ())
        .map_err(|e| TransportError::Untrusted(e.to_string()))
}

/// A private key others can read is logged loudly (not refused: containers often run with
/// mounted secrets whose mode the node cannot choose).
fn warn_if_readable_by_others(key: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(key) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                key = %key.display(),
                mode = format!("{:o}", mode & 0o777),
                "the node-to-node private key is readable by other users; chmod 600 it"
            );
        }
    }
}
