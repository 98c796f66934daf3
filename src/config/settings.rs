//! One layer of settings (the command line and environment, or the TOML file): every section's
//! settings side by side, every field optional, so that layers can be merged.

use super::{
    AdminSettings, ChatSettings, ClusterSettings, CompatSettings, IdentitySettings, LimitSettings,
    LoggingSettings, OutboxSettings, RecoverySettings, ServerSettings, StorageSettings,
    WriterSettings,
};
use anyhow::Context;
use clap::{Args, CommandFactory};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;

/// Every setting, by section. A flag's name is its field's name with `-`, a file key its name.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
pub struct Settings {
    #[command(flatten)]
    #[serde(flatten)]
    pub server: ServerSettings,
    #[command(flatten)]
    #[serde(flatten)]
    pub storage: StorageSettings,
    #[command(flatten)]
    #[serde(flatten)]
    pub cluster: ClusterSettings,
    #[command(flatten)]
    #[serde(flatten)]
    pub identity: IdentitySettings,
    #[command(flatten)]
    #[serde(flatten)]
    pub compat: CompatSettings,
    #[command(flatten)]
    #[serde(flatten)]
    pub limits: LimitSettings,
    #[command(flatten)]
    #[serde(flatten)]
    pub chat: ChatSettings,
    #[command(flatten)]
    #[serde(flatten)]
    pub recovery: RecoverySettings,
    #[command(flatten)]
    #[serde(flatten)]
    pub writer: WriterSettings,
    #[command(flatten)]
    #[serde(flatten)]
    pub admin: AdminSettings,
    #[command(flatten)]
    #[serde(flatten)]
    pub outbox: OutboxSettings,
    #[command(flatten)]
    #[serde(flatten)]
    pub logging: LoggingSettings,
}

/// Keys of the file that are no flag (`#[arg(skip)]`).
const FILE_ONLY_KEYS: [&str; 1] = ["rules"];

impl Settings {
    /// `self` where set, else `lower`.
    pub(super) fn over(self, lower: Settings) -> Settings {
        Settings {
            server: self.server.over(lower.server),
            storage: self.storage.over(lower.storage),
            cluster: self.cluster.over(lower.cluster),
            identity: self.identity.over(lower.identity),
            compat: self.compat.over(lower.compat),
            limits: self.limits.over(lower.limits),
            chat: self.chat.over(lower.chat),
            recovery: self.recovery.over(lower.recovery),
            writer: self.writer.over(lower.writer),
            admin: self.admin.over(lower.admin),
            outbox: self.outbox.over(lower.outbox),
            logging: self.logging.over(lower.logging),
        }
    }

    /// The settings of a TOML file; a key that is no setting is an error (a typo would
    /// otherwise leave a setting at its default in silence).
    pub fn from_toml(text: &str) -> anyhow::Result<Settings> {
        let table = toml::from_str::<toml::Table>(text)?;
        let known = Self::file_keys();
        let unknown: Vec<&str> = table
            .keys()
            .map(String::as_str)
            .filter(|key| !known.contains(*key))
            .collect();
        anyhow::ensure!(
            unknown.is_empty(),
            "unknown key {}: the keys are the long flags of `chatoxide --help` with `_`",
            unknown.join(", ")
        );
        Ok(toml::from_str(text)?)
    }

    /// Reads the TOML file at `path`.
    pub(super) fn read_file(path: &Path) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    /// The file's keys: every setting's name (the flags', derived from the same fields), and
    /// the file-only ones.
    fn file_keys() -> BTreeSet<String> {
        let flags = Self::augment_args(clap::Command::new("settings"));
        flags
            .get_arguments()
            .map(|arg| arg.get_id().to_string())
            .chain(FILE_ONLY_KEYS.map(str::to_owned))
            .collect()
    }
}

/// Every flag of the command line with its environment variable, for the documentation check.
pub fn flags() -> Vec<(String, Option<String>)> {
    super::Cli::command()
        .get_arguments()
        .filter_map(|arg| {
            let long = arg.get_long()?;
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            Some((format!("--{long}"), env))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Cli;
    use clap::Parser;

    #[test]
    fn file_keys_are_checked() {
        assert!(
            Settings::from_toml("port = 1\nmax_text_len = 5")
                .is_ok_and(|s| s.server.port == Some(1) && s.chat.max_text_len == Some(5))
        );
        let typo = Settings::from_toml("prot = 1").map_err(|e| e.to_string());
        assert!(typo.as_ref().is_err_and(|e| e.contains("prot")), "{typo:?}");
        assert!(Settings::from_toml("port = \"x\"").is_err());
    }

    #[test]
    fn a_file_key_is_its_flag_with_underscores() {
        for (flag, _) in flags().into_iter().filter(|(f, _)| f != "--config") {
            let key = flag.trim_start_matches("--").replace('-', "_");
            assert!(
                Settings::file_keys().contains(&key),
                "{flag} has no key {key}"
            );
        }
    }

    #[test]
    fn node_compat_is_a_switch() {
        let parse =
            |args: &[&str]| Cli::try_parse_from(args).map(|c| c.settings.compat.node_compat);
        assert_eq!(
            parse(&["chatoxide", "--node-compat"]).ok(),
            Some(Some(true))
        );
        assert_eq!(
            parse(&["chatoxide", "--node-compat", "false"]).ok(),
            Some(Some(false))
        );
        assert!(
            Settings::from_toml("node_compat = true")
                .is_ok_and(|s| s.compat.node_compat == Some(true))
        );
    }

    /// The rows of the README's configuration table: flag and environment variable.
    fn readme_rows() -> BTreeSet<(String, Option<String>)> {
        let cell = |c: &str| Some(c.trim().trim_matches('`').to_owned()).filter(|c| !c.is_empty());
        include_str!("../../README.md")
            .lines()
            .filter(|line| line.starts_with("| `--"))
            .filter_map(|line| {
                let mut cells = line.split('|').skip(1);
                Some((cell(cells.next()?)?, cell(cells.next()?)))
            })
            .collect()
    }

    #[test]
    fn the_readme_table_lists_every_flag_of_help_and_no_other() {
        let help: BTreeSet<_> = flags().into_iter().collect();
        let readme = readme_rows();
        assert!(help.len() > 40, "{help:?}");
        assert_eq!(
            help.difference(&readme).collect::<Vec<_>>(),
            Vec::<&(String, Option<String>)>::new(),
            "in --help, not in the README table"
        );
        assert_eq!(
            readme.difference(&help).collect::<Vec<_>>(),
            Vec::<&(String, Option<String>)>::new(),
            "in the README table, not in --help"
        );
    }
}
