//! Who sent a request: the identity in the client certificate the TLS layer verified.

use goproxy_pki::{identity_of, Identity};
use tonic::{Request, Status};

/// The sender of one node-to-node request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The listener runs without TLS (`cluster.insecure_plaintext`): nobody is authenticated,
    /// and every call is allowed as before. Never produced on a TLS listener.
    Insecure,
    /// A verified certificate of the cluster CA naming this identity.
    Verified(Identity),
}

impl Caller {
    /// Reads the caller of `request`. On a TLS listener every connection presented a client
    /// certificate of the cluster CA (the handshake refuses any other), so a missing or
    /// unreadable identity is refused here.
    pub fn of<T>(request: &Request<T>) -> Result<Caller, Status> {
        let Some(certs) = request.peer_certs() else {
            return Ok(Caller::Insecure);
        };
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        identity_of(leaf.as_ref())
            .map(Caller::Verified)
            .map_err(|e| Status::unauthenticated(format!("client certificate: {e}")))
    }

    /// `Ok` when the caller is node `id` (or the cluster is insecure); the refusal names who
    /// called and as whom it tried to speak.
    pub fn require_node(&self, id: u64, what: &str) -> Result<(), Status> {
        match self {
            Caller::Insecure => Ok(()),
            Caller::Verified(Identity::Node(caller)) if *caller == id => Ok(()),
            Caller::Verified(identity) => Err(Status::permission_denied(format!(
                "{identity} may not {what} as node {id}"
            ))),
        }
    }

    /// `Ok` for any cluster member (or an insecure cluster): the node id it proved.
    pub fn require_any_node(&self, what: &str) -> Result<Option<u64>, Status> {
        match self {
            Caller::Insecure => Ok(None),
            Caller::Verified(Identity::Node(id)) => Ok(Some(*id)),
            Caller::Verified(identity) => Err(Status::permission_denied(format!(
                "{identity} may not {what}: a node certificate is required"
            ))),
        }
    }

    /// `Ok` for an operator (or an insecure cluster).
    pub fn require_admin(&self, what: &str) -> Result<(), Status> {
        match self {
            Caller::Insecure | Caller::Verified(Identity::Admin(_)) => Ok(()),
            Caller::Verified(identity) => Err(Status::permission_denied(format!(
                "{identity} may not {what}: an admin certificate is required (goproxy-ha certs issue --admin NAME)"
            ))),
        }
    }
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Insecure => f.write_str("an unauthenticated peer (insecure_plaintext)"),
            Caller::Verified(identity) => identity.fmt(f),
        }
    }
}
