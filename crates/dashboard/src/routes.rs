//! The page's static routes. The node crate merges [`routes`] into its router and adds
//! `GET` [`DATA_PATH`] itself, behind whatever access control guards its other admin routes.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// Where the page is served.
pub const UI_PATH: &str = "/ui";
/// Where the page fetches its [`Dashboard`](crate::Dashboard) from (absolute: from `/ui` a
/// relative `data` would resolve to `/data`).
pub const DATA_PATH: &str = "/ui/data";

/// Only the page's own files and its own origin; no inline script or style, no framing.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");

/// `GET /ui` (the page), `GET /ui/app.js`, `GET /ui/app.css`, and `/ui/` redirected to `/ui`.
/// Stateless, so it merges into a router of any state `S`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            UI_PATH,
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route("/ui/", get(|| async { Redirect::permanent(UI_PATH) }))
        .route(
            "/ui/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/ui/app.css",
            get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
        )
}

/// An embedded file. `no-cache`: the browser revalidates, so a node upgrade shows its page
/// at once. The CSP only matters on the document but costs nothing on the others.
fn asset(body: &'static str, content_type: &'static str) -> Response {
    let headers = [
        (CONTENT_TYPE, content_type),
        (CACHE_CONTROL, "no-cache"),
        (CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_VALUE),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "no-referrer"),
    ];
    (headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{to_bytes, Body};
    use axum::http::{header::LOCATION, Request, StatusCode};
    use tower::ServiceExt;

    async fn get(path: &str) -> Response {
        let request = Request::get(path).body(Body::empty()).unwrap();
        routes::<()>().oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn files_are_served_with_their_type_and_strict_headers() {
        for (path, kind, file) in [
            ("/ui", "text/html", INDEX_HTML),
            ("/ui/app.js", "text/javascript", APP_JS),
            ("/ui/app.css", "text/css", APP_CSS),
        ] {
            let response = get(path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let headers = response.headers();
            assert!(
                headers[CONTENT_TYPE].to_str().unwrap().starts_with(kind),
                "{path}"
            );
            assert_eq!(headers[CACHE_CONTROL], "no-cache", "{path}");
            assert_eq!(headers[X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
            assert_eq!(
                headers[CONTENT_SECURITY_POLICY],
                CONTENT_SECURITY_POLICY_VALUE
            );
            let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            assert_eq!(body, file.as_bytes(), "{path}");
        }
    }

    #[tokio::test]
    async fn trailing_slash_redirects_to_the_page() {
        let response = get("/ui/").await;
        assert!(response.status().is_redirection());
        assert_eq!(response.headers()[LOCATION], "/ui");
    }

    #[test]
    fn the_page_loads_only_its_own_files_by_absolute_path() {
        assert!(INDEX_HTML.contains(r#"src="/ui/app.js""#));
        assert!(INDEX_HTML.contains(r#"href="/ui/app.css""#));
        assert!(APP_JS.contains(&format!("'{DATA_PATH}'")));
        // The CSP forbids inline code and styles; the page must not need them.
        assert!(!INDEX_HTML.contains("<script>") && !INDEX_HTML.contains("<style"));
        assert!(!INDEX_HTML.contains("style="));
        let handlers = INDEX_HTML
            .split_whitespace()
            .filter(|w| w.starts_with("on") && w.contains('='));
        assert_eq!(handlers.count(), 0, "inline event handlers");
    }

    #[test]
    fn the_script_never_parses_data_as_markup() {
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!APP_JS.contains(sink), "app.js uses {sink}");
        }
    }
}
