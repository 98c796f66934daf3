//! New Engine.IO sessions, admitted before socketioxide sees them: limited per client address
//! (a session holds memory from its first request until it connects or times out, so an
//! address may hold only so many that have not connected; past that they are refused at the
//! door), and with a request head of their own (see [`detached`]).

use crate::limits::RateLimits;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Refuses (429, `rate_limited`) a request that would open a session past the address's
/// pending sessions, and detaches the head of one that is admitted, with its pending slot in
/// it: the slot is given back when the session connects or ends.
pub async fn admit(State(limits): State<RateLimits>, request: Request, next: Next) -> Response {
    if !opens_session(&request) {
        return next.run(request).await;
    }
    let address = limits.client_address(request.headers(), request.extensions());
    let slot = match limits.open_session(&address) {
        Ok(slot) => slot,
        Err(refused) => return refused.into_response(),
    };
    let mut request = detached(request);
    if let Some(slot) = slot {
        request.extensions_mut().insert(slot);
    }
    next.run(request).await
}

/// The request with its URI and header values copied out of the connection's read buffer.
///
/// Engine.IO keeps the head of the request that opened a session for the session's whole life
/// (handlers may read it). hyper parses heads without copying: the URI and every header value
/// are slices of the connection's read buffer (8 to 16 KiB), which stays allocated, one per
/// connection, as long as any slice of it lives (axum's `OriginalUri` included). A few hundred
/// bytes of copies free it: 16 KiB of the 44 KB an idle WebSocket connection held
/// (docs/benchmarks.md).
fn detached(request: Request) -> Request {
    let (mut parts, body) = request.into_parts();
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        if let Ok(mut copy) = HeaderValue::from_bytes(value.as_bytes()) {
            copy.set_sensitive(value.is_sensitive());
            headers.append(name.clone(), copy);
        }
    }
    parts.headers = headers;
    if let Ok(uri) = Uri::try_from(parts.uri.to_string()) {
        // axum's router keeps a clone of the URI too (a slice of the same buffer).
        if parts.extensions.get::<OriginalUri>().is_some() {
            parts.extensions.insert(OriginalUri(uri.clone()));
        }
        parts.uri = uri;
    }
    Request::from_parts(parts, body)
}

/// A Socket.IO request without a session id: the start of a new session.
fn opens_session(request: &Request) -> bool {
    request.uri().path().starts_with("/socket.io")
        && !request
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("sid=")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;
    use axum::body::{Body, Bytes};

    #[test]
    fn a_detached_head_is_equal_and_owns_its_bytes() -> anyhow::Result<()> {
        let buffer = Bytes::from_static(b"websocket/socket.io/?EIO=4&transport=websocket");
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = Uri::from_maybe_shared(buffer.slice(9..))?;
        let original = OriginalUri(request.uri().clone());
        request.extensions_mut().insert(original);
        let mut secret = HeaderValue::from_maybe_shared(buffer.slice(..9))?;
        secret.set_sensitive(true);
        request.headers_mut().append("upgrade", secret);
        request
            .headers_mut()
            .append("x-twice", HeaderValue::from_static("a"));
        request
            .headers_mut()
            .append("x-twice", HeaderValue::from_static("b"));

        let detached = detached(request);

        let inside = |p: *const u8| buffer.as_ptr_range().contains(&p);
        assert_eq!(detached.uri(), "/socket.io/?EIO=4&transport=websocket");
        assert!(!inside(detached.uri().path().as_ptr()));
        let original = &detached
            .extensions()
            .get::<OriginalUri>()
            .context("OriginalUri kept")?
            .0;
        assert_eq!(original, detached.uri());
        assert!(!inside(original.path().as_ptr()));
        let upgrade = &detached.headers()["upgrade"];
        assert_eq!(upgrade, "websocket");
        assert!(upgrade.is_sensitive());
        assert!(!inside(upgrade.as_bytes().as_ptr()));
        let twice: Vec<_> = detached.headers().get_all("x-twice").iter().collect();
        assert_eq!(twice, ["a", "b"]);
        Ok(())
    }
}
