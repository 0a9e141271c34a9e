//! Identities on the node-to-node port, and how certificates carry them.
//!
//! A certificate names its identity in a URI subject-alternative name:
//! `urn:goproxy-ha:node:<id>` for a cluster member, `urn:goproxy-ha:admin:<name>` for an
//! operator (the `cluster` commands, the drill). Node certificates also carry two DNS names a
//! client verifies the server against: [`node_server_name`] (a peer that knows whom it dials)
//! and [`CLUSTER_SERVER_NAME`] (the CLI, which dials "any member" by address).

use std::fmt;

use x509_parser::extensions::GeneralName;

use crate::error::PkiError;

/// Prefix of every identity URI.
const URN_PREFIX: &str = "urn:goproxy-ha:";
/// The DNS name every node certificate carries, for clients that dial any member.
pub const CLUSTER_SERVER_NAME: &str = "cluster.goproxy-ha.internal";
/// Longest admin name.
const MAX_ADMIN_NAME: usize = 64;

/// Who a verified peer certificate says the peer is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// Cluster member `id`: may speak Raft and blob replication as that id only.
    Node(u64),
    /// An operator: may change membership and transfer leadership.
    Admin(String),
}

impl Identity {
    /// The URI this identity is written as in a certificate.
    pub fn urn(&self) -> String {
        match self {
            Identity::Node(id) => format!("{URN_PREFIX}node:{id}"),
            Identity::Admin(name) => format!("{URN_PREFIX}admin:{name}"),
        }
    }

    /// Parses a `urn:goproxy-ha:…` URI; `Ok(None)` for any other URI.
    pub fn from_urn(uri: &str) -> Result<Option<Identity>, PkiError> {
        let Some(rest) = uri.strip_prefix(URN_PREFIX) else {
            return Ok(None);
        };
        let bad = || PkiError::BadIdentity(uri.to_string());
        match rest.split_once(':') {
            // Canonical decimal only: `node:03` or `node:+3` would be a second spelling.
            Some(("node", id))
                if id.bytes().all(|b| b.is_ascii_digit()) && !id.starts_with('0') =>
            {
                id.parse::<u64>()
                    .map(|id| Some(Identity::Node(id)))
                    .map_err(|_| bad())
            }
            Some(("admin", name)) if valid_admin_name(name) => {
                Ok(Some(Identity::Admin(name.to_string())))
            }
            _ => Err(bad()),
        }
    }

    /// A short file-name-safe label: `node-3`, `admin-alice`.
    pub fn label(&self) -> String {
        match self {
            Identity::Node(id) => format!("node-{id}"),
            Identity::Admin(name) => format!("admin-{name}"),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Node(id) => write!(f, "node {id}"),
            Identity::Admin(name) => write!(f, "admin {name:?}"),
        }
    }
}

/// Whether `name` may be an admin name: 1–64 of `a-z 0-9 . _ -`.
pub fn valid_admin_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ADMIN_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// The DNS name node `id`'s certificate carries, which a peer dialing it verifies.
pub fn node_server_name(id: u64) -> String {
    format!("node-{id}.goproxy-ha.internal")
}

/// The identity a DER certificate names. The certificate's chain, validity and key usage are
/// the TLS layer's to verify; this only reads the name.
pub fn identity_of(der: &[u8]) -> Result<Identity, PkiError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| PkiError::Unreadable(e.to_string()))?;
    let names = cert
        .subject_alternative_name()
        .map_err(|e| PkiError::Unreadable(e.to_string()))?;
    let mut found: Option<Identity> = None;
    for name in names.iter().flat_map(|ext| ext.value.general_names.iter()) {
        let GeneralName::URI(uri) = name else {
            continue;
        };
        if let Some(identity) = Identity::from_urn(uri)? {
            if let Some(first) = &found {
                return Err(PkiError::Ambiguous(first.urn(), identity.urn()));
            }
            found = Some(identity);
        }
    }
    found.ok_or(PkiError::NoIdentity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urns_round_trip_and_malformed_ones_are_refused() {
        for identity in [Identity::Node(3), Identity::Admin("ops-1.a_b".into())] {
            assert_eq!(Identity::from_urn(&identity.urn()).unwrap(), Some(identity));
        }
        assert_eq!(Identity::from_urn("spiffe://x/y").unwrap(), None);
        for bad in [
            "urn:goproxy-ha:node:0",
            "urn:goproxy-ha:node:03",
            "urn:goproxy-ha:node:+3",
            "urn:goproxy-ha:node:",
            "urn:goproxy-ha:node:18446744073709551616",
            "urn:goproxy-ha:admin:",
            "urn:goproxy-ha:admin:Alice",
            "urn:goproxy-ha:admin:a/b",
            "urn:goproxy-ha:root:1",
            "urn:goproxy-ha:",
        ] {
            assert!(Identity::from_urn(bad).is_err(), "{bad} accepted");
        }
        assert!(!valid_admin_name(&"a".repeat(65)));
    }
}
