//! Who a socket is: open mode believes `username`; token mode verifies a JWT (HS256 or RS256).

use crate::chat::{ChatError, ErrorCode, Grant, RoomPatterns, User, UserId, UserName};
use crate::config::{AuthMode, TokenRules};
use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// The identity fields of a handshake, from the `auth` payload or, for clients that cannot send
/// one (socket.io-client 2.x), from the query string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: Option<String>,
    pub token: Option<String>,
}

impl Credentials {
    /// `auth` must be an object (or absent); a field it lacks is looked up in `query`.
    pub fn from_handshake(auth: &Value, query: Option<&str>) -> Result<Self, ChatError> {
        let auth = match auth {
            Value::Object(map) => Some(map),
            Value::Null => None,
            _ => return Err(ChatError::bad_request("auth must be an object")),
        };
        let field = |name: &str| -> Result<Option<String>, ChatError> {
            match auth.and_then(|a| a.get(name)) {
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Null) | None => Ok(query_param(query, name)),
                Some(_) => Err(ChatError::bad_request(format!(
                    "auth.{name} must be a string"
                ))),
            }
        };
        Ok(Self {
            username: field("username")?,
            token: field("token")?,
        })
    }
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The claims chatoxide reads from a token (`exp`, `nbf`, `iss` and `aud` are checked by the
/// validation before these are looked at).
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    name: Option<String>,
    exp: Option<u64>,
    /// Room patterns the user may join; absent: every room.
    rooms: Option<Vec<String>>,
}

/// Who a socket is, and what its credentials allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: User,
    pub grant: Grant,
}

/// Turns credentials into a user, as the configured mode says.
#[derive(Clone)]
pub struct Authenticator {
    mode: Mode,
    /// Added to a token's lifetime before its session ends; `None`: sessions outlive tokens.
    expiry_grace: Option<Duration>,
}

#[derive(Clone)]
enum Mode {
    Open,
    Token(Box<(DecodingKey, Validation)>),
}

impl Authenticator {
    /// Fails at start on a key that cannot be parsed, rather than on every handshake.
    pub fn new(mode: &AuthMode, rules: &TokenRules) -> anyhow::Result<Self> {
        let token = |key, alg| {
            let mut validation = Validation::new(alg);
            // A configured issuer or audience must be present, not just right when present.
            let mut required = vec!["sub"];
            required.extend(rules.issuer.as_ref().map(|_| "iss"));
            required.extend(rules.audience.as_ref().map(|_| "aud"));
            validation.set_required_spec_claims(&required);
            validation.validate_exp = true;
            validation.validate_nbf = true;
            validation.leeway = rules.leeway_secs;
            if let Some(issuer) = &rules.issuer {
                validation.set_issuer(&[issuer]);
            }
            match &rules.audience {
                Some(audience) => validation.set_audience(&[audience]),
                // No audience configured: an `aud` claim (most providers set one) is not
                // checked rather than refused.
                None => validation.validate_aud = false,
            }
            Mode::Token(Box::new((key, validation)))
        };
        let mode = match mode {
            AuthMode::Open => Mode::Open,
            AuthMode::Hs256Secret(secret) => token(
                DecodingKey::from_secret(secret.expose().as_bytes()),
                Algorithm::HS256,
            ),
            AuthMode::Rs256PublicKey(pem) => {
                let key = DecodingKey::from_rsa_pem(pem.expose().as_bytes())
                    .context("JWT_PUBLIC_KEY is not an RSA public key in PEM")?;
                token(key, Algorithm::RS256)
            }
        };
        let expiry_grace = rules
            .end_session_on_expiry
            .then(|| Duration::from_secs(rules.leeway_secs));
        Ok(Self { mode, expiry_grace })
    }

    pub fn authenticate(&self, credentials: Credentials) -> Result<Identity, ChatError> {
        match &self.mode {
            Mode::Open => Ok(Identity {
                user: open(credentials.username)?,
                grant: Grant::default(),
            }),
            Mode::Token(token) => verify(credentials.token, &token.0, &token.1),
        }
    }

    /// How long a session with `grant` may last, if its token's expiry ends it.
    pub fn session_limit(&self, grant: &Grant) -> Option<Duration> {
        Some(grant.remaining()? + self.expiry_grace?)
    }
}

fn open(username: Option<String>) -> Result<User, ChatError> {
    let name = match username {
        Some(name) => UserName::parse(&name)?,
        None => {
            let short = uuid::Uuid::new_v4().simple().to_string();
            UserName::parse(&format!("guest-{}", &short[..8]))?
        }
    };
    let id = UserId::parse(name.as_str())?;
    Ok(User::new(id, name))
}

fn verify(
    token: Option<String>,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<Identity, ChatError> {
    let unauthorized = |why: &str| ChatError::new(ErrorCode::Unauthorized, why);
    let token = token.ok_or_else(|| unauthorized("a token is required"))?;
    let claims = decode::<Claims>(&token, key, validation)
        .map_err(|e| {
            tracing::debug!(error = %e, "token refused");
            unauthorized("the token is invalid or expired")
        })?
        .claims;
    let id = UserId::parse(&claims.sub)
        .map_err(|_| unauthorized("the token's sub is not a valid user id"))?;
    let name = UserName::parse(claims.name.as_deref().unwrap_or(&claims.sub))
        .map_err(|_| unauthorized("the token's name is not a valid name"))?;
    let rooms = claims
        .rooms
        .as_deref()
        .map(RoomPatterns::parse)
        .transpose()
        .map_err(|why| unauthorized(&why))?;
    Ok(Identity {
        user: User::new(id, name),
        grant: Grant {
            rooms,
            expires_at: claims.exp.and_then(Grant::expiring_at),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn auth_wins_over_the_query_string() {
        let c = Credentials::from_handshake(
            &json!({"username": "alice"}),
            Some("username=bob&token=t%201"),
        );
        assert_eq!(
            c,
            Ok(Credentials {
                username: Some("alice".into()),
                token: Some("t 1".into())
            })
        );
    }

    #[test]
    fn auth_must_be_an_object_of_strings() {
        assert!(Credentials::from_handshake(&json!("alice"), None).is_err());
        assert!(Credentials::from_handshake(&json!({"username": 5}), None).is_err());
    }

    #[test]
    fn open_mode_names_guests() {
        let auth = Authenticator::new(&AuthMode::Open, &TokenRules::default()).ok();
        let user = auth.map(|a| a.authenticate(Credentials::default()));
        assert!(
            matches!(user, Some(Ok(Identity { user: u, grant })) if u.id.starts_with("guest-") && u.id == u.name && u.id.len() == 14 && grant == Grant::default())
        );
    }

    #[test]
    fn token_mode_needs_a_good_token() {
        let auth = Authenticator::new(
            &AuthMode::Hs256Secret("s3cret".into()),
            &TokenRules::default(),
        )
        .ok();
        let code = |token: Option<&str>| {
            auth.as_ref().map(|a| {
                a.authenticate(Credentials {
                    username: Some("alice".into()),
                    token: token.map(str::to_owned),
                })
                .map_err(|e| e.code)
            })
        };
        assert_eq!(code(None), Some(Err(ErrorCode::Unauthorized)));
        assert_eq!(code(Some("not.a.jwt")), Some(Err(ErrorCode::Unauthorized)));
    }

    fn signed(claims: &Value) -> Option<String> {
        let key = jsonwebtoken::EncodingKey::from_secret(b"s3cret");
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), claims, &key).ok()
    }

    #[test]
    fn the_rooms_claim_and_exp_make_the_grant() {
        let rules = TokenRules {
            leeway_secs: 7,
            ..TokenRules::default()
        };
        let auth = Authenticator::new(&AuthMode::Hs256Secret("s3cret".into()), &rules).ok();
        let exp = chrono::Utc::now().timestamp() + 60;
        let token = signed(&json!({"sub": "alice", "exp": exp, "rooms": ["team-*"]}));
        let identity = auth.as_ref().and_then(|a| {
            a.authenticate(Credentials {
                username: None,
                token,
            })
            .ok()
        });
        let grant = identity.map(|i| i.grant);
        assert!(
            grant
                .as_ref()
                .is_some_and(|g| g.allows("team-a") && !g.allows("general"))
        );
        let limit = grant.and_then(|g| auth.and_then(|a| a.session_limit(&g)));
        // About 60 s of token and 7 s of leeway.
        assert!(limit.is_some_and(|l| l > Duration::from_secs(60) && l <= Duration::from_secs(67)));
    }

    #[test]
    fn a_token_from_the_future_is_refused() {
        let auth = Authenticator::new(
            &AuthMode::Hs256Secret("s3cret".into()),
            &TokenRules::default(),
        )
        .ok();
        let nbf = chrono::Utc::now().timestamp() + 60;
        let token = signed(&json!({"sub": "alice", "nbf": nbf, "exp": nbf + 60}));
        let code = auth.map(|a| {
            a.authenticate(Credentials {
                username: None,
                token,
            })
            .map_err(|e| e.code)
        });
        assert_eq!(code.map(|r| r.err()), Some(Some(ErrorCode::Unauthorized)));
    }
}
