//! The front end's `direct` entries answered by the version control fetcher
//! (`goproxy-vcs`): each request becomes one fetcher operation, each failure a reason.

use std::sync::Arc;

use bytes::Bytes;
use goproxy_http::upstream::{DirectBody, DirectError, DirectRequest, DirectSource};
use goproxy_vcs::{Fetcher, VcsError};

/// [`DirectSource`] over a [`Fetcher`].
pub struct Direct(pub Arc<Fetcher>);

#[async_trait::async_trait]
impl DirectSource for Direct {
    async fn fetch(
        &self,
        request: DirectRequest<'_>,
        credentials: Option<&str>,
    ) -> Result<DirectBody, DirectError> {
        let fetcher = &self.0;
        let answer = match request {
            DirectRequest::List { module } => fetcher
                .list(module, credentials)
                .await
                .map(|versions| lines(&versions)),
            DirectRequest::Latest { module } => fetcher
                .query(module, "latest", credentials)
                .await
                .map(|info| DirectBody::Bytes(info.to_json())),
            DirectRequest::Query { module, query } => fetcher
                .query(module, query, credentials)
                .await
                .map(|info| DirectBody::Bytes(info.to_json())),
            DirectRequest::Info { module, version } => fetcher
                .facts(module, version, credentials)
                .await
                .map(|facts| DirectBody::Bytes(facts.0.to_json())),
            DirectRequest::Mod { module, version } => fetcher
                .facts(module, version, credentials)
                .await
                .map(|facts| DirectBody::Bytes(facts.1.clone())),
            DirectRequest::Zip { module, version } => fetcher
                .zip(module, version, credentials)
                .await
                .map(DirectBody::File),
        };
        answer.map_err(|e| match e {
            VcsError::NotFound(m) => DirectError::NotFound(m),
            other => DirectError::Failed(other.to_string()),
        })
    }

    fn readiness(&self) -> Result<(), String> {
        self.0.readiness()
    }
}

fn lines(versions: &[String]) -> DirectBody {
    let mut text = versions.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    DirectBody::Bytes(Bytes::from(text))
}

/// Directory under `data_dir` holding the fetcher's workspaces.
pub const VCS_DIR: &str = "vcs";

/// The fetcher for a configuration whose routes fetch `direct` (none otherwise). A node
/// without a usable go or git still starts: it says why at start and in `/readyz`.
pub async fn start(
    config: &crate::config::Config,
    routes: &goproxy_routing::RouteTable,
) -> anyhow::Result<Option<Arc<dyn DirectSource>>> {
    if !routes.uses_direct() {
        return Ok(None);
    }
    let fetcher = Fetcher::new(
        config.vcs.clone(),
        &config.credentials,
        &config.data_dir.join(VCS_DIR),
    )
    .map_err(|problems| anyhow::anyhow!("direct routes: {}", problems.join("; ")))?;
    match fetcher.probe().await {
        Ok(()) => tracing::info!(
            "direct routes fetch from version control with {}",
            config.vcs.go.display()
        ),
        Err(reason) => tracing::error!(%reason, "direct routes cannot fetch; /readyz says so"),
    }
    Ok(Some(Arc::new(Direct(Arc::new(fetcher)))))
}
