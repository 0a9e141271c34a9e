//! The client listener over HTTPS, on loopback: certificates from throwaway CAs written to a
//! temporary directory, a tiny router, and real TLS clients (reqwest, and raw tokio-rustls
//! connections kept open across a certificate reload).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use goproxy_http::listener::{
    self, ListenerConfig, ListenerMetrics, ServerTls, TlsError, TlsFiles,
};
use prometheus_client::registry::Registry;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

/// Generous bound on anything a test waits for.
const DEADLINE: Duration = Duration::from_secs(10);

/// A throwaway certificate authority.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A server certificate for 127.0.0.1 and localhost, with its key (PEM).
    fn leaf(&self) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn reqwest(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.pem.as_bytes()).unwrap())
            .https_only(true)
            .timeout(DEADLINE)
            .build()
            .unwrap()
    }

    fn connector(&self) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.pem.as_bytes()).unwrap())
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }
}

/// The certificate and key files in a temporary directory.
struct Files {
    dir: tempfile::TempDir,
    files: TlsFiles,
}

impl Files {
    fn new((cert, key): (String, String)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            peer_ca: None,
        };
        let this = Self { dir, files };
        this.write((cert, key));
        this
    }

    fn write(&self, (cert, key): (String, String)) {
        std::fs::write(&self.files.cert, cert).unwrap();
        std::fs::write(&self.files.key, key).unwrap();
    }
}

/// The listener serving `/hello` over HTTPS on a loopback port.
struct Server {
    addr: SocketAddr,
    registry: Registry,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(tls: ServerTls, limits: ListenerConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/hello", get(|| async { "hi" }));
        let mut registry = Registry::default();
        let counters = ListenerMetrics::register(&mut registry);
        let stop = CancellationToken::new();
        let task = tokio::spawn(listener::serve(
            listener,
            router,
            Some(tls),
            limits,
            counters,
            stop.clone().cancelled_owned(),
        ));
        Self {
            addr,
            registry,
            stop,
            task,
        }
    }

    fn url(&self) -> String {
        format!("https://{}/hello", self.addr)
    }

    /// The value of the counter `name` (text exposition).
    fn counter(&self, name: &str) -> u64 {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        let prefix = format!("{name}_total ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
            .parse()
            .unwrap()
    }

    /// Waits until the counter `name` is `want` (it is counted as its connection ends, so
    /// the client may see the end first).
    async fn await_counter(&self, name: &str, want: u64) {
        let started = Instant::now();
        loop {
            let value = self.counter(name);
            if value == want {
                return;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "{name} is {value}, not {want}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("the listener drains")
            .unwrap();
    }
}

fn limits() -> ListenerConfig {
    ListenerConfig::default()
}

/// GET /hello with `client`: its body, or the error's text.
async fn hello(client: &reqwest::Client, server: &Server) -> Result<String, String> {
    let response = client
        .get(server.url())
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    assert_eq!(response.status(), 200);
    Ok(response.text().await.unwrap())
}

/// A raw TLS connection to `server` trusting only `ca`.
async fn connect(ca: &Ca, server: &Server) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::IpAddress(server.addr.ip().into());
    tokio::time::timeout(DEADLINE, ca.connector().connect(name, tcp))
        .await
        .unwrap()
        .unwrap()
}

/// Sends GET /hello on a kept-alive connection and reads the answer: status line and body.
async fn request<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut BufReader<S>) -> (String, String) {
    stream
        .get_mut()
        .write_all(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    stream.get_mut().flush().await.unwrap();
    tokio::time::timeout(DEADLINE, async {
        let mut status = String::new();
        stream.read_line(&mut status).await.unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            stream.read_line(&mut line).await.unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        stream.read_exact(&mut body).await.unwrap();
        (
            status.trim_end().to_string(),
            String::from_utf8(body).unwrap(),
        )
    })
    .await
    .expect("an answer in time")
}

/// Reads until the peer closes (or fails): what was read, and how long it took.
async fn read_until_closed<S: AsyncRead + Unpin>(stream: &mut S) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut read = Vec::new();
    let mut buf = [0; 1024];
    loop {
        match tokio::time::timeout(DEADLINE, stream.read(&mut buf))
            .await
            .expect("the connection is closed in time")
        {
            Ok(0) | Err(_) => return (read, started.elapsed()),
            Ok(n) => read.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn serves_https() {
    let ca = Ca::new("first CA");
    let files = Files::new(ca.leaf());
    let server = Server::start(ServerTls::load(&files.files).unwrap(), limits()).await;

    assert_eq!(hello(&ca.reqwest(), &server).await.unwrap(), "hi");
    // A client that does not trust the CA fails its handshake.
    let stranger = Ca::new("stranger");
    assert!(hello(&stranger.reqwest(), &server).await.is_err());

    server.stop().await;
}

#[tokio::test]
async fn reload_changes_the_certificate_for_new_connections_only() {
    let first = Ca::new("first CA");
    let files = Files::new(first.leaf());
    let tls = ServerTls::load(&files.files).unwrap();
    let server = Server::start(tls.clone(), limits()).await;

    let mut open = BufReader::new(connect(&first, &server).await);
    assert_eq!(
        request(&mut open).await,
        ("HTTP/1.1 200 OK".into(), "hi".into())
    );
    let pooled = first.reqwest();
    assert_eq!(hello(&pooled, &server).await.unwrap(), "hi");

    let second = Ca::new("second CA");
    files.write(second.leaf());
    tls.reload().unwrap();

    assert_eq!(hello(&second.reqwest(), &server).await.unwrap(), "hi");
    let refused = hello(&first.reqwest(), &server).await.unwrap_err();
    assert!(
        refused.contains("Certificate") || refused.contains("certificate"),
        "{refused}"
    );
    // Connections opened before the reload go on with the old certificate.
    assert_eq!(
        request(&mut open).await,
        ("HTTP/1.1 200 OK".into(), "hi".into())
    );
    assert_eq!(
        request(&mut open).await,
        ("HTTP/1.1 200 OK".into(), "hi".into())
    );
    assert_eq!(hello(&pooled, &server).await.unwrap(), "hi");

    drop(open);
    server.stop().await;
}

#[tokio::test]
async fn failed_reload_keeps_the_old_certificate() {
    let ca = Ca::new("first CA");
    let files = Files::new(ca.leaf());
    let tls = ServerTls::load(&files.files).unwrap();
    let server = Server::start(tls.clone(), limits()).await;
    let other = Ca::new("second CA");

    // A broken key file.
    std::fs::write(
        &files.files.key,
        "-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let error = tls.reload().unwrap_err();
    assert!(matches!(error, TlsError::BadKey { .. }), "{error:?}");
    assert!(error.to_string().contains("key.pem"), "{error}");
    assert_eq!(hello(&ca.reqwest(), &server).await.unwrap(), "hi");

    // A new certificate with the old key: they do not match.
    let (cert, _) = other.leaf();
    let (_, key) = ca.leaf();
    files.write((cert, key));
    let error = tls.reload().unwrap_err();
    assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error:?}");
    assert_eq!(hello(&ca.reqwest(), &server).await.unwrap(), "hi");
    assert!(hello(&other.reqwest(), &server).await.is_err());

    // Missing files.
    std::fs::remove_file(&files.files.cert).unwrap();
    assert!(matches!(tls.reload(), Err(TlsError::Read { .. })));
    assert_eq!(hello(&ca.reqwest(), &server).await.unwrap(), "hi");

    // Fixed: the reload takes.
    files.write(other.leaf());
    tls.reload().unwrap();
    assert_eq!(hello(&other.reqwest(), &server).await.unwrap(), "hi");

    server.stop().await;
}

#[test]
fn load_errors_name_the_file() {
    let ca = Ca::new("first CA");
    let (cert, key) = ca.leaf();
    let files = Files::new((cert.clone(), key.clone()));
    let dir = files.dir.path();
    let path = |name: &str| dir.join(name);
    let load = |cert: &Path, key: &Path| {
        ServerTls::load(&TlsFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            peer_ca: None,
        })
        .unwrap_err()
    };
    assert!(ServerTls::load(&files.files).is_ok());

    let missing = load(&path("absent.pem"), &files.files.key);
    assert!(
        matches!(
            missing,
            TlsError::Read {
                what: "certificate",
                ..
            }
        ),
        "{missing:?}"
    );
    assert!(missing.to_string().contains("absent.pem"), "{missing}");
    let missing = load(&files.files.cert, &path("absent-key.pem"));
    assert!(
        matches!(missing, TlsError::Read { what: "key", .. }),
        "{missing:?}"
    );
    assert!(missing.to_string().contains("absent-key.pem"), "{missing}");

    // The key where the certificate should be.
    let no_cert = load(&files.files.key, &files.files.key);
    assert!(
        matches!(no_cert, TlsError::NoCertificate { .. }),
        "{no_cert:?}"
    );
    assert!(no_cert.to_string().contains("key.pem"), "{no_cert}");
    std::fs::write(path("empty.pem"), "").unwrap();
    let empty = load(&path("empty.pem"), &files.files.key);
    assert!(matches!(empty, TlsError::NoCertificate { .. }), "{empty:?}");
    assert!(empty.to_string().contains("empty.pem"), "{empty}");

    // The certificate where the key should be.
    let no_key = load(&files.files.cert, &files.files.cert);
    assert!(matches!(no_key, TlsError::NoKey { .. }), "{no_key:?}");
    assert!(no_key.to_string().contains("cert.pem"), "{no_key}");

    // Another certificate's key.
    let (_, other_key) = ca.leaf();
    std::fs::write(path("other-key.pem"), &other_key).unwrap();
    let mismatch = load(&files.files.cert, &path("other-key.pem"));
    assert!(
        matches!(mismatch, TlsError::KeyMismatch { .. }),
        "{mismatch:?}"
    );
    let message = mismatch.to_string();
    assert!(
        message.contains("other-key.pem") && message.contains("cert.pem"),
        "{message}"
    );

    // Key material never shows in a message.
    let body: String = other_key.lines().nth(1).unwrap().chars().take(16).collect();
    std::fs::write(path("bad-key.pem"), other_key.replace(&body, "!!!!")).unwrap();
    let bad = load(&files.files.cert, &path("bad-key.pem"));
    assert!(matches!(bad, TlsError::BadKey { .. }), "{bad:?}");
    let message = format!("{bad} {bad:?}");
    assert!(message.contains("bad-key.pem"), "{message}");
    for line in other_key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!message.contains(&line[..line.len().min(12)]), "{message}");
    }
}

#[tokio::test]
async fn plaintext_clients_are_refused_and_tls_goes_on() {
    let ca = Ca::new("first CA");
    let files = Files::new(ca.leaf());
    let server = Server::start(ServerTls::load(&files.files).unwrap(), limits()).await;

    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut plain).await;
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    assert!(!answer.windows(2).any(|w| w == b"hi"), "{answer:?}");

    assert_eq!(hello(&ca.reqwest(), &server).await.unwrap(), "hi");
    server.await_counter("http_tls_handshake_failures", 1).await;
    server.stop().await;
}

#[tokio::test]
async fn silent_clients_are_closed_after_the_header_timeout() {
    let ca = Ca::new("first CA");
    let files = Files::new(ca.leaf());
    let timeout = Duration::from_millis(500);
    let limits = ListenerConfig {
        header_read_timeout: timeout,
        ..limits()
    };
    let server = Server::start(ServerTls::load(&files.files).unwrap(), limits).await;

    // No handshake at all.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let (answer, took) = read_until_closed(&mut silent).await;
    assert!(answer.is_empty(), "{answer:?}");
    assert!(took >= timeout - Duration::from_millis(100), "{took:?}");
    server.await_counter("http_tls_handshake_failures", 1).await;

    // A handshake, then half a request head: 408 over TLS, then closed.
    let mut partial = connect(&ca, &server).await;
    partial.write_all(b"GET /hello HTTP/1.1\r\n").await.unwrap();
    partial.flush().await.unwrap();
    let (answer, _) = read_until_closed(&mut partial).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    server.await_counter("http_header_timeouts", 1).await;

    // Still serving.
    assert_eq!(hello(&ca.reqwest(), &server).await.unwrap(), "hi");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_abandons_handshakes_in_progress() {
    let ca = Ca::new("first CA");
    let files = Files::new(ca.leaf());
    let limits = ListenerConfig {
        header_read_timeout: Duration::from_secs(3600),
        ..limits()
    };
    let server = Server::start(ServerTls::load(&files.files).unwrap(), limits).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    // The connection is accepted (and its handshake started) before the listener stops.
    assert_eq!(hello(&ca.reqwest(), &server).await.unwrap(), "hi");
    server.stop().await;
    let (answer, _) = read_until_closed(&mut silent).await;
    assert!(answer.is_empty(), "{answer:?}");
}
