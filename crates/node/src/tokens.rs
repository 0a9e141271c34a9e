//! The front end's [`TokenSource`] over the replicated state: the tokens this node has
//! applied, compiled once per change (the state machine records the log index of the last
//! token change, one small read per request), and the members' addresses.
//!
//! A token revoked through any node stops working here as soon as this node applies the
//! entry: the next request sees the new index and recompiles. The member key (what members
//! show each other on the client port) is derived from the replicated members' secret.

use std::sync::{Arc, OnceLock, RwLock};

use sha2::{Digest, Sha256};

use goproxy_access::{Grant, Grants};
use goproxy_consensus::Consensus;
use goproxy_http::access::TokenSource;

/// Tokens and members from the consensus member of this node.
pub struct ReplicatedTokens {
    consensus: Consensus,
    /// Raft's metrics: while nothing new is applied the compiled grants are current, without
    /// even a read of the store.
    metrics: tokio::sync::watch::Receiver<goproxy_consensus::RaftMetrics>,
    /// The last applied index the compiled grants were checked at.
    checked_at: std::sync::atomic::AtomicU64,
    /// The compiled grants and the token-change index they were compiled at.
    compiled: RwLock<(u64, Arc<Grants>)>,
    /// The member key, once the cluster has its secret (it never changes).
    member_key: OnceLock<Arc<str>>,
}

/// What the member key is derived for (with the secret).
const MEMBER_KEY_CONTEXT: &[u8] = b"goproxy-ha member key v1\n";

impl ReplicatedTokens {
    /// Reads tokens from `consensus`'s applied state.
    pub fn new(consensus: Consensus) -> Self {
        Self {
            metrics: consensus.metrics(),
            checked_at: std::sync::atomic::AtomicU64::new(u64::MAX),
            consensus,
            compiled: RwLock::new((u64::MAX, Arc::new(Grants::default()))),
            member_key: OnceLock::new(),
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
        use std::sync::atomic::Ordering;
        let applied = self.metrics.borrow().last_applied.map_or(0, |id| id.index);
        if self.checked_at.load(Ordering::Acquire) == applied {
            let compiled = self.compiled.read().unwrap_or_else(|p| p.into_inner());
            return compiled.1.clone();
        }
        let grants = self.grants_from_store();
        self.checked_at.store(applied, Ordering::Release);
        grants
    }

    fn member_key(&self) -> Option<Arc<str>> {
        if let Some(key) = self.member_key.get() {
            return Some(key.clone());
        }
        let secret = self.consensus.reader().member_secret().ok()??;
        // The secret never travels: members show a key derived from it.
        let mut hasher = Sha256::new();
        hasher.update(MEMBER_KEY_CONTEXT);
        hasher.update(secret.as_bytes());
        let key: Arc<str> = hex::encode(hasher.finalize()).into();
        Some(self.member_key.get_or_init(|| key).clone())
    }
}

impl ReplicatedTokens {
    /// The grants as the store holds them, recompiled when a token changed. Fails closed: an
    /// unreadable store authenticates nobody.
    fn grants_from_store(&self) -> Arc<Grants> {
        let reader = self.consensus.reader();
        let at = match reader.tokens_at() {
            Ok(at) => at,
            Err(e) => {
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
}
