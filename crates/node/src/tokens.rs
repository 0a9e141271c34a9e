//! The front end's [`TokenSource`] over the replicated state: the tokens this node has
//! applied, compiled once per change (the state machine records the log index of the last
//! token change, one small read per request), and the members' addresses.
//!
//! A token revoked through any node stops working here as soon as this node applies the
//! entry: the next request sees the new index and recompiles.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use goproxy_access::{Grant, Grants};
use goproxy_consensus::Consensus;
use goproxy_http::access::TokenSource;

/// Tokens and members from the consensus member of this node.
pub struct ReplicatedTokens {
    consensus: Consensus,
    /// The compiled grants and the token-change index they were compiled at.
    compiled: RwLock<(u64, Arc<Grants>)>,
}

impl ReplicatedTokens {
    /// Reads tokens from `consensus`'s applied state.
    pub fn new(consensus: Consensus) -> Self {
        Self {
            consensus,
            compiled: RwLock::new((u64::MAX, Arc::new(Grants::default()))),
        }
    }
}

/// Compiles `grants`, leaving out (and logging) any that do not compile: one bad entry must
/// not lock every client out. The admin service checks each grant before committing it, so
/// this is only a guard.
fn compile(grants: Vec<Grant>) -> Grants {
    let good: Vec<Grant> = grants
        .into_iter()
        .filter(|grant| match Grants::new(vec![grant.clone()]) {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(token = %grant.name, "ignoring a token that does not compile: {e}");
                false
            }
        })
        .collect();
    Grants::new(good).unwrap_or_else(|e| {
        tracing::error!("ignoring every token: {e}");
        Grants::default()
    })
}

impl TokenSource for ReplicatedTokens {
    fn grants(&self) -> Arc<Grants> {
        let reader = self.consensus.reader();
        let at = match reader.tokens_at() {
            Ok(at) => at,
            Err(e) => {
                // Fail closed: without the tokens nobody is authenticated.
                tracing::error!("reading the token index: {e}");
                return Arc::new(Grants::default());
            }
        };
        {
            let compiled = self.compiled.read().unwrap_or_else(|p| p.into_inner());
            if compiled.0 == at {
                return compiled.1.clone();
            }
        }
        let grants = match reader.tokens() {
            Ok(grants) => Arc::new(compile(grants)),
            Err(e) => {
                tracing::error!("reading the tokens: {e}");
                return Arc::new(Grants::default());
            }
        };
        let mut compiled = self.compiled.write().unwrap_or_else(|p| p.into_inner());
        // A slower reader that compiled an older state does not replace a newer one.
        if compiled.0 == u64::MAX || at > compiled.0 {
            *compiled = (at, grants.clone());
        }
        grants
    }

    fn is_member(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.consensus.peers().iter().any(|(_, peer)| {
            peer.http_addr
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|addr| addr.ip().to_canonical() == ip)
        })
    }
}
