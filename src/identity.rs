//! Who a socket is: open mode believes `username`; token mode verifies a JWT (HS256 or RS256).

use crate::chat::{ChatError, ErrorCode, Grant, RoomPatterns, User, UserId, UserName};
use crate::config::{AuthMode, TokenRules};
use crate::secret::Secret;
use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// The identity fields of a handshake, from the `auth` payload or, for clients that cannot send
/// one (socket.io-client 2.x), from the query string.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    pub username: Option<String>,
    pub token: Token,
}

/// The token of a handshake as it came; only token mode looks at it (open mode ignores it).
#[derive(Clone, Debug, Default)]
pub enum Token {
    #[default]
    Absent,
    Sent(Secret),
    /// Sent in a form or a place a token may not come in: refused, for this reason.
    Refused(&'static str),
}

/// Why a token in the query string of a client that can send `auth` is refused: a URL is
/// written to the logs of every proxy on the way.
const QUERY_TOKEN: &str = "a token in the query string is accepted from Engine.IO 3 clients \
                           (socket.io-client 2.x) only: send it in `auth: { token }`";

impl Credentials {
    /// `auth` must be an object (or absent); a field it lacks is looked up in `query`. A token
    /// may come in the query string only from clients that cannot send `auth` (Engine.IO 3).
    pub fn from_handshake(auth: &Value, query: Option<&str>) -> Result<Self, ChatError> {
        let auth = match auth {
            Value::Object(map) => Some(map),
            Value::Null => None,
            _ => return Err(ChatError::bad_request("auth must be an object")),
        };
        let username = match auth.and_then(|a| a.get("username")) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => query_param(query, "username"),
            Some(_) => return Err(ChatError::bad_request("auth.username must be a string")),
        };
        let in_query = query_param(query, "token");
        let token = match (auth.and_then(|a| a.get("token")), in_query) {
            (_, Some(_)) if !engine_io_3(query) => Token::Refused(QUERY_TOKEN),
            (Some(Value::String(s)), _) => Token::Sent(s.as_str().into()),
            (Some(Value::Null) | None, Some(token)) => Token::Sent(token.into()),
            (Some(Value::Null) | None, None) => Token::Absent,
            (Some(_), _) => Token::Refused("auth.token must be a string"),
        };
        Ok(Self { username, token })
    }
}

/// Whether the handshake is Engine.IO 3's (socket.io-client 2.x, which cannot send `auth`).
fn engine_io_3(query: Option<&str>) -> bool {
    query_param(query, "EIO").as_deref() == Some("3")
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
            required.extend((!rules.allow_no_exp).then_some("exp"));
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

    /// Whether identities come from verified tokens (token mode) rather than a claimed name.
    pub fn takes_tokens(&self) -> bool {
        matches!(self.mode, Mode::Token(_))
    }

    /// How long a session with `grant` may last, if its token's expiry ends it.
    pub fn session_limit(&self, grant: &Grant) -> Option<Duration> {
        Some(grant.remaining()? + self.expiry_grace?)
    }
}

/// How open mode's names for users that give none begin.
pub const GUEST_PREFIX: &str = "guest-";

fn open(username: Option<String>) -> Result<User, ChatError> {
    let name = match username {
        Some(name) => UserName::parse(&name)?,
        None => {
            let short = uuid::Uuid::new_v4().simple().to_string();
            UserName::parse(&format!("{GUEST_PREFIX}{}", &short[..8]))?
        }
    };
    let id = UserId::parse(name.as_str())?;
    Ok(User::new(id, name))
}

fn verify(token: Token, key: &DecodingKey, validation: &Validation) -> Result<Identity, ChatError> {
    let unauthorized = |why: &str| ChatError::new(ErrorCode::Unauthorized, why);
    let token = match token {
        Token::Sent(token) => token,
        Token::Absent => return Err(unauthorized("a token is required")),
        Token::Refused(why) => return Err(unauthorized(why)),
    };
    let claims = decode::<Claims>(token.expose(), key, validation)
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

    /// The token of a handshake, as text: `sent:<token>`, `absent` or `refused: <why>`.
    fn token_of(auth: Value, query: &str) -> Result<String, ChatError> {
        Credentials::from_handshake(&auth, Some(query)).map(|c| match c.token {
            Token::Sent(token) => format!("sent:{}", token.expose()),
            Token::Absent => "absent".to_owned(),
            Token::Refused(why) => format!("refused: {why}"),
        })
    }

    #[test]
    fn auth_wins_over_the_query_string() {
        let c = Credentials::from_handshake(
            &json!({"username": "alice"}),
            Some("username=bob&token=t%201&EIO=3"),
        );
        let c = c.map(|c| (c.username, format!("{:?}", c.token)));
        assert_eq!(c, Ok((Some("alice".into()), "Sent([redacted])".to_owned())));
    }

    #[test]
    fn auth_must_be_an_object_and_the_name_a_string() {
        assert!(Credentials::from_handshake(&json!("alice"), None).is_err());
        assert!(Credentials::from_handshake(&json!({"username": 5}), None).is_err());
    }

    #[test]
    fn where_a_token_may_come_from() {
        let (auth, none) = (json!({"token": "a"}), Value::Null);
        let from_query = "refused: a token in the query string is accepted from Engine.IO 3";
        let cases = [
            (&auth, "EIO=4&transport=polling", "sent:a"),
            (&json!({"token": null}), "EIO=4", "absent"),
            (&none, "EIO=4", "absent"),
            (&none, "token=q&EIO=3", "sent:q"),
            (&none, "token=q&EIO=4", from_query),
            (&none, "token=q", from_query),
            (&auth, "token=q&EIO=4", from_query),
            (&auth, "token=q&EIO=3", "sent:a"),
        ];
        for (auth, query, expected) in cases {
            let token = token_of(auth.clone(), query);
            let why = format!("{auth} {query}: {token:?}");
            assert!(token.is_ok_and(|t| t.starts_with(expected)), "{why}");
        }
        assert!(QUERY_TOKEN.ends_with("send it in `auth: { token }`"));
    }

    #[test]
    fn a_token_that_is_not_a_string_is_refused_by_token_mode_only() {
        let auth = |rules| Authenticator::new(&AuthMode::Hs256Secret("s3cret".into()), &rules);
        let token_mode = auth(TokenRules::default()).ok();
        let open_mode = Authenticator::new(&AuthMode::Open, &TokenRules::default()).ok();
        for token in [json!(42), json!(["a"]), json!({"a": 1}), json!(true)] {
            let credentials =
                Credentials::from_handshake(&json!({"username": "al", "token": token}), None);
            let Ok(credentials) = credentials else {
                panic!("{token}: {credentials:?}");
            };
            let code = token_mode
                .as_ref()
                .map(|a| a.authenticate(credentials.clone()).map_err(|e| e.code));
            assert_eq!(
                code.map(|r| r.err()),
                Some(Some(ErrorCode::Unauthorized)),
                "{token}"
            );
            let user = open_mode
                .as_ref()
                .map(|a| a.authenticate(credentials).map(|i| i.user.id));
            assert!(
                user.is_some_and(|u| u.is_ok_and(|id| id == "al")),
                "{token}"
            );
        }
    }

    #[test]
    fn open_mode_names_guests() {
        let auth = Authenticator::new(&AuthMode::Open, &TokenRules::default()).ok();
        let user = auth.map(|a| a.authenticate(Credentials::default()));
        assert!(
            matches!(user, Some(Ok(Identity { user: u, grant })) if u.id.starts_with("guest-") && u.id == u.name && u.id.len() == 14 && grant == Grant::default())
        );
    }

    fn signed(claims: &Value) -> Option<String> {
        let key = jsonwebtoken::EncodingKey::from_secret(b"s3cret");
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), claims, &key).ok()
    }

    /// The error code of a handshake with `token` (none: accepted), under `rules`.
    fn refusal(rules: TokenRules, token: Option<String>) -> Option<Option<ErrorCode>> {
        let auth = Authenticator::new(&AuthMode::Hs256Secret("s3cret".into()), &rules).ok()?;
        let token = token.map_or(Token::Absent, |t| Token::Sent(t.into()));
        let credentials = Credentials {
            username: Some("alice".into()),
            token,
        };
        Some(auth.authenticate(credentials).err().map(|e| e.code))
    }

    #[test]
    fn token_mode_needs_a_good_token() {
        let rules = TokenRules::default;
        let unauthorized = Some(Some(ErrorCode::Unauthorized));
        assert_eq!(refusal(rules(), None), unauthorized);
        assert_eq!(refusal(rules(), Some("not.a.jwt".into())), unauthorized);
        let refused =
            Credentials::from_handshake(&Value::Null, Some("token=t&EIO=4")).map(|c| c.token);
        let why = match refused {
            Ok(Token::Refused(why)) => why,
            other => panic!("{other:?}"),
        };
        assert!(why.contains("auth"), "{why}");
    }

    #[test]
    fn a_token_without_exp_is_refused_unless_allowed() {
        let exp = chrono::Utc::now().timestamp() + 60;
        let with_exp = || signed(&json!({"sub": "alice", "exp": exp}));
        let without = || signed(&json!({"sub": "alice"}));
        let allowing = |allow_no_exp| TokenRules {
            allow_no_exp,
            ..TokenRules::default()
        };
        let unauthorized = Some(Some(ErrorCode::Unauthorized));
        assert_eq!(refusal(allowing(false), with_exp()), Some(None));
        assert_eq!(refusal(allowing(false), without()), unauthorized);
        assert_eq!(refusal(allowing(true), with_exp()), Some(None));
        assert_eq!(refusal(allowing(true), without()), Some(None));
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
                token: token.map_or(Token::Absent, |t| Token::Sent(t.into())),
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
        let nbf = chrono::Utc::now().timestamp() + 60;
        let token = signed(&json!({"sub": "alice", "nbf": nbf, "exp": nbf + 60}));
        assert_eq!(
            refusal(TokenRules::default(), token),
            Some(Some(ErrorCode::Unauthorized))
        );
    }
}
