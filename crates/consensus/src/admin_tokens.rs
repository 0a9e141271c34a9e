//! The token and trail calls of the admin service: creating and revoking client tokens, and
//! recording every operator action in the replicated admin trail.
//!
//! A token's secret is made here, on the leader, from the operating system's random source;
//! only its hash enters the log, and the secret goes back once, over the operator's mutual
//! TLS connection.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use goproxy_access::{Grant, Grants, Role};
use goproxy_rpc::Caller;
use tonic::Status;

use crate::error::ConsensusError;
use crate::types::{AdminAction, AdminEvent, AdminRecord, IndexCommand, NodeId, Raft};
use crate::wire::admin;

/// Shortest lifetime a token may be given (anything shorter is a typo, not a token).
const MIN_LIFETIME: Duration = Duration::from_secs(1);
/// Longest lifetime a token may be given (ten years).
const MAX_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Largest entry an operator with an admin certificate may commit (a token's path rules): a
/// few such rare entries fit the Raft message headroom beside a full batch of ordinary ones.
const MAX_ADMIN_ENTRY_BYTES: usize = 16 * 1024;
/// Longest allow or deny pattern list.
const MAX_PATTERNS: usize = 4096;

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How the trail names `caller`.
pub(crate) fn actor(caller: &Caller) -> String {
    match caller {
        Caller::Insecure => "unauthenticated (insecure_plaintext)".into(),
        Caller::Verified(goproxy_pki::Identity::Admin(name)) => name.clone(),
        Caller::Verified(other) => other.to_string(),
    }
}

/// The grant a create request asks for, checked as the state machine will compile it.
pub(crate) fn grant_of(
    request: &admin::CreateTokenRequest,
    hash: goproxy_access::TokenHash,
    now_ms: u64,
) -> Result<Grant, Status> {
    let role = match request.role.as_str() {
        "read" => Role::Read,
        "warm" => Role::Warm,
        "admin" => Role::Admin,
        other => {
            return Err(Status::invalid_argument(format!(
                "role {other:?}: read, warm or admin"
            )))
        }
    };
    let lifetime = Duration::from_millis(request.expires_in_ms);
    if lifetime > MAX_LIFETIME {
        return Err(Status::invalid_argument("expires: at most ten years"));
    }
    if request.expires_in_ms > 0 && lifetime < MIN_LIFETIME {
        return Err(Status::invalid_argument(
            "expires: at least one second (omit it for a token that never expires)",
        ));
    }
    let list = |value: &str| (!value.is_empty()).then(|| value.to_string());
    if request.allow.len() > MAX_PATTERNS || request.deny.len() > MAX_PATTERNS {
        return Err(Status::invalid_argument(format!(
            "allow and deny: at most {MAX_PATTERNS} bytes each"
        )));
    }
    let grant = Grant {
        name: request.name.clone(),
        role,
        allow: list(&request.allow),
        deny: list(&request.deny),
        expires_at_ms: (request.expires_in_ms > 0).then(|| now_ms + request.expires_in_ms),
        hash,
        created_at_ms: now_ms,
    };
    Grants::new(vec![grant.clone()]).map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok(grant)
}

/// Commits `action` by `caller` through node `me`'s Raft: `Ok(Ok(index))` once committed,
/// `Ok(Err(reason))` when the state machine refused it.
pub(crate) async fn commit(
    raft: &Raft,
    me: NodeId,
    caller: &Caller,
    action: AdminAction,
) -> Result<Result<u64, String>, ConsensusError> {
    let record = AdminRecord {
        at_ms: now_ms(),
        actor: actor(caller),
        node: me,
        action,
    };
    let command = IndexCommand::Admin(record);
    let size = serde_json::to_vec(&command).map_or(usize::MAX, |bytes| bytes.len());
    if size > MAX_ADMIN_ENTRY_BYTES {
        return Err(ConsensusError::EntryTooLarge {
            size,
            limit: MAX_ADMIN_ENTRY_BYTES,
        });
    }
    match raft.client_write(command).await {
        Ok(response) => Ok(match response.data {
            crate::types::ApplyResponse::Refused { reason } => Err(reason),
            _ => Ok(response.log_id.index),
        }),
        Err(e) => Err(crate::node::write_error(e)),
    }
}

/// Records a cluster change the leader made (or failed to make) in the trail. Best effort:
/// the change itself is already decided, and a trail write that fails is logged.
pub(crate) async fn record_cluster(
    raft: &Raft,
    me: NodeId,
    caller: &Caller,
    kind: &str,
    detail: String,
    outcome: String,
) {
    let action = AdminAction::Cluster {
        kind: kind.into(),
        detail,
        outcome,
    };
    if let Err(e) = commit(raft, me, caller, action).await {
        tracing::warn!(kind, "recording an admin action in the trail: {e}");
    }
}

/// What `token list` shows of a grant (never its hash).
pub(crate) fn token_info(grant: &Grant) -> admin::TokenInfo {
    admin::TokenInfo {
        name: grant.name.clone(),
        role: grant.role.to_string(),
        allow: grant.allow.clone().unwrap_or_default(),
        deny: grant.deny.clone().unwrap_or_default(),
        expires_at_ms: grant.expires_at_ms.unwrap_or(0),
        created_at_ms: grant.created_at_ms,
    }
}

impl From<AdminEvent> for admin::AdminEvent {
    fn from(event: AdminEvent) -> Self {
        Self {
            index: event.index,
            at_ms: event.at_ms,
            actor: event.actor,
            node: event.node,
            kind: event.kind,
            detail: event.detail,
            outcome: event.outcome,
        }
    }
}
