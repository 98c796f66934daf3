//! The resolved configuration: the layers read (flags and environment over the file over the
//! defaults), each section resolved and validated, into one [`Config`].

use super::{
    AdminCredentials, AuthMode, Cli, ClusterConfig, Command, LogFormat, OutboxConfig,
    RecoveryConfig, Settings, TokenRules,
};
use crate::chat::{LargeRoom, TextLimit};
use crate::limits::RateConfig;
use crate::rules::Rules;
use crate::secret::{Secret, SecretUrl};
use crate::store::WriterConfig;
use clap::Parser;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The resolved configuration the server runs with. Its `Debug` is safe to log: every secret in
/// it prints as `[redacted]`, every URL without its password.
#[derive(Clone, Debug)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub database_url: SecretUrl,
    /// Connections of the read pool; `None`: the backend's default.
    pub database_pool: Option<u32>,
    /// Set: this process is a node of the cluster on that Redis.
    pub cluster: Option<ClusterConfig>,
    pub auth: AuthMode,
    /// How tokens are checked beyond their signature (token mode only).
    pub token: TokenRules,
    pub rates: RateConfig,
    pub api_key: Option<Secret>,
    pub log_filter: String,
    pub log_format: LogFormat,
    pub text_limit: TextLimit,
    /// Empty: any origin.
    pub cors_origins: Vec<String>,
    pub shutdown_grace: Duration,
    /// Packets buffered per socket.
    pub socket_buffer: usize,
    /// Bytes read at once from a WebSocket connection (a buffer every connection holds).
    pub ws_read_buffer: usize,
    /// Bytes a client may send in one request or WebSocket message.
    pub max_payload: usize,
    /// How long a session may wait before its Socket.IO `connect`.
    pub connect_timeout: Duration,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// How long data to a client may go unacknowledged before the connection is dropped.
    pub tcp_user_timeout: Duration,
    pub writer: WriterConfig,
    /// Whether Node socket.io's defaults were taken (the effective values are the fields above).
    pub node_compat: bool,
    /// Relay rules for legacy frontends.
    pub rules: Rules,
    /// Connection state recovery: where, and for how long.
    pub recovery: RecoveryConfig,
    /// Rooms past this many members are large (docs/protocol.md#large-rooms).
    pub large_room: LargeRoom,
    /// Set: the admin UI's namespace is served, behind these credentials.
    pub admin: Option<AdminCredentials>,
    /// Whether `/` serves the chat page.
    pub chat_page: bool,
    /// Set: this folder's files are served at `/`, before the chat page (checked at start).
    pub static_dir: Option<PathBuf>,
    /// Set: every stored message, edit and delete is published on this broker.
    pub outbox: Option<OutboxConfig>,
}

impl Config {
    /// Reads the command line and environment, then the TOML file it names, if any.
    pub fn load() -> anyhow::Result<Self> {
        Self::load_with_command().map(|(config, _)| config)
    }

    /// As [`Config::load`], with the subcommand given, if any (none: serve).
    pub fn load_with_command() -> anyhow::Result<(Self, Option<Command>)> {
        let cli = Cli::parse();
        let file = match &cli.config {
            Some(path) => Settings::read_file(path)?,
            None => Settings::default(),
        };
        Ok((Self::resolve(cli.settings, file)?, cli.command))
    }

    /// Merges `first` (flags and environment) over `file` over the defaults, and validates.
    pub fn resolve(first: Settings, file: Settings) -> anyhow::Result<Self> {
        let s = first.over(file);
        let (node_compat, defaults) = s.compat.resolve();
        let server = s.server.resolve(&defaults);
        let storage = s.storage.resolve()?;
        let access = s.identity.resolve()?;
        let chat = s.chat.resolve()?;
        let logging = s.logging.resolve()?;
        let recovery = s.recovery.resolve(&chat.rules)?;
        let cluster = s.cluster.resolve()?;
        anyhow::ensure!(
            !(recovery.is_on()
                && cluster
                    .as_ref()
                    .is_some_and(|c| c.adapter == super::AdapterKind::Node)),
            "connection state recovery needs chatoxide's cluster adapter: Node's Redis adapter has none (redis_adapter = \"node\")"
        );
        Ok(Self {
            host: server.host,
            port: server.port,
            database_url: storage.database_url,
            database_pool: storage.database_pool,
            cluster,
            auth: access.auth,
            token: access.token,
            rates: s.limits.resolve(&defaults)?,
            api_key: access.api_key,
            log_filter: logging.log_filter,
            log_format: logging.log_format,
            text_limit: chat.text_limit,
            cors_origins: server.cors_origins,
            shutdown_grace: server.shutdown_grace,
            socket_buffer: server.socket_buffer,
            ws_read_buffer: server.ws_read_buffer,
            max_payload: server.max_payload,
            connect_timeout: server.connect_timeout,
            ping_interval: server.ping_interval,
            ping_timeout: server.ping_timeout,
            tcp_user_timeout: server.tcp_user_timeout,
            writer: s.writer.resolve()?,
            node_compat,
            rules: chat.rules,
            recovery,
            large_room: chat.large_room,
            admin: s.admin.resolve()?,
            chat_page: server.chat_page,
            static_dir: server.static_dir,
            outbox: s.outbox.resolve()?,
        })
    }

    /// This process's name in logs, metrics and the admin UI: its cluster node id, else the host
    /// name.
    pub fn node_name(&self) -> String {
        (self.cluster.as_ref()).map_or_else(crate::telemetry::hostname, |c| c.node_id.clone())
    }

    /// A configuration for tests and embedding: open mode, an in-memory database, any port.
    pub fn ephemeral() -> Self {
        let mut config = Self::resolve(Settings::default(), Settings::default())
            .unwrap_or_else(|_| unreachable!("the defaults are valid"));
        config.host = IpAddr::from([127, 0, 0, 1]);
        config.port = 0;
        config.database_url = "sqlite::memory:".into();
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(first: Settings, file: Settings) -> Result<Config, String> {
        Config::resolve(first, file).map_err(|e| e.to_string())
    }

    fn file(text: &str) -> Settings {
        Settings::from_toml(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn flags_and_env_win_over_the_file_which_wins_over_defaults() {
        let Ok(first) = Cli::try_parse_from(["chatoxide", "--port", "4000"]) else {
            panic!("--port is a flag");
        };
        let config = resolve(first.settings, file("port = 5000\nmax_text_len = 10"));
        let config = config.map(|c| (c.port, c.text_limit.0, c.log_filter));
        assert_eq!(config, Ok((4000, 10, "info".to_owned())));
    }

    #[test]
    fn node_compat_takes_node_defaults_and_explicit_settings_still_win() {
        let resolve = |text: &str| {
            resolve(Settings::default(), file(text)).map(|c| {
                let r = &c.rates;
                (
                    c.max_payload,
                    c.connect_timeout.as_secs(),
                    r.message.is_some(),
                    r.connect.is_some(),
                )
            })
        };
        assert_eq!(resolve(""), Ok((100_000, 10, true, true)));
        assert_eq!(
            resolve("node_compat = true"),
            Ok((1_000_000, 45, false, true))
        );
        let explicit = "node_compat = true\nmax_payload = 5000\nlimit_message = \"3:1\"";
        assert_eq!(resolve(explicit), Ok((5_000, 45, true, true)));
    }

    #[test]
    fn the_example_file_is_valid() {
        let example = file(include_str!("../../docs/chatoxide.example.toml"));
        let config = resolve(Settings::default(), example);
        assert_eq!(
            config.map(|c| (c.port, c.cors_origins.len())),
            Ok((3000, 0))
        );
    }

    #[test]
    fn the_classic_node_chat_example_is_one_rule() {
        let example = file(include_str!("../../examples/classic-node-chat.toml"));
        let config = resolve(Settings::default(), example);
        assert_eq!(config.map(|c| c.rules.len()), Ok(1));
    }

    #[test]
    fn the_chat_page_is_on_unless_turned_off() {
        let chat_page = |first: Settings, file: Settings| resolve(first, file).map(|c| c.chat_page);
        assert_eq!(
            chat_page(Settings::default(), Settings::default()),
            Ok(true)
        );
        let off = file("chat_page = false");
        assert_eq!(chat_page(Settings::default(), off.clone()), Ok(false));
        let Ok(on) = Cli::try_parse_from(["chatoxide", "--chat-page", "true"]) else {
            panic!("--chat-page is a flag");
        };
        assert_eq!(
            chat_page(on.settings, off),
            Ok(true),
            "the flag wins over the file"
        );
    }

    #[test]
    fn a_config_full_of_secrets_prints_none_of_them() {
        let settings = |args: &[&str]| match Cli::try_parse_from(args) {
            Ok(cli) => cli.settings,
            Err(e) => panic!("{e}"),
        };
        let hs256 = settings(&[
            "chatoxide",
            "--jwt-secret=jwt-SECRET-1",
            "--api-key=api-SECRET-2",
            "--admin-username=admin",
            "--admin-password=admin-SECRET-3",
            "--database-url=postgres://chat:db-SECRET-4@db/chat",
            "--redis-url=redis://:redis-SECRET-5@redis:6379",
        ]);
        let pem = "-----BEGIN PUBLIC KEY-----\npem-SECRET-6\n-----END PUBLIC KEY-----";
        let rs256 = settings(&["chatoxide", &format!("--jwt-public-key={pem}")]);
        let shown = [hs256, rs256].map(|s| {
            let config = resolve(s.clone(), Settings::default());
            format!("{s:?} {config:?} {:?}", config.as_ref().map(|c| &c.auth))
        });
        for shown in shown {
            assert!(
                shown.contains("[redacted]") && shown.contains("Ok("),
                "{shown}"
            );
            assert!(!shown.contains("SECRET"), "{shown}");
        }
    }

    #[test]
    fn recovery_needs_chatoxide_s_cluster_adapter() {
        let with = |adapter: &str| {
            let text = format!(
                "redis_url = \"redis://127.0.0.1:6379\"\nredis_adapter = \"{adapter}\"\nconnection_state_recovery = true"
            );
            resolve(Settings::default(), file(&text)).map(|c| c.recovery.is_on())
        };
        assert_eq!(with("socketioxide"), Ok(true));
        let node = with("node");
        assert!(
            node.as_ref().is_err_and(|e| e.contains("recovery")),
            "{node:?}"
        );
    }
}
