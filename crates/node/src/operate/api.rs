//! The operators' HTTP endpoints on the client port:
//!
//! - `POST /admin/warm` submits a prefetch job (JSON: one of `go_mod`, `go_sum`, `list` or
//!   `targets`, and `no_deps`, `pin`, `description`); `GET /admin/warm` lists jobs,
//!   `GET /admin/warm/{id}` shows one, `POST /admin/warm/{id}/cancel` and `.../unpin` act on
//!   it. They need a `warm` or `admin` token unless anonymous clients may do everything
//!   (`anonymous = "allow"`). A follower checks the client's credentials and relays the
//!   request to the leader as a member, naming the client for the admin trail.
//! - `GET /cluster/access-times`: this node's access times, for members only (eviction).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use goproxy_access::Action;
use goproxy_consensus::ops::{
    SourceKind, SourcePart, WarmJob, WarmSpec, MAX_SOURCE_PARTS, SOURCE_PART_BYTES,
};
use goproxy_consensus::{AdminAction, ConsensusError, IndexCommand};
use goproxy_http::error::ApiError;
use goproxy_http::listener::ClientAddr;

use super::OpsState;

/// Where members read each other's access times.
pub const ACCESS_TIMES_PATH: &str = "/cluster/access-times";
/// Largest job input (a go.mod, go.sum or list): replicated in the log as submitted, in
/// parts of at most 4 KiB.
pub const MAX_SOURCE_BYTES: usize = MAX_SOURCE_PARTS as usize * SOURCE_PART_BYTES;
/// Largest request body: the input JSON-escaped (a newline takes two bytes) and the rest.
const MAX_BODY_BYTES: usize = 2 * MAX_SOURCE_BYTES + 4096;
/// Longest description.
const MAX_DESCRIPTION: usize = 200;

/// The routes, to merge into the node's router.
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/admin/warm", post(submit).get(list))
        .route("/admin/warm/{id}", get(show))
        .route("/admin/warm/{id}/cancel", post(cancel))
        .route("/admin/warm/{id}/unpin", post(unpin))
        .route(ACCESS_TIMES_PATH, get(access_times))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// A job submission.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submit {
    /// A go.mod's text: its whole requirement graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub go_mod: Option<String>,
    /// A go.sum's text: exactly what it lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub go_sum: Option<String>,
    /// `MODULE@VERSION` lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    /// `MODULE@VERSION` values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Only the named versions, not their requirements.
    #[serde(default)]
    pub no_deps: bool,
    /// Never evict what the job fetched.
    #[serde(default)]
    pub pin: bool,
    /// Shown in status and on the dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The answer to a submission.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Submitted {
    /// The job's id.
    pub id: String,
}

impl Submit {
    /// The job this asks for, checked (every input is parsed as the runner will), and its
    /// input's text.
    pub fn spec(self, id: String) -> Result<(WarmSpec, String), String> {
        let sources = usize::from(self.go_mod.is_some())
            + usize::from(self.go_sum.is_some())
            + usize::from(self.list.is_some())
            + usize::from(!self.targets.is_empty());
        if sources != 1 {
            return Err("give exactly one of go_mod, go_sum, list or targets".into());
        }
        let (kind, text, described) = if let Some(text) = self.go_mod {
            bounded(&text)?;
            let go_mod = goproxy_warm::spec::parse_go_mod(&text).map_err(|e| e.to_string())?;
            let described = match &go_mod.module {
                Some(module) => format!("go.mod of {module}"),
                None => "go.mod".into(),
            };
            (SourceKind::GoMod, text, described)
        } else if let Some(text) = self.go_sum {
            bounded(&text)?;
            let lines = goproxy_warm::spec::parse_go_sum(&text).map_err(|e| e.to_string())?;
            let described = format!("go.sum ({} lines)", lines.len());
            (SourceKind::GoSum, text, described)
        } else if let Some(text) = self.list {
            bounded(&text)?;
            let targets = goproxy_warm::spec::parse_list(&text).map_err(|e| e.to_string())?;
            let described = format!("list of {}", targets.len());
            (SourceKind::List, text, described)
        } else {
            for target in &self.targets {
                goproxy_warm::Target::parse(target).map_err(|e| e.to_string())?;
            }
            let text = self.targets.join("\n");
            bounded(&text)?;
            (SourceKind::List, text, self.targets.join(" "))
        };
        let description = self.description.unwrap_or(described);
        let description: String = description.chars().take(MAX_DESCRIPTION).collect();
        if description.chars().any(char::is_control) {
            return Err("description: no control characters".into());
        }
        let parts = u32::try_from(split(&text).len()).unwrap_or(u32::MAX);
        Ok((
            WarmSpec {
                id,
                kind,
                parts,
                no_deps: self.no_deps,
                pin: self.pin,
                description,
            },
            text,
        ))
    }
}

/// `text` in parts of at most [`SOURCE_PART_BYTES`] bytes once JSON-escaped in a log entry
/// (a newline is two bytes there, another control character six), cut at character
/// boundaries; an empty text is one empty part.
pub fn split(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (at, c) in text.char_indices() {
        let size = match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        };
        if used + size > SOURCE_PART_BYTES {
            parts.push(&text[start..at]);
            start = at;
            used = 0;
        }
        used += size;
    }
    parts.push(&text[start..]);
    parts
}

/// Refuses what a browser sends on another site's behalf (a form posted cross-site to an
/// operator's logged-in origin): the body must be declared JSON, which a form cannot do
/// without a CORS preflight this server never grants, and `Sec-Fetch-Site` must not say
/// cross-site.
fn not_cross_site(headers: &HeaderMap) -> Result<(), ApiError> {
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::BadRequest(
            "send the request as Content-Type: application/json".into(),
        ));
    }
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(site, Some("cross-site" | "same-site")) {
        return Err(ApiError::Forbidden(
            "operators' requests are not taken from other sites' pages".into(),
        ));
    }
    Ok(())
}

fn bounded(text: &str) -> Result<(), String> {
    if text.len() > MAX_SOURCE_BYTES || split(text).len() > MAX_SOURCE_PARTS as usize {
        return Err(format!(
            "input of {} bytes: at most {MAX_SOURCE_BYTES} (less when it has many line breaks \
             or control characters, which take more room in the log)",
            text.len()
        ));
    }
    Ok(())
}

/// A new job id: `w` and 8 hex digits from the OS's random source.
fn new_id() -> String {
    let mut bytes = [0u8; 4];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    format!("w{}", hex::encode(bytes))
}

async fn submit(
    State(state): State<OpsState>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
    body: Bytes,
) -> Response {
    if let Err(refused) = not_cross_site(&headers) {
        return refused.into_response();
    }
    let actor = match state
        .frontend
        .admit_action(&headers, client.map(|c| c.0 .0), Action::Warm)
    {
        Ok(actor) => actor,
        Err(refused) => return refused.into_response(),
    };
    let request: Submit = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return ApiError::BadRequest(format!("the job: {e}")).into_response(),
    };
    let (spec, text) = match request.spec(new_id()) {
        Ok(spec) => spec,
        Err(e) => return ApiError::BadRequest(e).into_response(),
    };
    let id = spec.id.clone();
    match commit(&state, &actor, AdminAction::WarmSubmit(spec)).await {
        Committed::Done => {}
        Committed::Answer(response) => return response,
        Committed::Forward(leader) => {
            return relay(&state, &leader, Method::POST, "/admin/warm", &actor, body).await
        }
    }
    // The input follows in parts; the last one queues the job. A leader that stops halfway
    // leaves a job the next leader fails (receiving for too long).
    for (part, chunk) in split(&text).into_iter().enumerate() {
        let part = SourcePart {
            id: id.clone(),
            part: u32::try_from(part).unwrap_or(u32::MAX),
            text: chunk.to_string(),
        };
        if let Err(e) = state
            .consensus
            .operate(IndexCommand::WarmSource(part))
            .await
        {
            return ApiError::ServiceUnavailable(format!("job {id}: committing its input: {e}"))
                .into_response();
        }
    }
    (StatusCode::ACCEPTED, Json(Submitted { id })).into_response()
}

async fn cancel(
    State(state): State<OpsState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
) -> Response {
    act(state, id, headers, client, "cancel").await
}

async fn unpin(
    State(state): State<OpsState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
) -> Response {
    act(state, id, headers, client, "unpin").await
}

async fn act(
    state: OpsState,
    id: String,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
    what: &str,
) -> Response {
    if let Err(refused) = not_cross_site(&headers) {
        return refused.into_response();
    }
    let client = client.map(|c| c.0 .0);
    let actor = match state.frontend.admit_action(&headers, client, Action::Warm) {
        Ok(actor) => actor,
        Err(refused) => return refused.into_response(),
    };
    if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return ApiError::BadRequest("job ids are letters, digits and dashes".into())
            .into_response();
    }
    // Another submitter's job needs an admin (checked where the client connected: a
    // relayed request is the member's word).
    if !state.frontend.is_member(&headers) {
        let owner = state
            .consensus
            .reader()
            .warm_job(&id)
            .ok()
            .flatten()
            .map(|job| job.submitted_by);
        if owner.is_some_and(|owner| owner != actor) {
            if let Err(refused) = state.frontend.admit_action(&headers, client, Action::Admin) {
                return refused.into_response();
            }
        }
    }
    let action = match what {
        "cancel" => AdminAction::WarmCancel { id: id.clone() },
        _ => AdminAction::WarmUnpin { id: id.clone() },
    };
    match commit(&state, &actor, action).await {
        Committed::Done => Json(Submitted { id }).into_response(),
        Committed::Answer(response) => response,
        Committed::Forward(leader) => {
            let path = format!("/admin/warm/{id}/{what}");
            relay(&state, &leader, Method::POST, &path, &actor, Bytes::new()).await
        }
    }
}

enum Committed {
    Done,
    Answer(Response),
    Forward(String),
}

async fn commit(state: &OpsState, actor: &str, action: AdminAction) -> Committed {
    match state.consensus.admin(actor.to_string(), action).await {
        Ok(Ok(_)) => Committed::Done,
        Ok(Err(reason)) => Committed::Answer(ApiError::Refused(reason).into_response()),
        Err(ConsensusError::NotLeader { .. }) => match state.consensus.leader() {
            Some((_, leader)) => Committed::Forward(leader.http_addr),
            None => Committed::Answer(
                ApiError::ServiceUnavailable("the cluster has no leader right now; retry".into())
                    .into_response(),
            ),
        },
        Err(e) => Committed::Answer(ApiError::ServiceUnavailable(e.to_string()).into_response()),
    }
}

async fn relay(
    state: &OpsState,
    leader: &str,
    method: Method,
    path: &str,
    actor: &str,
    body: Bytes,
) -> Response {
    match state
        .frontend
        .member_send(leader, method, path, actor, body)
        .await
    {
        Ok((status, body)) => {
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(e) => {
            ApiError::ServiceUnavailable(format!("relaying to the leader: {e}")).into_response()
        }
    }
}

async fn list(
    State(state): State<OpsState>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
) -> Response {
    if let Err(refused) =
        state
            .frontend
            .admit_action(&headers, client.map(|c| c.0 .0), Action::Warm)
    {
        return refused.into_response();
    }
    match state.consensus.reader().warm_jobs() {
        Ok(mut jobs) => {
            jobs.sort_by_key(|job| std::cmp::Reverse(job.submitted_at_ms));
            Json(jobs).into_response()
        }
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

async fn show(
    State(state): State<OpsState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
) -> Response {
    if let Err(refused) =
        state
            .frontend
            .admit_action(&headers, client.map(|c| c.0 .0), Action::Warm)
    {
        return refused.into_response();
    }
    match state.consensus.reader().warm_job(&id) {
        Ok(Some(job)) => Json::<WarmJob>(job).into_response(),
        Ok(None) => ApiError::NotFound {
            reason: format!("no job {id:?}"),
            max_age: std::time::Duration::ZERO,
        }
        .into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

async fn access_times(State(state): State<OpsState>, headers: HeaderMap) -> Response {
    if !state.frontend.is_member(&headers) {
        return ApiError::Forbidden("members only".into()).into_response();
    }
    Json(state.policy.access.snapshot()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_fit_a_log_entry_once_escaped() {
        for text in [
            "\n".repeat(20_000),
            "é".repeat(10_000),
            "a\"\\\u{1}b".repeat(3_000),
            String::new(),
        ] {
            let parts = split(&text);
            assert_eq!(parts.concat(), text);
            for part in &parts {
                let escaped = serde_json::to_string(part).unwrap().len() - 2;
                assert!(escaped <= SOURCE_PART_BYTES, "{escaped}");
                assert!(part.len() <= SOURCE_PART_BYTES);
            }
        }
        assert_eq!(split("").len(), 1);
    }

    #[test]
    fn a_job_needs_exactly_one_input_and_a_clean_description() {
        let both = Submit {
            go_mod: Some("module x\n".into()),
            targets: vec!["example.com/hello@v1.0.0".into()],
            ..Submit::default()
        };
        assert!(both.spec("w1".into()).is_err());
        let bad = Submit {
            targets: vec!["example.com/hello@latest".into()],
            ..Submit::default()
        };
        assert!(bad.spec("w1".into()).unwrap_err().contains("latest"));
        let control = Submit {
            targets: vec!["example.com/hello@v1.0.0".into()],
            description: Some("a\u{1b}[2J".into()),
            ..Submit::default()
        };
        assert!(control.spec("w1".into()).is_err());
        let large = Submit {
            go_mod: Some(format!("module x\n// {}\n", "a".repeat(MAX_SOURCE_BYTES))),
            ..Submit::default()
        };
        assert!(large.spec("w1".into()).unwrap_err().contains("at most"));
    }
}
