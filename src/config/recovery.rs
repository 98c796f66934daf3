//! Connection state recovery (Node socket.io 4.x's `connectionStateRecovery`): which namespaces
//! keep a disconnected socket's session, and for how long.

use crate::rules::{ADMIN_NAMESPACE, CHAT_NAMESPACE, Rules};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeSet;
use std::time::Duration;

section! {
    #[command(next_help_heading = "Connection state recovery")]
    pub struct RecoverySettings {
        /// Connection state recovery, as Node socket.io's `connectionStateRecovery`: a client that
        /// lost its connection comes back within the maximum disconnection with its rooms and the
        /// events it missed (`socket.recovered`). No value, `true` or `*`: every namespace; else a
        /// comma-separated list of namespaces (`/`, a relay rule's `/live`) [default: off].
        #[arg(long, env = "CHATOXIDE_CONNECTION_STATE_RECOVERY", num_args = 0..=1,
              default_missing_value = "*", value_delimiter = ',')]
        #[serde(default, deserialize_with = "switch_or_namespaces")]
        pub connection_state_recovery: Option<Vec<String>>,
        /// Milliseconds a disconnected socket's session is kept for it to be recovered (Node's
        /// `maxDisconnectionDuration`) [default: 120000].
        #[arg(long, env = "CHATOXIDE_MAX_DISCONNECTION_DURATION_MS")]
        pub max_disconnection_duration_ms: Option<u64>,
    }
}

/// The file's `connection_state_recovery`: `true`, `false`, or a list of namespaces.
fn switch_or_namespaces<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Switch(bool),
        Namespaces(Vec<String>),
    }
    Ok(Some(match Given::deserialize(d)? {
        Given::Switch(on) => vec![on.to_string()],
        Given::Namespaces(list) => list,
    }))
}

/// Where sessions are recovered, and for how long (the [`super::Config`] field `recovery`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryConfig {
    pub namespaces: RecoveringNamespaces,
    /// Node's `maxDisconnectionDuration`.
    pub max_disconnection: Duration,
}

/// The namespaces whose sessions are recovered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecoveringNamespaces {
    None,
    All,
    These(BTreeSet<String>),
}

impl RecoveryConfig {
    /// Whether the sessions of namespace `ns` are recovered.
    pub fn covers(&self, ns: &str) -> bool {
        match &self.namespaces {
            RecoveringNamespaces::None => false,
            // The admin UI's namespace is the server's own: nothing of it to recover.
            RecoveringNamespaces::All => ns != ADMIN_NAMESPACE,
            RecoveringNamespaces::These(set) => set.contains(ns),
        }
    }

    pub fn is_on(&self) -> bool {
        self.namespaces != RecoveringNamespaces::None
    }
}

impl RecoverySettings {
    /// The namespaces named must be served: `/`, or one relay rules open.
    pub(super) fn resolve(self, rules: &Rules) -> anyhow::Result<RecoveryConfig> {
        let max_ms = self.max_disconnection_duration_ms.unwrap_or(120_000);
        anyhow::ensure!(
            (100..=86_400_000).contains(&max_ms),
            "max_disconnection_duration_ms must be 100 to 86400000"
        );
        let listed: Vec<String> = (self
            .connection_state_recovery
            .unwrap_or_default()
            .into_iter())
        .map(|ns| ns.trim().to_owned())
        .filter(|ns| !ns.is_empty())
        .collect();
        let namespaces = match listed.as_slice() {
            [] => RecoveringNamespaces::None,
            [one] if one == "false" => RecoveringNamespaces::None,
            list if list.iter().any(|ns| ns == "*" || ns == "true") => RecoveringNamespaces::All,
            list => {
                let served = rules.extra_namespaces();
                for ns in list {
                    anyhow::ensure!(
                        ns == CHAT_NAMESPACE || served.contains(ns.as_str()),
                        "connection_state_recovery names namespace {ns}, which is not served: `/` or a namespace of the relay rules"
                    );
                }
                RecoveringNamespaces::These(list.iter().cloned().collect())
            }
        };
        Ok(RecoveryConfig {
            namespaces,
            max_disconnection: Duration::from_millis(max_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(list: Option<&[&str]>) -> anyhow::Result<RecoveryConfig> {
        let rules = Rules::parse(&[crate::rules::RuleSpec {
            namespace: Some("/live".into()),
            ..toml::from_str("on = \"say\"").map_err(anyhow::Error::from)?
        }])
        .map_err(|e| anyhow::anyhow!(e))?;
        RecoverySettings {
            connection_state_recovery: list.map(|l| l.iter().map(|s| s.to_string()).collect()),
            max_disconnection_duration_ms: None,
        }
        .resolve(&rules)
    }

    #[test]
    fn off_unless_asked_and_namespaces_must_be_served() {
        let none = resolve(None).map(|c| c.is_on());
        assert!(matches!(none, Ok(false)), "{none:?}");
        let all = resolve(Some(&["*"])).map(|c| c.covers("/anything"));
        assert!(matches!(all, Ok(true)), "{all:?}");
        let listed = resolve(Some(&["/live"])).map(|c| (c.covers("/live"), c.covers("/")));
        assert!(matches!(listed, Ok((true, false))), "{listed:?}");
        let off = resolve(Some(&["false"])).map(|c| c.is_on());
        assert!(matches!(off, Ok(false)), "{off:?}");
        let unknown = resolve(Some(&["/nowhere"])).map_err(|e| e.to_string());
        assert!(
            unknown.as_ref().is_err_and(|e| e.contains("/nowhere")),
            "{unknown:?}"
        );
        let admin = resolve(Some(&["*"])).map(|c| c.covers(ADMIN_NAMESPACE));
        assert!(matches!(admin, Ok(false)), "{admin:?}");
        let default = resolve(Some(&["/"])).map(|c| c.max_disconnection);
        assert!(
            matches!(default, Ok(d) if d == Duration::from_secs(120)),
            "{default:?}"
        );
    }

    #[test]
    fn the_file_takes_a_switch_or_a_list() {
        let read = |text: &str| {
            crate::config::Settings::from_toml(text)
                .map(|s| s.recovery.connection_state_recovery)
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            read("connection_state_recovery = true"),
            Ok(Some(vec!["true".into()]))
        );
        assert_eq!(
            read("connection_state_recovery = false"),
            Ok(Some(vec!["false".into()]))
        );
        assert_eq!(
            read("connection_state_recovery = [\"/live\"]"),
            Ok(Some(vec!["/live".into()]))
        );
        assert_eq!(read("port = 1"), Ok(None));
        assert!(read("connection_state_recovery = 3").is_err());
    }
}
