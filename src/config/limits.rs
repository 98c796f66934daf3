//! Rate limits and bounds per user, per address and per socket (SECURITY.md lists them).

use super::compat::Defaults;
use crate::limits::{Rate, RateConfig};

section! {
    #[command(next_help_heading = "Limits")]
    pub struct LimitSettings {
        /// Rate limits on (the defaults, or the limits below) or all off [default: true].
        #[arg(long, env = "CHATOXIDE_RATE_LIMITS")]
        pub rate_limits: Option<bool>,
        /// `message` per user, as BURST:PER_SECOND, or `off` [default: 20:5].
        #[arg(long, env = "CHATOXIDE_LIMIT_MESSAGE")]
        pub limit_message: Option<String>,
        /// `join` and `leave` together, per user [default: 10:1].
        #[arg(long, env = "CHATOXIDE_LIMIT_JOIN")]
        pub limit_join: Option<String>,
        /// `history`, `members` and `presence` together, per user [default: 20:5].
        #[arg(long, env = "CHATOXIDE_LIMIT_HISTORY")]
        pub limit_history: Option<String>,
        /// `edit` and `delete` together, per user [default: 10:2].
        #[arg(long, env = "CHATOXIDE_LIMIT_EDIT")]
        pub limit_edit: Option<String>,
        /// `read` (read marks) per user [default: 30:10].
        #[arg(long, env = "CHATOXIDE_LIMIT_READ")]
        pub limit_read: Option<String>,
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
        /// Sockets one user may hold on this node; more are refused with `rate_limited` [default: 20].
        #[arg(long, env = "CHATOXIDE_MAX_SOCKETS_PER_USER")]
        pub max_sockets_per_user: Option<usize>,
    }
}

impl LimitSettings {
    /// The rate limits: the defaults, each replaced where set (`off` turns one off), or none.
    pub(super) fn resolve(self, defaults: &Defaults) -> anyhow::Result<RateConfig> {
        let d = RateConfig::default();
        let trust_x_forwarded_for = self.trust_x_forwarded_for.unwrap_or(false);
        if self.rate_limits == Some(false) {
            return Ok(RateConfig {
                trust_x_forwarded_for,
                ..RateConfig::off()
            });
        }
        let pending_sessions = match self.max_pending_sessions.as_deref() {
            None => d.pending_sessions,
            Some("off") => None,
            Some(n) => match n.trim().parse::<usize>() {
                Ok(n) if n >= 1 => Some(n),
                _ => anyhow::bail!("max_pending_sessions: '{n}' is not a positive number or off"),
            },
        };
        // Node socket.io has no per-user limits: a Node frontend may emit faster than a person types.
        let per_user = |rate: Option<Rate>| rate.filter(|_| defaults.per_user_limits);
        Ok(RateConfig {
            message: pick("message", self.limit_message, per_user(d.message))?,
            join: pick("join", self.limit_join, per_user(d.join))?,
            history: pick("history", self.limit_history, per_user(d.history))?,
            edit: pick("edit", self.limit_edit, per_user(d.edit))?,
            read: pick("read", self.limit_read, per_user(d.read))?,
            typing: pick("typing", self.limit_typing, per_user(d.typing))?,
            publish: pick("publish", self.limit_publish, d.publish)?,
            connect: pick("connect", self.limit_connect, d.connect)?,
            pending_sessions,
            strikes: pick("strikes", self.limit_strikes, d.strikes)?,
            sockets_per_user: Some(self.max_sockets_per_user.unwrap_or(20).max(1)),
            trust_x_forwarded_for,
            rooms_per_user: Some(self.max_rooms_per_user.unwrap_or(1000).max(1)),
        })
    }
}

/// The limit set as `BURST:PER_SECOND` or `off`, else the default.
fn pick(name: &str, set: Option<String>, default: Option<Rate>) -> anyhow::Result<Option<Rate>> {
    match set.as_deref() {
        None => Ok(default),
        Some("off") => Ok(None),
        Some(text) => Rate::parse(text)
            .map(Some)
            .map_err(|why| anyhow::anyhow!("limit_{name}: {why}")),
    }
}
