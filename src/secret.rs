//! Values that must never reach a log line, an error message or a `{:?}`: a [`Secret`] (a JWT
//! secret, the API key, the admin password) prints as `[redacted]`, and a [`SecretUrl`] (a
//! database or Redis URL) prints with its password as `***`. The one way to read either whole
//! is `expose()`, written at the place that uses it.

use serde::Deserialize;
use std::fmt;

/// What a secret prints as.
const REDACTED: &str = "[redacted]";

/// A secret string: `Debug` and `Display` print `[redacted]`.
#[derive(Clone, Deserialize)]
#[serde(from = "String")]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that uses it (a key, a comparison).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A URL that may carry a password (`postgres://user:pw@host/db`): it prints as
/// `postgres://user:***@host/db`, so that where the server connects can be logged.
#[derive(Clone, Deserialize)]
#[serde(from = "String")]
pub struct SecretUrl(String);

impl SecretUrl {
    /// The URL with its password, for the one place that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The URL with the password of its user information, if any, replaced by `***`.
    fn redacted(&self) -> String {
        let url = &self.0;
        match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let start = scheme + 3;
                match url[start..at].split_once(':') {
                    Some((user, _)) => format!("{}{user}:***{}", &url[..start], &url[at..]),
                    None => url.to_owned(),
                }
            }
            _ => url.to_owned(),
        }
    }
}

impl From<String> for SecretUrl {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for SecretUrl {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.redacted(), f)
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_prints_as_redacted_and_is_read_by_expose() {
        let secret = Secret::from("hunter2");
        assert_eq!(
            format!("{secret} {secret:?} {:?}", Some(&secret)),
            "[redacted] [redacted] Some([redacted])"
        );
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn a_url_prints_without_its_password() {
        let url = |text: &str| SecretUrl::from(text);
        assert_eq!(
            url("postgres://u:pw@h:5432/db").to_string(),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            format!("{:?}", url("redis://:pw@h:6379")),
            "\"redis://:***@h:6379\""
        );
        assert_eq!(url("redis://u@h").to_string(), "redis://u@h");
        assert_eq!(url("sqlite::memory:").to_string(), "sqlite::memory:");
        assert_eq!(url("postgres://u:pw@h/db").expose(), "postgres://u:pw@h/db");
    }

    #[test]
    fn secrets_are_read_from_strings() {
        let secret = serde_json::from_str::<Secret>("\"s3cret\"").map(|s| s.expose().to_owned());
        assert_eq!(secret.ok().as_deref(), Some("s3cret"));
    }
}
