//! Who a socket is: open mode believes `username`; token mode verifies a JWT (HS256 or RS256).

use crate::chat::{ChatError, ErrorCode, User, UserId, UserName};
use crate::config::AuthMode;
use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::Deserialize;
use serde_json::Value;

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

/// The claims chatoxide reads from a token.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    name: Option<String>,
}

/// Turns credentials into a user, as the configured mode says.
#[derive(Clone)]
pub struct Authenticator {
    mode: Mode,
}

#[derive(Clone)]
enum Mode {
    Open,
    Token(Box<(DecodingKey, Validation)>),
}

impl Authenticator {
    /// Fails at start on a key that cannot be parsed, rather than on every handshake.
    pub fn new(mode: &AuthMode) -> anyhow::Result<Self> {
        let token = |key, alg| {
            let mut validation = Validation::new(alg);
            validation.set_required_spec_claims(&["sub"]);
            validation.validate_exp = true;
            // No audience is configured, so an `aud` claim (most providers set one) is not
            // checked rather than refused.
            validation.validate_aud = false;
            validation.leeway = 0;
            Mode::Token(Box::new((key, validation)))
        };
        let mode = match mode {
            AuthMode::Open => Mode::Open,
            AuthMode::Hs256Secret(secret) => token(
                DecodingKey::from_secret(secret.as_bytes()),
                Algorithm::HS256,
            ),
            AuthMode::Rs256PublicKey(pem) => {
                let key = DecodingKey::from_rsa_pem(pem.as_bytes())
                    .context("JWT_PUBLIC_KEY is not an RSA public key in PEM")?;
                token(key, Algorithm::RS256)
            }
        };
        Ok(Self { mode })
    }

    pub fn authenticate(&self, credentials: Credentials) -> Result<User, ChatError> {
        match &self.mode {
            Mode::Open => open(credentials.username),
            Mode::Token(token) => verify(credentials.token, &token.0, &token.1),
        }
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
) -> Result<User, ChatError> {
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
    Ok(User::new(id, name))
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
        let auth = Authenticator::new(&AuthMode::Open).ok();
        let user = auth.map(|a| a.authenticate(Credentials::default()));
        assert!(
            matches!(user, Some(Ok(u)) if u.id.starts_with("guest-") && u.id == u.name && u.id.len() == 14)
        );
    }

    #[test]
    fn token_mode_needs_a_good_token() {
        let auth = Authenticator::new(&AuthMode::Hs256Secret("s3cret".into())).ok();
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
}
