//! The one place a `ChatError` becomes an HTTP response: a status and the protocol's body.

use crate::chat::{ChatError, ErrorCode};
use crate::realtime::Failure;
use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

impl IntoResponse for ChatError {
    fn into_response(self) -> Response {
        let status = match self.code {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut response = (
            status,
            Json(Failure {
                ok: false,
                error: &self,
            }),
        )
            .into_response();
        if let Some(ms) = self.retry_after_ms {
            // Retry-After counts whole seconds.
            let secs = ms.div_ceil(1000).to_string();
            if let Ok(value) = secs.parse() {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}
