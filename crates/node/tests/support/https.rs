//! HTTPS for the client listener in tests: a throwaway CA and a certificate for 127.0.0.1,
//! as an operator's internal CA would issue, and a client trusting only that CA.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// The files of a test CA and one server certificate.
pub struct TestCa {
    /// The CA certificate (what clients trust: `SSL_CERT_FILE`).
    pub ca: PathBuf,
    /// The server certificate for 127.0.0.1 and localhost.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
}

impl TestCa {
    /// Writes a CA and a server certificate under `dir`.
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "goproxy-ha test HTTPS CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_pem = params.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(params, ca_key);
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let this = Self {
            ca: dir.join("https-ca.pem"),
            cert: dir.join("https.pem"),
            key: dir.join("https.key"),
        };
        std::fs::write(&this.ca, ca_pem).unwrap();
        std::fs::write(&this.cert, leaf.pem()).unwrap();
        std::fs::write(&this.key, key.serialize_pem()).unwrap();
        this
    }

    /// The `[http.tls]` section serving this certificate (members verify each other with
    /// the CA when forwarding).
    pub fn config(&self) -> String {
        format!(
            "[http.tls]\ncert_file = {:?}\nkey_file = {:?}\nca_file = {:?}\n",
            self.cert, self.key, self.ca
        )
    }

    /// A client trusting only this CA.
    pub fn client(&self) -> reqwest::Client {
        let pem = std::fs::read(&self.ca).unwrap();
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .https_only(true)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap()
    }
}

/// `http://host:port` as `https://host:port`.
pub fn https(url: &str) -> String {
    url.replacen("http://", "https://", 1)
}
