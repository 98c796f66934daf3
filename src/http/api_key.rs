//! The bearer API key of trusted backends, compared in constant time.

use crate::chat::{ChatError, ErrorCode};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use subtle::ConstantTimeEq;

/// Whether the route is usable when no key is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WithoutKey {
    Open,
    Closed,
}

pub fn authorize(
    headers: &HeaderMap,
    key: Option<&str>,
    without_key: WithoutKey,
) -> Result<(), ChatError> {
    let Some(key) = key else {
        return match without_key {
            WithoutKey::Open => Ok(()),
            WithoutKey::Closed => Err(ChatError::forbidden(
                "no API key is configured on this server",
            )),
        };
    };
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
        .unwrap_or_default();
    if bool::from(presented.as_bytes().ct_eq(key.as_bytes())) {
        Ok(())
    } else {
        Err(ChatError::new(
            ErrorCode::Unauthorized,
            "a valid bearer API key is required",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = value.parse() {
            h.insert(AUTHORIZATION, v);
        }
        h
    }

    #[test]
    fn the_key_must_match_exactly() {
        let code = |h: &HeaderMap| authorize(h, Some("k1"), WithoutKey::Closed).map_err(|e| e.code);
        assert_eq!(code(&headers("Bearer k1")), Ok(()));
        assert_eq!(code(&headers("bearer k1")), Ok(()));
        assert_eq!(code(&headers("Bearer k12")), Err(ErrorCode::Unauthorized));
        assert_eq!(code(&headers("k1")), Err(ErrorCode::Unauthorized));
        assert_eq!(code(&HeaderMap::new()), Err(ErrorCode::Unauthorized));
    }

    #[test]
    fn without_a_key_closed_routes_are_forbidden() {
        assert_eq!(
            authorize(&HeaderMap::new(), None, WithoutKey::Closed).map_err(|e| e.code),
            Err(ErrorCode::Forbidden)
        );
        assert!(authorize(&HeaderMap::new(), None, WithoutKey::Open).is_ok());
    }
}
