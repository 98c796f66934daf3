//! The Socket.IO admin UI: its credentials, both or neither.

use crate::secret::Secret;

section! {
    #[command(next_help_heading = "Admin UI")]
    pub struct AdminSettings {
        /// User name of the Socket.IO admin UI (`/admin` namespace); with the password set, the
        /// namespace is served, else it does not exist.
        #[arg(long, env = "ADMIN_USERNAME")]
        pub admin_username: Option<String>,
        /// Password of the Socket.IO admin UI.
        #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
        pub admin_password: Option<Secret>,
    }
}

/// The admin UI's user name and password.
#[derive(Clone, Debug)]
pub struct AdminCredentials {
    pub username: String,
    pub password: Secret,
}

impl AdminSettings {
    /// Both or neither: a user name without a password (or the reverse) is a mistake, not a
    /// namespace left open.
    pub(super) fn resolve(self) -> anyhow::Result<Option<AdminCredentials>> {
        match (
            self.admin_username.filter(|u| !u.is_empty()),
            self.admin_password.filter(|p| !p.is_empty()),
        ) {
            (Some(username), Some(password)) => Ok(Some(AdminCredentials { username, password })),
            (None, None) => Ok(None),
            _ => anyhow::bail!(
                "set both ADMIN_USERNAME and ADMIN_PASSWORD for the admin UI, or neither"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_credentials_are_both_or_neither() {
        let with = |u: Option<&str>, p: Option<&str>| {
            let s = AdminSettings {
                admin_username: u.map(Into::into),
                admin_password: p.map(Into::into),
            };
            s.resolve()
                .map(|c| c.map(|c| c.username))
                .map_err(|e| e.to_string())
        };
        assert_eq!(with(None, None), Ok(None));
        assert_eq!(with(Some(""), Some("")), Ok(None));
        assert_eq!(
            with(Some("admin"), Some("pw")),
            Ok(Some("admin".to_owned()))
        );
        assert!(with(Some("admin"), None).is_err());
        assert!(with(None, Some("pw")).is_err());
        let shown = format!(
            "{:?}",
            AdminCredentials {
                username: "admin".to_owned(),
                password: "secret".into(),
            }
        );
        assert!(!shown.contains("secret"), "{shown}");
    }
}
