//! The bearer API key of trusted backends, compared in constant time.

use crate::chat::{ChatError, ErrorCode};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use subtle::ConstantTimeEq;

/// The credential of `Authorization: Bearer <credential>`, if the request carries one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, credential)| credential.trim())
        .filter(|credential| !credential.is_empty())
}

/// Whether `presented` is the configured key.
pub fn is_key(presented: &str, key: &str) -> bool {
    bool::from(presented.as_bytes().ct_eq(key.as_bytes()))
}

/// A route for trusted backends only: `forbidden` when no key is configured, `unauthorized`
/// unless the request presents it.
pub fn authorize(headers: &HeaderMap, key: Option<&str>) -> Result<(), ChatError> {
    let Some(key) = key else {
        return Err(ChatError::forbidden(
            "no API key is configured on this server",
        ));
    };
    if bearer(headers).is_some_and(|presented| is_key(presented, key)) {
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
        let code = |h: &HeaderMap| authorize(h, Some("k1")).map_err(|e| e.code);
        assert_eq!(code(&headers("Bearer k1")), Ok(()));
        assert_eq!(code(&headers("bearer k1")), Ok(()));
        assert_eq!(code(&headers("Bearer k12")), Err(ErrorCode::Unauthorized));
        assert_eq!(code(&headers("k1")), Err(ErrorCode::Unauthorized));
        assert_eq!(code(&HeaderMap::new()), Err(ErrorCode::Unauthorized));
    }

    #[test]
    fn without_a_key_the_route_is_forbidden() {
        assert_eq!(
            authorize(&headers("Bearer k1"), None).map_err(|e| e.code),
            Err(ErrorCode::Forbidden)
        );
    }

    #[test]
    fn the_bearer_is_what_follows_the_scheme() {
        assert_eq!(bearer(&headers("Bearer a.b.c")), Some("a.b.c"));
        assert_eq!(bearer(&headers("BEARER  t ")), Some("t"));
        assert_eq!(bearer(&headers("Basic dXNlcg==")), None);
        assert_eq!(bearer(&headers("Bearer ")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
