//! The cluster CA: made once (`goproxy-ha certs init`), then used to issue one certificate per
//! node and per operator (`goproxy-ha certs issue`). Keys are ECDSA P-256, made here with
//! rcgen; nothing leaves this machine.

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

use crate::error::PkiError;
use crate::identity::{node_server_name, Identity, CLUSTER_SERVER_NAME};

/// Certificates start this long before they are made, so a peer whose clock is a little
/// behind does not refuse a fresh one.
const BACKDATE: Duration = Duration::from_secs(3600);

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8). Write it with mode 0600.
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// A certificate authority able to sign.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

fn validity(params: &mut CertificateParams, valid_for: Duration) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + valid_for;
}

impl Authority {
    /// A new self-signed CA named `name`, valid for `valid_for`.
    pub fn generate(name: &str, valid_for: Duration) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "goproxy-ha");
        params.distinguished_name = dn;
        // Signs leaf certificates only: no intermediate CA can be made under it.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, valid_for);
        let cert = params.self_signed(&key)?;
        let cert_pem = cert.pem();
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert_pem,
        })
    }

    /// Loads a CA from its certificate and private key (PEM).
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(Self {
            issuer,
            cert_pem: cert_pem.to_string(),
        })
    }

    /// The CA certificate (what every node and CLI trusts).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key. Keep it off the nodes.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// A certificate naming `identity`, valid for `valid_for`. Node certificates serve and
    /// dial (server and client auth, with the DNS names peers verify); admin certificates
    /// can only dial.
    pub fn issue(&self, identity: &Identity, valid_for: Duration) -> Result<Issued, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, identity.label());
        dn.push(DnType::OrganizationName, "goproxy-ha");
        params.distinguished_name = dn;
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.subject_alt_names = vec![SanType::URI(identity.urn().try_into()?)];
        match identity {
            Identity::Node(id) => {
                params.extended_key_usages = vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ];
                for name in [node_server_name(*id), CLUSTER_SERVER_NAME.to_string()] {
                    params
                        .subject_alt_names
                        .push(SanType::DnsName(name.try_into()?));
                }
            }
            Identity::Admin(_) => {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
        }
        validity(&mut params, valid_for);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::identity_of;

    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

    fn der(pem: &str) -> Vec<u8> {
        let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        parsed.contents
    }

    #[test]
    fn issued_certificates_name_their_identity_and_chain_to_a_reloaded_ca() {
        let ca = Authority::generate("test cluster", YEAR).unwrap();
        let reloaded = Authority::load(ca.cert_pem(), &ca.key_pem()).unwrap();
        for identity in [Identity::Node(7), Identity::Admin("alice".into())] {
            let issued = reloaded.issue(&identity, YEAR).unwrap();
            assert_eq!(identity_of(&der(&issued.cert_pem)).unwrap(), identity);
            let leaf_der = der(&issued.cert_pem);
            let (_, leaf) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
            let ca_der = der(ca.cert_pem());
            let (_, root) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
            assert_eq!(leaf.issuer(), root.subject());
            let eku = leaf.extended_key_usage().unwrap().unwrap().value;
            assert!(eku.client_auth);
            assert_eq!(eku.server_auth, matches!(identity, Identity::Node(_)));
            assert!(!format!("{issued:?}").contains("PRIVATE KEY"));
        }
    }

    #[test]
    fn a_certificate_without_an_identity_is_refused() {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["example.com".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert!(matches!(identity_of(cert.der()), Err(PkiError::NoIdentity)));
        assert!(matches!(
            identity_of(b"not a certificate"),
            Err(PkiError::Unreadable(_))
        ));
    }
}
