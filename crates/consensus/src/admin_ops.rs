//! The cache-operating calls of the admin service: purge, block, unblock, list blocks. Each
//! is checked here (a clear refusal before anything enters the log), committed on the leader
//! (followers redirect), and recorded in the admin trail with its outcome.

use tonic::Status;

use crate::ops::VersionRef;
use crate::types::AdminAction;
use crate::wire::admin;

/// The purge a request asks for, checked.
pub(crate) fn purge_of(request: admin::PurgeRequest) -> Result<AdminAction, Status> {
    goproxy_protocol::version::check_version(&request.module, &request.version)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok(AdminAction::Purge(VersionRef {
        module: request.module,
        version: request.version,
    }))
}

/// The block a request asks for, checked and in its canonical form.
pub(crate) fn block_of(request: admin::BlockRequest) -> Result<AdminAction, Status> {
    let rule = goproxy_cachepolicy::block::BlockRule::parse(&request.rule, &request.reason)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok(AdminAction::Block {
        rule: rule.to_string(),
        reason: rule.reason.clone(),
    })
}

/// The unblock a request asks for, in the rule's canonical form.
pub(crate) fn unblock_of(request: admin::UnblockRequest) -> Result<AdminAction, Status> {
    let rule = goproxy_cachepolicy::block::BlockRule::parse(&request.rule, "unblock")
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok(AdminAction::Unblock {
        rule: rule.to_string(),
    })
}

impl From<crate::ops::BlockRecord> for admin::BlockInfo {
    fn from(block: crate::ops::BlockRecord) -> Self {
        Self {
            rule: block.rule,
            reason: block.reason,
            by: block.by,
            at_ms: block.at_ms,
        }
    }
}
