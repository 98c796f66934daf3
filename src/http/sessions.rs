//! New Engine.IO sessions, limited per client address before socketioxide sees them: a session
//! holds memory from its first request until it connects or times out, so a flood of sessions
//! that never connect must be refused at the door.

use crate::limits::RateLimits;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Refuses (429, `rate_limited`) a request that would open a session past the address's allowance.
pub async fn limit_new(State(limits): State<RateLimits>, request: Request, next: Next) -> Response {
    if opens_session(&request) {
        let address = limits.client_address(request.headers(), request.extensions());
        if let Err(refused) = limits.new_session(&address) {
            return refused.into_response();
        }
    }
    next.run(request).await
}

/// A Socket.IO request without a session id: the start of a new session.
fn opens_session(request: &Request) -> bool {
    request.uri().path().starts_with("/socket.io")
        && !request
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("sid=")))
}
