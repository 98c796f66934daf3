//! The protocol's error codes, and the one error type every command answers with.

use serde::Serialize;
use std::fmt;

/// The error codes of the contract, serialized as their snake_case names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    TooLarge,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: [Self; 8] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::TooLarge,
        Self::RateLimited,
        Self::Unavailable,
        Self::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::TooLarge => "too_large",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// Whether the same request, sent again later, may succeed: storage that did not answer,
    /// a rate limit that passes. The others are the request's own fault, or final.
    pub fn cured_by_retry(self) -> bool {
        matches!(self, Self::Unavailable | Self::RateLimited)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{ code, message }`: what a client sees of a failure. The message is for humans and never
/// carries internal details (those are logged where the failure is mapped).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ChatError {
    pub code: ErrorCode,
    pub message: String,
    /// With `rate_limited`: milliseconds after which the same request would pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// `"unknown"` when the command may or may not have taken effect (storage did not answer
    /// in time); absent, a failed command took no effect. Retrying is safe either way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'static str>,
}

impl ChatError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_ms: None,
            outcome: None,
        }
    }

    /// `unavailable`, when it is not known whether the command took effect: a retry finds out
    /// (every command is safe to repeat; a `message` with the same `client_id`).
    pub fn outcome_unknown(message: impl Into<String>) -> Self {
        Self {
            outcome: Some("unknown"),
            ..Self::new(ErrorCode::Unavailable, message)
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// A join past the rooms a user may be a member of.
    pub fn too_many_rooms(max: u64) -> Self {
        Self::forbidden(format!("at most {max} rooms per user; leave one first"))
    }

    pub fn not_a_member(room: &str) -> Self {
        Self::forbidden(format!(
            "you are not a member of room '{room}'; join it first"
        ))
    }
}
