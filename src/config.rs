//! Configuration: one `Settings` layer type read from flags, environment and a TOML file, merged
//! in that order of precedence over the defaults into one resolved [`Config`].
//!
//! Every setting is documented once, here; `chatoxide --help` prints the same text.

use crate::chat::{LargeRoom, TextLimit};
use crate::limits::{Rate, RateConfig};
use crate::rules::{RuleSpec, Rules};
use crate::store::WriterConfig;
use anyhow::Context;
use clap::Parser;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Command line of the `chatoxide` binary.
#[derive(Debug, Parser)]
#[command(
    name = "chatoxide",
    version,
    about = "A Socket.IO-compatible chat server"
)]
pub struct Cli {
    /// Optional TOML file with any of the settings below (keys as the long flags, with `_`).
    #[arg(long, env = "CHATOXIDE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
    /// What to do instead of serving; none: serve chat.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// A one-off task run with the server's settings (the database above all), instead of serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Load message history exported from another backend, one JSON object per line
    /// (docs/migrating-from-node.md#importing-history); exits 1 if any line was rejected.
    Import(ImportArgs),
}

/// `chatoxide import FILE`: settings go before `import` (`chatoxide --config x.toml import FILE`).
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// NDJSON file: `room`, `user`, `text`, `created_at` (RFC 3339 or Unix milliseconds), optional `id`.
    pub file: PathBuf,
    /// Lines stored per transaction, 1 to 10000 [default: 500].
    #[arg(long)]
    pub batch: Option<usize>,
}

/// One layer of settings: every field optional, so that layers can be merged.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on [default: 0.0.0.0].
    #[arg(long, env = "HOST")]
    pub host: Option<IpAddr>,
    /// Port to listen on; 0 picks a free one [default: 3000].
    #[arg(long, env = "PORT")]
    pub port: Option<u16>,
    /// `sqlite://path?mode=rwc`, `sqlite::memory:` or `postgres://…` [default: sqlite://chatoxide.db?mode=rwc].
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Connections of the read pool (history, members, memberships); the writer has its own one
    /// (two on PostgreSQL) [default: 8 on SQLite, 16 on PostgreSQL].
    #[arg(long, env = "CHATOXIDE_DATABASE_POOL")]
    pub database_pool: Option<u32>,
    /// Redis 7 (RESP3) URL: set, this process is a node of a cluster.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel, so that clusters can share a Redis [default: chatoxide].
    #[arg(long, env = "REDIS_PREFIX")]
    pub redis_prefix: Option<String>,
    /// Milliseconds after which the users of a node that stopped sending heartbeats (it crashed
    /// or lost Redis) drop out of presence [default: 15000].
    #[arg(long, env = "CHATOXIDE_PRESENCE_TTL_MS")]
    pub presence_ttl_ms: Option<u64>,
    /// Messages from other nodes that may wait to be delivered here, per channel; past that the
    /// newest are dropped and counted in `chatoxide_redis_dropped_total` [default: 65536].
    #[arg(long, env = "CHATOXIDE_REDIS_BUFFER")]
    pub redis_buffer: Option<usize>,
    /// This node's name in presence and logs [default: a random id].
    #[arg(long, env = "CHATOXIDE_NODE_ID")]
    pub node_id: Option<String>,
    /// HS256 secret: set, the server runs in token mode.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// RS256 public key, as PEM text or a path to a PEM file: set, the server runs in token mode.
    #[arg(long, env = "JWT_PUBLIC_KEY", hide_env_values = true)]
    pub jwt_public_key: Option<String>,
    /// Seconds of clock difference forgiven when checking a token's `exp` and `nbf` [default: 5].
    #[arg(long, env = "JWT_LEEWAY_SECS")]
    pub jwt_leeway_secs: Option<u64>,
    /// Set: a token's `iss` must be this.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Set: a token's `aud` must include this.
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Whether a socket is disconnected when its token expires (after an `error` event with
    /// code `unauthorized`); false lets a session outlive its token [default: true].
    #[arg(long, env = "CHATOXIDE_END_SESSION_ON_EXPIRY")]
    pub end_session_on_expiry: Option<bool>,
    /// Node socket.io's defaults where they differ from chatoxide's (docs/migrating-from-node.md):
    /// 1 MB payloads, a 45 s connect timeout, no per-user command limits. Settings given
    /// explicitly still win [default: false].
    #[arg(long, env = "CHATOXIDE_NODE_COMPAT", num_args = 0..=1, default_missing_value = "true")]
    pub node_compat: Option<bool>,
    /// Rate limits on (the defaults, or the limits below) or all off [default: true].
    #[arg(long, env = "CHATOXIDE_RATE_LIMITS")]
    pub rate_limits: Option<bool>,
    /// `message` per user, as BURST:PER_SECOND, or `off` [default: 20:5].
    #[arg(long, env = "CHATOXIDE_LIMIT_MESSAGE")]
    pub limit_message: Option<String>,
    /// `join` per user [default: 10:1].
    #[arg(long, env = "CHATOXIDE_LIMIT_JOIN")]
    pub limit_join: Option<String>,
    /// `history` per user [default: 20:5].
    #[arg(long, env = "CHATOXIDE_LIMIT_HISTORY")]
    pub limit_history: Option<String>,
    /// `edit` and `delete` together, per user [default: 10:2].
    #[arg(long, env = "CHATOXIDE_LIMIT_EDIT")]
    pub limit_edit: Option<String>,
    /// `typing` per user; over it the signal is dropped in silence [default: 5:2].
    #[arg(long, env = "CHATOXIDE_LIMIT_TYPING")]
    pub limit_typing: Option<String>,
    /// `POST /api/rooms/{room}/messages`, all callers together [default: 2000:1000].
    #[arg(long, env = "CHATOXIDE_LIMIT_PUBLISH")]
    pub limit_publish: Option<String>,
    /// Socket.IO handshakes per client IP address [default: 10000:1000].
    #[arg(long, env = "CHATOXIDE_LIMIT_CONNECT")]
    pub limit_connect: Option<String>,
    /// Sessions one client IP address may hold open before their Socket.IO `connect` (a new
    /// one past that answers 429), or `off` [default: 10000].
    #[arg(long, env = "CHATOXIDE_MAX_PENDING_SESSIONS")]
    pub max_pending_sessions: Option<String>,
    /// `rate_limited` answers a socket may collect before it is disconnected [default: 30:1].
    #[arg(long, env = "CHATOXIDE_LIMIT_STRIKES")]
    pub limit_strikes: Option<String>,
    /// Take the client's address from the last `X-Forwarded-For` entry (set it behind a load
    /// balancer that appends it, never when clients can reach the server directly) [default: false].
    #[arg(long, env = "CHATOXIDE_TRUST_X_FORWARDED_FOR")]
    pub trust_x_forwarded_for: Option<bool>,
    /// Rooms one user may be a member of; joining another answers `forbidden` [default: 1000].
    #[arg(long, env = "CHATOXIDE_MAX_ROOMS_PER_USER")]
    pub max_rooms_per_user: Option<u64>,
    /// Rooms with more members than this are large: their joins, leaves and read marks are not
    /// told to every member; their member count is, once a second [default: 1000].
    #[arg(long, env = "CHATOXIDE_LARGE_ROOM")]
    pub large_room: Option<u64>,
    /// Sockets one user may hold on this node; more are refused with `rate_limited` [default: 20].
    #[arg(long, env = "CHATOXIDE_MAX_SOCKETS_PER_USER")]
    pub max_sockets_per_user: Option<usize>,
    /// Bearer key of the HTTP message routes; unset, publishing over HTTP answers 403.
    #[arg(long, env = "API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Log filter, in `RUST_LOG` syntax [default: info].
    #[arg(long, env = "RUST_LOG")]
    pub log_filter: Option<String>,
    /// `pretty` for people, `json` for machines [default: pretty].
    #[arg(long, env = "LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Longest message text, in characters after trimming [default: 4000].
    #[arg(long, env = "CHATOXIDE_MAX_TEXT_LEN")]
    pub max_text_len: Option<usize>,
    /// Allowed CORS origins, comma-separated; `*` allows any [default: *].
    #[arg(long, env = "CHATOXIDE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Option<Vec<String>>,
    /// Seconds a shutdown may take to finish what is in flight [default: 10].
    #[arg(long, env = "CHATOXIDE_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// Packets that may wait to be sent to one socket; a client that lets more pile up is
    /// disconnected when an answer is due [default: 1024].
    #[arg(long, env = "CHATOXIDE_SOCKET_BUFFER")]
    pub socket_buffer: Option<usize>,
    /// Bytes of the read buffer each WebSocket connection holds; larger messages take several
    /// reads [default: 1024].
    #[arg(long, env = "CHATOXIDE_WS_READ_BUFFER")]
    pub ws_read_buffer: Option<usize>,
    /// Largest Socket.IO payload a client may send, in bytes: per HTTP long-polling request and
    /// per WebSocket message; binary attachments together count too [default: 100000].
    #[arg(long, env = "CHATOXIDE_MAX_PAYLOAD")]
    pub max_payload: Option<usize>,
    /// Milliseconds a new session may take to send its Socket.IO `connect` before it is closed
    /// (Node's socket.io waits 45 s; clients send it at once) [default: 10000].
    #[arg(long, env = "CHATOXIDE_CONNECT_TIMEOUT_MS")]
    pub connect_timeout_ms: Option<u64>,
    /// Milliseconds between Engine.IO pings [default: 25000, as Node's socket.io].
    #[arg(long, env = "CHATOXIDE_PING_INTERVAL_MS")]
    pub ping_interval_ms: Option<u64>,
    /// Milliseconds a client has to answer a ping; one that does not (it stopped reading) is
    /// disconnected [default: 20000, as Node's socket.io].
    #[arg(long, env = "CHATOXIDE_PING_TIMEOUT_MS")]
    pub ping_timeout_ms: Option<u64>,
    /// Milliseconds data sent to a client may stay unacknowledged (a client that stopped
    /// reading, a dead peer) before the connection is dropped, TCP_USER_TIMEOUT [default: 30000].
    #[arg(long, env = "CHATOXIDE_TCP_USER_TIMEOUT_MS")]
    pub tcp_user_timeout_ms: Option<u64>,
    /// Most changes (messages, joins, leaves, read marks, edits, deletes) committed in one
    /// transaction [default: 512].
    #[arg(long, env = "CHATOXIDE_WRITE_BATCH_MAX")]
    pub write_batch_max: Option<usize>,
    /// Microseconds the writer waits for more changes before committing; 0 commits what has
    /// queued up during the previous commit [default: 0].
    #[arg(long, env = "CHATOXIDE_WRITE_BATCH_WAIT_US")]
    pub write_batch_wait_us: Option<u64>,
    /// Changes that may wait for the writer; past that a command answers `unavailable` at once [default: 8192].
    #[arg(long, env = "CHATOXIDE_WRITE_QUEUE")]
    pub write_queue: Option<usize>,
    /// Milliseconds a change may wait in the writer's queue before it is refused [default: 5000].
    #[arg(long, env = "CHATOXIDE_WRITE_DEADLINE_MS")]
    pub write_deadline_ms: Option<u64>,
    /// Milliseconds a commit may take before its senders get `unavailable` [default: 5000].
    #[arg(long, env = "CHATOXIDE_COMMIT_TIMEOUT_MS")]
    pub commit_timeout_ms: Option<u64>,
    /// User name of the Socket.IO admin UI (`/admin` namespace); with the password set, the
    /// namespace is served, else it does not exist.
    #[arg(long, env = "ADMIN_USERNAME")]
    pub admin_username: Option<String>,
    /// Password of the Socket.IO admin UI.
    #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Serve the chat page (plain HTML and JavaScript embedded in the binary) at `/`; false:
    /// `/` answers 404 [default: true].
    #[arg(long, env = "CHATOXIDE_CHAT_PAGE")]
    pub chat_page: Option<bool>,
    /// Relay rules for frontends written for a Node server (`[[rules]]` tables; the TOML file
    /// only; docs/migrating-from-node.md).
    #[arg(skip)]
    pub rules: Option<Vec<RuleSpec>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// How a socket proves who it is.
#[derive(Clone, Debug)]
pub enum AuthMode {
    /// `auth.username` is believed.
    Open,
    /// A JWT signed with this HS256 secret.
    Hs256Secret(String),
    /// A JWT signed with the private half of this RS256 public key (PEM).
    Rs256PublicKey(String),
}

/// A cluster node's settings (docs/cluster.md).
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub redis_url: String,
    /// Prefix of every key and channel this cluster uses in Redis.
    pub prefix: String,
    /// How long a node's users stay in presence after its last heartbeat.
    pub presence_ttl: Duration,
    /// Messages from other nodes buffered per channel before some are dropped.
    pub buffer: usize,
    pub node_id: String,
}

/// The checks a token passes beyond its signature, and what its expiry does to a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRules {
    pub leeway_secs: u64,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub end_session_on_expiry: bool,
}

impl Default for TokenRules {
    fn default() -> Self {
        Self {
            leeway_secs: 5,
            issuer: None,
            audience: None,
            end_session_on_expiry: true,
        }
    }
}

/// The resolved configuration the server runs with.
#[derive(Clone, Debug)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub database_url: String,
    /// Connections of the read pool; `None`: the backend's default.
    pub database_pool: Option<u32>,
    /// Set: this process is a node of the cluster on that Redis.
    pub cluster: Option<ClusterConfig>,
    pub auth: AuthMode,
    /// How tokens are checked beyond their signature (token mode only).
    pub token: TokenRules,
    pub rates: RateConfig,
    pub api_key: Option<String>,
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
    /// Rooms past this many members are large (docs/protocol.md#large-rooms).
    pub large_room: LargeRoom,
    /// Set: the admin UI's namespace is served, behind these credentials.
    pub admin: Option<AdminCredentials>,
    /// Whether `/` serves the chat page.
    pub chat_page: bool,
}

/// The admin UI's user name and password.
#[derive(Clone)]
pub struct AdminCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCredentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
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
            Some(path) => Self::read_file(path)?,
            None => Settings::default(),
        };
        Ok((Self::resolve(cli.settings, file)?, cli.command))
    }

    fn read_file(path: &PathBuf) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    /// Merges `first` (flags and environment) over `file` over the defaults, and validates.
    pub fn resolve(first: Settings, file: Settings) -> anyhow::Result<Self> {
        let s = first.over(file);
        let defaults = Defaults::of(&s);
        let writer = writer_config(&s)?;
        let cluster = cluster_config(&s)?;
        let rates = rate_config(&s, &defaults)?;
        let token = TokenRules {
            leeway_secs: s
                .jwt_leeway_secs
                .unwrap_or(TokenRules::default().leeway_secs),
            issuer: s.jwt_issuer.clone().filter(|i| !i.is_empty()),
            audience: s.jwt_audience.clone().filter(|a| !a.is_empty()),
            end_session_on_expiry: s.end_session_on_expiry.unwrap_or(true),
        };
        anyhow::ensure!(token.leeway_secs <= 300, "jwt_leeway_secs must be 0 to 300");
        let auth = match (s.jwt_secret, s.jwt_public_key) {
            (Some(_), Some(_)) => anyhow::bail!("set JWT_SECRET or JWT_PUBLIC_KEY, not both"),
            (Some(secret), None) if secret.is_empty() => anyhow::bail!("JWT_SECRET is empty"),
            (Some(secret), None) => AuthMode::Hs256Secret(secret),
            (None, Some(key)) => AuthMode::Rs256PublicKey(read_pem(key)?),
            (None, None) => AuthMode::Open,
        };
        let max_text_len = s.max_text_len.unwrap_or(TextLimit::default().0);
        anyhow::ensure!(
            (1..=1_000_000).contains(&max_text_len),
            "max_text_len must be 1 to 1000000"
        );
        let cors_origins = s.cors_origins.clone().unwrap_or_default();
        let rules = Rules::parse(s.rules.as_deref().unwrap_or_default())
            .map_err(|why| anyhow::anyhow!("{why}"))?;
        let admin = admin_credentials(s.admin_username.clone(), s.admin_password.clone())?;
        anyhow::ensure!(
            s.database_pool.is_none_or(|n| (1..=1000).contains(&n)),
            "database_pool must be 1 to 1000"
        );
        let large_room = LargeRoom(s.large_room.unwrap_or(LargeRoom::default().0));
        anyhow::ensure!(large_room.0 >= 1, "large_room must be at least 1");
        Ok(Self {
            host: s.host.unwrap_or(IpAddr::from([0, 0, 0, 0])),
            port: s.port.unwrap_or(3000),
            database_url: s
                .database_url
                .unwrap_or_else(|| "sqlite://chatoxide.db?mode=rwc".to_owned()),
            database_pool: s.database_pool,
            cluster,
            token,
            rates,
            auth,
            api_key: s.api_key.filter(|k| !k.is_empty()),
            log_filter: s.log_filter.unwrap_or_else(|| "info".to_owned()),
            log_format: s.log_format.unwrap_or(LogFormat::Pretty),
            text_limit: TextLimit(max_text_len),
            cors_origins: cors_origins.into_iter().filter(|o| o != "*").collect(),
            shutdown_grace: Duration::from_secs(s.shutdown_grace_secs.unwrap_or(10)),
            socket_buffer: s.socket_buffer.unwrap_or(1024).max(16),
            ws_read_buffer: s.ws_read_buffer.unwrap_or(1024).clamp(256, 1 << 20),
            max_payload: s
                .max_payload
                .unwrap_or(defaults.max_payload)
                .clamp(1_000, 100_000_000),
            connect_timeout: Duration::from_millis(
                s.connect_timeout_ms
                    .unwrap_or(defaults.connect_timeout_ms)
                    .clamp(100, 300_000),
            ),
            ping_interval: Duration::from_millis(
                s.ping_interval_ms.unwrap_or(25_000).clamp(100, 600_000),
            ),
            ping_timeout: Duration::from_millis(
                s.ping_timeout_ms.unwrap_or(20_000).clamp(100, 600_000),
            ),
            tcp_user_timeout: Duration::from_millis(
                s.tcp_user_timeout_ms
                    .unwrap_or(30_000)
                    .clamp(1_000, 3_600_000),
            ),
            writer,
            node_compat: s.node_compat.unwrap_or(false),
            rules,
            large_room,
            admin,
            chat_page: s.chat_page.unwrap_or(true),
        })
    }

    /// A configuration for tests and embedding: open mode, an in-memory database, any port.
    pub fn ephemeral() -> Self {
        let mut config = Self::resolve(Settings::default(), Settings::default())
            .unwrap_or_else(|_| unreachable!("the defaults are valid"));
        config.host = IpAddr::from([127, 0, 0, 1]);
        config.port = 0;
        config.database_url = "sqlite::memory:".to_owned();
        config
    }

    /// The configuration as it is safe to log: secrets replaced by whether they are set.
    pub fn redacted(&self) -> String {
        let auth = match self.auth {
            AuthMode::Open => "open",
            AuthMode::Hs256Secret(_) => "token (HS256)",
            AuthMode::Rs256PublicKey(_) => "token (RS256)",
        };
        format!(
            "listen={}:{} database={} redis={} auth={auth} api_key={} max_text_len={} max_payload={} connect_timeout={:?} cors={} shutdown_grace={:?} writer={:?} admin_ui={} rules={} chat_page={} node_compat={}",
            self.host,
            self.port,
            redact_url(&self.database_url),
            self.cluster.as_ref().map_or_else(
                || "unset".to_owned(),
                |c| format!(
                    "{} prefix={} node={} presence_ttl={:?} buffer={}",
                    redact_url(&c.redis_url),
                    c.prefix,
                    c.node_id,
                    c.presence_ttl,
                    c.buffer
                )
            ),
            if self.api_key.is_some() {
                "set"
            } else {
                "unset"
            },
            self.text_limit.0,
            self.max_payload,
            self.connect_timeout,
            if self.cors_origins.is_empty() {
                "*".to_owned()
            } else {
                self.cors_origins.join(",")
            },
            self.shutdown_grace,
            self.writer,
            self.admin
                .as_ref()
                .map_or("off", |_| "on (credentials set)"),
            self.rules.len(),
            self.chat_page,
            self.node_compat,
        )
    }
}

impl Settings {
    /// `self` where set, else `lower`.
    fn over(self, lower: Settings) -> Settings {
        Settings {
            host: self.host.or(lower.host),
            port: self.port.or(lower.port),
            database_url: self.database_url.or(lower.database_url),
            database_pool: self.database_pool.or(lower.database_pool),
            redis_url: self.redis_url.or(lower.redis_url),
            redis_prefix: self.redis_prefix.or(lower.redis_prefix),
            presence_ttl_ms: self.presence_ttl_ms.or(lower.presence_ttl_ms),
            redis_buffer: self.redis_buffer.or(lower.redis_buffer),
            node_id: self.node_id.or(lower.node_id),
            jwt_secret: self.jwt_secret.or(lower.jwt_secret),
            jwt_public_key: self.jwt_public_key.or(lower.jwt_public_key),
            jwt_leeway_secs: self.jwt_leeway_secs.or(lower.jwt_leeway_secs),
            jwt_issuer: self.jwt_issuer.or(lower.jwt_issuer),
            jwt_audience: self.jwt_audience.or(lower.jwt_audience),
            end_session_on_expiry: self.end_session_on_expiry.or(lower.end_session_on_expiry),
            node_compat: self.node_compat.or(lower.node_compat),
            rate_limits: self.rate_limits.or(lower.rate_limits),
            limit_message: self.limit_message.or(lower.limit_message),
            limit_join: self.limit_join.or(lower.limit_join),
            limit_history: self.limit_history.or(lower.limit_history),
            limit_edit: self.limit_edit.or(lower.limit_edit),
            limit_typing: self.limit_typing.or(lower.limit_typing),
            limit_publish: self.limit_publish.or(lower.limit_publish),
            limit_connect: self.limit_connect.or(lower.limit_connect),
            max_pending_sessions: self.max_pending_sessions.or(lower.max_pending_sessions),
            large_room: self.large_room.or(lower.large_room),
            limit_strikes: self.limit_strikes.or(lower.limit_strikes),
            max_sockets_per_user: self.max_sockets_per_user.or(lower.max_sockets_per_user),
            trust_x_forwarded_for: self.trust_x_forwarded_for.or(lower.trust_x_forwarded_for),
            max_rooms_per_user: self.max_rooms_per_user.or(lower.max_rooms_per_user),
            api_key: self.api_key.or(lower.api_key),
            log_filter: self.log_filter.or(lower.log_filter),
            log_format: self.log_format.or(lower.log_format),
            max_text_len: self.max_text_len.or(lower.max_text_len),
            cors_origins: self.cors_origins.or(lower.cors_origins),
            shutdown_grace_secs: self.shutdown_grace_secs.or(lower.shutdown_grace_secs),
            socket_buffer: self.socket_buffer.or(lower.socket_buffer),
            ws_read_buffer: self.ws_read_buffer.or(lower.ws_read_buffer),
            max_payload: self.max_payload.or(lower.max_payload),
            connect_timeout_ms: self.connect_timeout_ms.or(lower.connect_timeout_ms),
            ping_interval_ms: self.ping_interval_ms.or(lower.ping_interval_ms),
            ping_timeout_ms: self.ping_timeout_ms.or(lower.ping_timeout_ms),
            tcp_user_timeout_ms: self.tcp_user_timeout_ms.or(lower.tcp_user_timeout_ms),
            write_batch_max: self.write_batch_max.or(lower.write_batch_max),
            write_batch_wait_us: self.write_batch_wait_us.or(lower.write_batch_wait_us),
            write_queue: self.write_queue.or(lower.write_queue),
            write_deadline_ms: self.write_deadline_ms.or(lower.write_deadline_ms),
            commit_timeout_ms: self.commit_timeout_ms.or(lower.commit_timeout_ms),
            admin_username: self.admin_username.or(lower.admin_username),
            admin_password: self.admin_password.or(lower.admin_password),
            chat_page: self.chat_page.or(lower.chat_page),
            rules: self.rules.or(lower.rules),
        }
    }
}

/// The defaults that `--node-compat` changes: Node socket.io's own where they differ from
/// chatoxide's (a Node frontend must not trip over a smaller limit). One place for both sets.
struct Defaults {
    /// Node: `maxHttpBufferSize` 1e6.
    max_payload: usize,
    /// Node: `connectTimeout` 45000.
    connect_timeout_ms: u64,
    /// Node has no per-user command limits.
    per_user_limits: bool,
}

impl Defaults {
    const CHATOXIDE: Self = Self {
        max_payload: 100_000,
        connect_timeout_ms: 10_000,
        per_user_limits: true,
    };
    const NODE: Self = Self {
        max_payload: 1_000_000,
        connect_timeout_ms: 45_000,
        per_user_limits: false,
    };

    fn of(s: &Settings) -> Self {
        if s.node_compat.unwrap_or(false) {
            Self::NODE
        } else {
            Self::CHATOXIDE
        }
    }
}

/// Both or neither: a user name without a password (or the reverse) is a mistake, not a
/// namespace left open.
fn admin_credentials(
    username: Option<String>,
    password: Option<String>,
) -> anyhow::Result<Option<AdminCredentials>> {
    match (
        username.filter(|u| !u.is_empty()),
        password.filter(|p| !p.is_empty()),
    ) {
        (Some(username), Some(password)) => Ok(Some(AdminCredentials { username, password })),
        (None, None) => Ok(None),
        _ => {
            anyhow::bail!("set both ADMIN_USERNAME and ADMIN_PASSWORD for the admin UI, or neither")
        }
    }
}

/// The rate limits: the defaults, each replaced where set (`off` turns one off), or none.
fn rate_config(s: &Settings, defaults: &Defaults) -> anyhow::Result<RateConfig> {
    let d = RateConfig::default();
    if s.rate_limits == Some(false) {
        return Ok(RateConfig {
            trust_x_forwarded_for: s.trust_x_forwarded_for.unwrap_or(false),
            ..RateConfig::off()
        });
    }
    let pending_sessions = match s.max_pending_sessions.as_deref() {
        None => d.pending_sessions,
        Some("off") => None,
        Some(n) => match n.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Some(n),
            _ => anyhow::bail!("max_pending_sessions: '{n}' is not a positive number or off"),
        },
    };
    // Node socket.io has no per-user limits: a Node frontend may emit faster than a person types.
    let per_user = |rate: Option<Rate>| rate.filter(|_| defaults.per_user_limits);
    let pick = |name: &str, set: &Option<String>, default: Option<Rate>| match set.as_deref() {
        None => Ok(default),
        Some("off") => Ok(None),
        Some(text) => Rate::parse(text)
            .map(Some)
            .map_err(|why| anyhow::anyhow!("limit_{name}: {why}")),
    };
    Ok(RateConfig {
        message: pick("message", &s.limit_message, per_user(d.message))?,
        join: pick("join", &s.limit_join, per_user(d.join))?,
        history: pick("history", &s.limit_history, per_user(d.history))?,
        edit: pick("edit", &s.limit_edit, per_user(d.edit))?,
        read: per_user(d.read),
        typing: pick("typing", &s.limit_typing, per_user(d.typing))?,
        publish: pick("publish", &s.limit_publish, d.publish)?,
        connect: pick("connect", &s.limit_connect, d.connect)?,
        pending_sessions,
        strikes: pick("strikes", &s.limit_strikes, d.strikes)?,
        sockets_per_user: Some(s.max_sockets_per_user.unwrap_or(20).max(1)),
        trust_x_forwarded_for: s.trust_x_forwarded_for.unwrap_or(false),
        rooms_per_user: Some(s.max_rooms_per_user.unwrap_or(1000).max(1)),
    })
}

/// Where and how this process joins a cluster; `None` without a Redis URL.
fn cluster_config(s: &Settings) -> anyhow::Result<Option<ClusterConfig>> {
    let Some(redis_url) = s.redis_url.clone().filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let prefix = s
        .redis_prefix
        .clone()
        .unwrap_or_else(|| "chatoxide".to_owned());
    anyhow::ensure!(
        !prefix.is_empty() && !prefix.contains('#'),
        "REDIS_PREFIX must be non-empty and without '#'"
    );
    let presence_ttl = Duration::from_millis(s.presence_ttl_ms.unwrap_or(15_000));
    anyhow::ensure!(
        (Duration::from_secs(3)..=Duration::from_secs(3600)).contains(&presence_ttl),
        "presence_ttl_ms must be 3000 to 3600000"
    );
    let buffer = s.redis_buffer.unwrap_or(65_536);
    anyhow::ensure!(
        (16..=16_777_216).contains(&buffer),
        "redis_buffer must be 16 to 16777216"
    );
    let node_id = match s.node_id.clone().filter(|n| !n.is_empty()) {
        Some(id) => id,
        None => uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
    };
    anyhow::ensure!(
        node_id.len() <= 64 && !node_id.contains(['#', ':']),
        "node_id must be at most 64 characters, without '#' or ':'"
    );
    Ok(Some(ClusterConfig {
        redis_url,
        prefix,
        presence_ttl,
        buffer,
        node_id,
    }))
}

fn writer_config(s: &Settings) -> anyhow::Result<WriterConfig> {
    let d = WriterConfig::default();
    let config = WriterConfig {
        max_batch: s.write_batch_max.unwrap_or(d.max_batch),
        max_wait: s
            .write_batch_wait_us
            .map_or(d.max_wait, Duration::from_micros),
        queue: s.write_queue.unwrap_or(d.queue),
        queue_deadline: s
            .write_deadline_ms
            .map_or(d.queue_deadline, Duration::from_millis),
        commit_timeout: s
            .commit_timeout_ms
            .map_or(d.commit_timeout, Duration::from_millis),
    };
    anyhow::ensure!(
        (1..=10_000).contains(&config.max_batch),
        "write_batch_max must be 1 to 10000"
    );
    anyhow::ensure!(
        !config.queue_deadline.is_zero(),
        "write_deadline_ms must be at least 1"
    );
    anyhow::ensure!(
        !config.commit_timeout.is_zero(),
        "commit_timeout_ms must be at least 1"
    );
    anyhow::ensure!(config.queue > 0, "write_queue must be at least 1");
    Ok(config)
}

/// PEM text as given, or the contents of the file it names.
fn read_pem(key: String) -> anyhow::Result<String> {
    if key.trim_start().starts_with("-----BEGIN") {
        return Ok(key);
    }
    std::fs::read_to_string(&key).with_context(|| format!("reading JWT_PUBLIC_KEY file {key}"))
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_env_win_over_the_file_which_wins_over_defaults() {
        let first = Settings {
            port: Some(4000),
            ..Default::default()
        };
        let file = Settings {
            port: Some(5000),
            max_text_len: Some(10),
            ..Default::default()
        };
        let config = Config::resolve(first, file).map(|c| (c.port, c.text_limit.0, c.log_filter));
        assert_eq!(config.ok(), Some((4000, 10, "info".to_owned())));
    }

    #[test]
    fn both_jwt_keys_is_an_error() {
        let s = Settings {
            jwt_secret: Some("a".into()),
            jwt_public_key: Some("-----BEGIN".into()),
            ..Default::default()
        };
        assert!(Config::resolve(s, Settings::default()).is_err());
    }

    #[test]
    fn a_redis_url_makes_a_cluster_node() {
        let single = Config::resolve(Settings::default(), Settings::default());
        assert!(single.is_ok_and(|c| c.cluster.is_none()));
        let s = Settings {
            redis_url: Some("redis://127.0.0.1:6379".into()),
            ..Default::default()
        };
        let node = Config::resolve(s, Settings::default()).map(|c| c.cluster);
        let node = node.ok().flatten();
        assert_eq!(
            node.as_ref()
                .map(|c| (c.prefix.as_str(), c.presence_ttl, c.node_id.len())),
            Some(("chatoxide", Duration::from_secs(15), 12))
        );
    }

    #[test]
    fn cluster_settings_are_checked() {
        let with = |f: fn(&mut Settings)| {
            let mut s = Settings {
                redis_url: Some("redis://127.0.0.1:6379".into()),
                ..Default::default()
            };
            f(&mut s);
            Config::resolve(s, Settings::default()).map(|c| c.cluster.is_some())
        };
        assert!(with(|s| s.redis_prefix = Some("a#b".into())).is_err());
        assert!(with(|s| s.presence_ttl_ms = Some(2999)).is_err());
        assert!(with(|s| s.redis_buffer = Some(0)).is_err());
        assert!(with(|s| s.node_id = Some("a:b".into())).is_err());
        assert!(with(|s| s.redis_url = Some(String::new())).is_ok_and(|c| !c));
    }

    #[test]
    fn node_compat_takes_node_defaults_and_explicit_settings_still_win() {
        let resolve = |s: Settings| {
            Config::resolve(s, Settings::default()).map(|c| {
                let r = &c.rates;
                (
                    c.max_payload,
                    c.connect_timeout.as_secs(),
                    r.message.is_some(),
                    r.connect.is_some(),
                )
            })
        };
        assert_eq!(
            resolve(Settings::default()).ok(),
            Some((100_000, 10, true, true))
        );
        let compat = Settings {
            node_compat: Some(true),
            ..Default::default()
        };
        assert_eq!(
            resolve(compat.clone()).ok(),
            Some((1_000_000, 45, false, true))
        );
        let explicit = Settings {
            max_payload: Some(5_000),
            limit_message: Some("3:1".into()),
            ..compat
        };
        assert_eq!(resolve(explicit).ok(), Some((5_000, 45, true, true)));
    }

    #[test]
    fn node_compat_is_a_switch() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|c| c.settings.node_compat);
        assert_eq!(
            parse(&["chatoxide", "--node-compat"]).ok(),
            Some(Some(true))
        );
        assert_eq!(
            parse(&["chatoxide", "--node-compat", "false"]).ok(),
            Some(Some(false))
        );
        assert!(
            toml::from_str::<Settings>("node_compat = true")
                .is_ok_and(|s| s.node_compat == Some(true))
        );
    }

    #[test]
    fn no_subcommand_serves_and_import_takes_a_file_after_the_settings() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map_err(|e| e.to_string());
        assert!(parse(&["chatoxide", "--port", "4000"]).is_ok_and(|c| c.command.is_none()));
        let import = parse(&["chatoxide", "--config", "x.toml", "import", "h.ndjson"]);
        let Ok(Cli {
            config,
            command: Some(Command::Import(args)),
            ..
        }) = import
        else {
            panic!("not an import: {import:?}");
        };
        assert_eq!(config, Some(PathBuf::from("x.toml")));
        assert_eq!((args.file, args.batch), (PathBuf::from("h.ndjson"), None));
        let batch = parse(&["chatoxide", "import", "--batch", "20", "h.ndjson"]);
        assert!(
            batch.is_ok_and(
                |c| matches!(c.command, Some(Command::Import(a)) if a.batch == Some(20))
            )
        );
        assert!(parse(&["chatoxide", "import"]).is_err());
    }

    #[test]
    fn file_keys_are_checked() {
        assert!(toml::from_str::<Settings>("port = 1\nmax_text_len = 5").is_ok());
        assert!(toml::from_str::<Settings>("prot = 1").is_err());
    }

    #[test]
    fn the_example_file_is_valid() {
        let example = toml::from_str::<Settings>(include_str!("../docs/chatoxide.example.toml"));
        let config = example
            .map_err(|e| e.to_string())
            .and_then(|s| Config::resolve(Settings::default(), s).map_err(|e| e.to_string()));
        assert_eq!(
            config.map(|c| (c.port, c.cors_origins.len())),
            Ok((3000, 0))
        );
    }

    #[test]
    fn the_classic_node_chat_example_is_one_rule() {
        let example =
            toml::from_str::<Settings>(include_str!("../examples/classic-node-chat.toml"));
        let config = example
            .map_err(|e| e.to_string())
            .and_then(|s| Config::resolve(Settings::default(), s).map_err(|e| e.to_string()));
        assert_eq!(config.map(|c| c.rules.len()), Ok(1));
    }

    #[test]
    fn admin_credentials_are_both_or_neither() {
        let with = |u: Option<&str>, p: Option<&str>| {
            admin_credentials(u.map(str::to_owned), p.map(str::to_owned))
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
                password: "secret".to_owned(),
            }
        );
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn the_chat_page_is_on_unless_turned_off() {
        let resolve = |first: Settings, file: Settings| {
            Config::resolve(first, file)
                .map(|c| c.chat_page)
                .map_err(|e| e.to_string())
        };
        assert_eq!(resolve(Settings::default(), Settings::default()), Ok(true));
        let Ok(off) = toml::from_str::<Settings>("chat_page = false") else {
            panic!("chat_page is a file key");
        };
        assert_eq!(resolve(Settings::default(), off.clone()), Ok(false));
        let Ok(on) = Cli::try_parse_from(["chatoxide", "--chat-page", "true"]) else {
            panic!("--chat-page is a flag");
        };
        assert_eq!(
            resolve(on.settings, off),
            Ok(true),
            "the flag wins over the file"
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
    }
}
