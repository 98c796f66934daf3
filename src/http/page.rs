//! The chat page at `/`: one HTML file, one stylesheet and one script, compiled into the binary
//! (`page/`), that speak the chat contract through the socket.io-client bundle served at
//! `/socket.io/socket.io.js`. Nothing is built or fetched at run time. `--chat-page false`
//! leaves these routes out, and `/` answers 404.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// What the page may load and reach: its own files and its own Socket.IO endpoint, nothing
/// else; no inline script, and no other site may frame it.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// One embedded file and how it is served.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    /// A digest of `body`, computed at compile time: the ETag.
    digest: u64,
}

impl Asset {
    const fn new(body: &'static str, content_type: &'static str) -> Self {
        Self {
            body,
            content_type,
            digest: fnv1a(body.as_bytes()),
        }
    }

    /// The file, or 304 when the browser's copy is this one. `no-cache` has the browser ask
    /// every time (a cheap 304), so a new binary's page is never mixed with an old script.
    fn serve(&self, request: &HeaderMap) -> Response {
        let etag = HeaderValue::from_str(&format!("\"{:016x}\"", self.digest))
            .unwrap_or_else(|_| HeaderValue::from_static("\"chat-page\""));
        let fresh = request
            .get(header::IF_NONE_MATCH)
            .is_some_and(|tag| tag == etag);
        let headers = [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::ETAG, etag),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(POLICY),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ];
        if fresh {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        (headers, self.body).into_response()
    }
}

const INDEX: Asset = Asset::new(include_str!("page/index.html"), "text/html; charset=utf-8");
const SCRIPT: Asset = Asset::new(
    include_str!("page/chat.js"),
    "text/javascript; charset=utf-8",
);
const STYLE: Asset = Asset::new(include_str!("page/chat.css"), "text/css; charset=utf-8");

/// What the page needs to know of the server before it asks who you are: whether a token is
/// required (token mode) or a name will do (open mode).
const OPEN_MODE: &str = r#"{"auth":"open"}"#;
const TOKEN_MODE: &str = r#"{"auth":"token"}"#;

/// `/`, `/chat.js`, `/chat.css` and `/chat-config.json` (GET and HEAD).
pub fn router<S: Clone + Send + Sync + 'static>(tokens: bool) -> Router<S> {
    let config = if tokens { TOKEN_MODE } else { OPEN_MODE };
    Router::new()
        .route("/", get(|h: HeaderMap| async move { INDEX.serve(&h) }))
        .route(
            "/chat-config.json",
            get(move || async move {
                (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    config,
                )
            }),
        )
        .route(
            "/chat.js",
            get(|h: HeaderMap| async move { SCRIPT.serve(&h) }),
        )
        .route(
            "/chat.css",
            get(|h: HeaderMap| async move { STYLE.serve(&h) }),
        )
}

/// 64-bit FNV-1a: enough to tell two versions of a file apart, and computable in a `const`.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of(response: &Response, name: header::HeaderName) -> &str {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    #[test]
    fn each_file_has_its_type_a_tag_and_no_cache() {
        for (asset, kind) in [
            (&INDEX, "text/html"),
            (&SCRIPT, "text/javascript"),
            (&STYLE, "text/css"),
        ] {
            let response = asset.serve(&HeaderMap::new());
            assert_eq!(response.status(), StatusCode::OK);
            assert!(header_of(&response, header::CONTENT_TYPE).starts_with(kind));
            assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
            assert_eq!(header_of(&response, header::ETAG).len(), 18);
        }
    }

    #[test]
    fn a_matching_etag_is_answered_304() {
        let first = SCRIPT.serve(&HeaderMap::new());
        let mut request = HeaderMap::new();
        if let Some(tag) = first.headers().get(header::ETAG) {
            request.insert(header::IF_NONE_MATCH, tag.clone());
        }
        assert_eq!(SCRIPT.serve(&request).status(), StatusCode::NOT_MODIFIED);
        request.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"old\""));
        assert_eq!(SCRIPT.serve(&request).status(), StatusCode::OK);
    }

    #[test]
    fn the_page_loads_the_client_bundle_and_its_own_files() {
        for path in ["/socket.io/socket.io.js", "/chat.js", "/chat.css"] {
            assert!(INDEX.body.contains(path), "index.html loads {path}");
        }
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
    }
}
