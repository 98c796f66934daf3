//! Identity: how a socket proves who it is (open mode, or a JWT and the checks it passes), and
//! the key of the HTTP message routes.

use crate::secret::Secret;
use anyhow::Context;

section! {
    #[command(next_help_heading = "Identity")]
    pub struct IdentitySettings {
        /// HS256 secret: set, the server runs in token mode.
        #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
        pub jwt_secret: Option<Secret>,
        /// RS256 public key, as PEM text or a path to a PEM file: set, the server runs in token mode.
        #[arg(long, env = "JWT_PUBLIC_KEY", hide_env_values = true)]
        pub jwt_public_key: Option<Secret>,
        /// Seconds of clock difference forgiven when checking a token's `exp` and `nbf` [default: 5].
        #[arg(long, env = "JWT_LEEWAY_SECS")]
        pub jwt_leeway_secs: Option<u64>,
        /// Set: a token's `iss` must be this.
        #[arg(long, env = "JWT_ISSUER")]
        pub jwt_issuer: Option<String>,
        /// Set: a token's `aud` must include this.
        #[arg(long, env = "JWT_AUDIENCE")]
        pub jwt_audience: Option<String>,
        /// Accept tokens without an `exp` claim (valid for ever); false refuses them with
        /// `unauthorized` [default: false].
        #[arg(long, env = "JWT_ALLOW_NO_EXP")]
        pub jwt_allow_no_exp: Option<bool>,
        /// Whether a socket is disconnected when its token expires (after an `error` event with
        /// code `unauthorized`); false lets a session outlive its token [default: true].
        #[arg(long, env = "CHATOXIDE_END_SESSION_ON_EXPIRY")]
        pub end_session_on_expiry: Option<bool>,
        /// Bearer key of the HTTP message routes; unset, publishing over HTTP answers 403.
        #[arg(long, env = "API_KEY", hide_env_values = true)]
        pub api_key: Option<Secret>,
    }
}

/// How a socket proves who it is.
#[derive(Clone, Debug)]
pub enum AuthMode {
    /// `auth.username` is believed.
    Open,
    /// A JWT signed with this HS256 secret.
    Hs256Secret(Secret),
    /// A JWT signed with the private half of this RS256 public key (PEM).
    Rs256PublicKey(Secret),
}

/// The checks a token passes beyond its signature, and what its expiry does to a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRules {
    pub leeway_secs: u64,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Whether a token without `exp` is accepted (it never expires).
    pub allow_no_exp: bool,
    pub end_session_on_expiry: bool,
}

impl Default for TokenRules {
    fn default() -> Self {
        Self {
            leeway_secs: 5,
            issuer: None,
            audience: None,
            allow_no_exp: false,
            end_session_on_expiry: true,
        }
    }
}

/// Who may connect and publish (the [`super::Config`] fields of these names).
pub(super) struct Access {
    pub auth: AuthMode,
    pub token: TokenRules,
    pub api_key: Option<Secret>,
}

impl IdentitySettings {
    pub(super) fn resolve(self) -> anyhow::Result<Access> {
        let d = TokenRules::default();
        let token = TokenRules {
            leeway_secs: self.jwt_leeway_secs.unwrap_or(d.leeway_secs),
            issuer: self.jwt_issuer.filter(|i| !i.is_empty()),
            audience: self.jwt_audience.filter(|a| !a.is_empty()),
            allow_no_exp: self.jwt_allow_no_exp.unwrap_or(d.allow_no_exp),
            end_session_on_expiry: self
                .end_session_on_expiry
                .unwrap_or(d.end_session_on_expiry),
        };
        anyhow::ensure!(token.leeway_secs <= 300, "jwt_leeway_secs must be 0 to 300");
        let auth = match (self.jwt_secret, self.jwt_public_key) {
            (Some(_), Some(_)) => anyhow::bail!("set JWT_SECRET or JWT_PUBLIC_KEY, not both"),
            (Some(secret), None) if secret.is_empty() => anyhow::bail!("JWT_SECRET is empty"),
            (Some(secret), None) => AuthMode::Hs256Secret(secret),
            (None, Some(key)) => AuthMode::Rs256PublicKey(read_pem(key)?),
            (None, None) => AuthMode::Open,
        };
        Ok(Access {
            auth,
            token,
            api_key: self.api_key.filter(|k| !k.is_empty()),
        })
    }
}

/// PEM text as given, or the contents of the file it names.
fn read_pem(key: Secret) -> anyhow::Result<Secret> {
    let text = key.expose();
    if text.trim_start().starts_with("-----BEGIN") {
        return Ok(key);
    }
    let pem = std::fs::read_to_string(text)
        .with_context(|| format!("reading JWT_PUBLIC_KEY file {text}"))?;
    Ok(pem.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_jwt_keys_is_an_error() {
        let s = IdentitySettings {
            jwt_secret: Some("a".into()),
            jwt_public_key: Some("-----BEGIN".into()),
            ..Default::default()
        };
        assert!(s.resolve().is_err());
    }
}
