//! The socket.io client bundle at `/socket.io/socket.io.js`, as Node's socket.io serves it
//! (`serveClient`): frontends written for a Node server load it from there. The file is the
//! npm package's own build (socket.io-client 4.8.4, MIT), refreshed with
//! `scripts/vendor-socket.io-client`; the js-client-tests check it is the package's.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

const BUNDLE: &[u8] = include_bytes!("assets/socket.io.min.js");
const VERSION: &str = "4.8.4";
/// The paths Node's socket.io serves the browser build at.
const PATHS: [&str; 2] = ["/socket.io/socket.io.js", "/socket.io/socket.io.min.js"];

/// Answers the bundle's paths before the Socket.IO service, which owns `/socket.io/`.
pub async fn serve(request: Request, next: Next) -> Response {
    let wanted = matches!(*request.method(), Method::GET | Method::HEAD)
        && PATHS.contains(&request.uri().path());
    if !wanted {
        return next.run(request).await;
    }
    let etag = HeaderValue::from_str(&format!("\"socket.io-client-{VERSION}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"socket.io-client\""));
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag == etag);
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/javascript; charset=utf-8"),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=86400"),
        ),
        (header::ETAG, etag),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, BUNDLE).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_is_the_version_it_says() {
        let head = String::from_utf8_lossy(&BUNDLE[..64]);
        assert!(head.contains(&format!("Socket.IO v{VERSION}")), "{head}");
    }
}
