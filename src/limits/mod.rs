//! Rate limits: how much each user may do, how often (the `governor` crate's GCRA limiters,
//! one per allowance of [`crate::wire::Allowance`], keyed by user id). Every command draws on
//! one: a refused command answers `rate_limited` with the time after which it would pass;
//! `typing` over its limit is dropped in silence.
//!
//! Limits are per node: a user whose sockets are spread over several nodes gets each node's
//! allowance (a cluster-wide limit would put a Redis round trip in front of every command).

mod pending;

pub use pending::PendingSession;
use pending::{PENDING_RETRY, PendingSessions};

use crate::chat::{ChatError, ErrorCode};
use crate::telemetry::names;
use crate::wire::{Allowance, Command};
use axum::extract::ConnectInfo;
use axum::http;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// A burst and a sustained rate: `burst` actions at once, then `per_second` a second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub burst: u32,
    pub per_second: f64,
}

impl Rate {
    /// `"BURST:PER_SECOND"`, for example `"20:5"`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("'{text}' is not BURST:PER_SECOND (for example 20:5)");
        let (burst, per_second) = text.split_once(':').ok_or_else(bad)?;
        let rate = Self {
            burst: burst.trim().parse().map_err(|_| bad())?,
            per_second: per_second.trim().parse().map_err(|_| bad())?,
        };
        let sane = rate.burst >= 1
            && rate.per_second.is_finite()
            && (0.001..=1_000_000.0).contains(&rate.per_second);
        if sane { Ok(rate) } else { Err(bad()) }
    }

    fn quota(self) -> Option<Quota> {
        let period = Duration::from_secs_f64(1.0 / self.per_second);
        Some(Quota::with_period(period)?.allow_burst(NonZeroU32::new(self.burst)?))
    }
}

/// The configured rates; `None` turns a limit off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateConfig {
    /// `message` (and relayed events).
    pub message: Option<Rate>,
    /// `join` and `leave` together.
    pub join: Option<Rate>,
    /// `history`, `members` and `presence` together.
    pub history: Option<Rate>,
    /// `edit` and `delete` together.
    pub edit: Option<Rate>,
    /// `read` (read marks).
    pub read: Option<Rate>,
    pub typing: Option<Rate>,
    /// `POST /api/rooms/{room}/messages`, all callers together (a trusted backend).
    pub publish: Option<Rate>,
    /// Socket.IO handshakes per client address.
    pub connect: Option<Rate>,
    /// Sessions one client address may hold before their Socket.IO `connect`.
    pub pending_sessions: Option<usize>,
    /// `rate_limited` answers one socket may collect; past them it is disconnected.
    pub strikes: Option<Rate>,
    /// Sockets one user may hold on this node.
    pub sockets_per_user: Option<usize>,
    /// Whether a client's address is the last `X-Forwarded-For` entry (behind a balancer).
    pub trust_x_forwarded_for: bool,
    /// Rooms one user may be a member of.
    pub rooms_per_user: Option<u64>,
}

impl Default for RateConfig {
    /// Sized for people chatting: a burst, then a few a second. The per-address limits are
    /// sized for a proxy or a NAT in front of thousands of clients that all reconnect at once
    /// (docs/protocol.md#rate-limits says what a flood from one address costs).
    fn default() -> Self {
        let rate = |burst, per_second| Some(Rate { burst, per_second });
        Self {
            message: rate(20, 5.0),
            join: rate(10, 1.0),
            history: rate(20, 5.0),
            edit: rate(10, 2.0),
            // A client marks what it has seen as it scrolls and as messages arrive.
            read: rate(30, 10.0),
            typing: rate(5, 2.0),
            publish: rate(2000, 1000.0),
            connect: rate(10_000, 1000.0),
            pending_sessions: Some(10_000),
            strikes: rate(30, 1.0),
            sockets_per_user: Some(20),
            trust_x_forwarded_for: false,
            rooms_per_user: Some(1000),
        }
    }
}

impl RateConfig {
    /// Every limit off (benchmarks against servers that have none).
    pub fn off() -> Self {
        Self {
            message: None,
            join: None,
            history: None,
            edit: None,
            read: None,
            typing: None,
            publish: None,
            connect: None,
            pending_sessions: None,
            strikes: None,
            sockets_per_user: None,
            trust_x_forwarded_for: false,
            rooms_per_user: None,
        }
    }
}

type Limiter = Arc<DefaultKeyedRateLimiter<String>>;

/// Every limit, as the rate-limited metric names them: each command by its name, and these.
pub fn limit_labels() -> impl Iterator<Item = &'static str> {
    Command::ALL.into_iter().map(Command::name).chain([
        "publish",
        API_READ,
        "connect",
        "session",
        "admin_login",
        "rooms_per_user",
        "sockets_per_user",
    ])
}

/// One socket's tolerance for being refused: a client that keeps hammering a limit is
/// disconnected rather than answered for ever.
#[derive(Clone)]
pub struct Strikes(Arc<DefaultDirectRateLimiter>);

impl Strikes {
    /// Records a refusal; `false` once the socket has had too many.
    pub fn tolerate(&self) -> bool {
        self.0.check().is_ok()
    }
}

/// The limiters. Cheap to clone.
#[derive(Clone, Default)]
pub struct RateLimits {
    message: Option<Limiter>,
    join: Option<Limiter>,
    history: Option<Limiter>,
    edit: Option<Limiter>,
    read: Option<Limiter>,
    typing: Option<Limiter>,
    publish: Option<Limiter>,
    /// `GET /api/rooms/{room}/messages` by a caller that is not a user, per client address.
    api_read: Option<Limiter>,
    connect: Option<Limiter>,
    admin_login: Option<Limiter>,
    pending: Option<PendingSessions>,
    strikes: Option<Quota>,
    sockets_per_user: Option<usize>,
    trust_x_forwarded_for: bool,
    rooms_per_user: Option<u64>,
    /// One clock for every limiter: making one calibrates it (a few microseconds of CPUID
    /// calls), too dear for each new socket.
    clock: DefaultClock,
}

impl RateLimits {
    pub fn new(config: &RateConfig) -> Self {
        let limiter = |rate: Option<Rate>| {
            rate.and_then(Rate::quota)
                .map(|q| Arc::new(RateLimiter::keyed(q)))
        };
        Self {
            message: limiter(config.message),
            join: limiter(config.join),
            history: limiter(config.history),
            edit: limiter(config.edit),
            read: limiter(config.read),
            typing: limiter(config.typing),
            publish: limiter(config.publish),
            // Not a setting: a backend reads at the rate it may publish.
            api_read: limiter(config.publish),
            connect: limiter(config.connect),
            // Tied to the handshakes' switch; not a setting: nobody needs to guess faster.
            admin_login: limiter(config.connect.map(|_| ADMIN_LOGINS)),
            pending: config.pending_sessions.map(PendingSessions::new),
            strikes: config.strikes.and_then(Rate::quota),
            sockets_per_user: config.sockets_per_user,
            trust_x_forwarded_for: config.trust_x_forwarded_for,
            rooms_per_user: config.rooms_per_user,
            clock: DefaultClock::default(),
        }
    }

    /// Rooms one user may be a member of (checked in the join's transaction), if limited.
    pub fn rooms_per_user(&self) -> Option<u64> {
        self.rooms_per_user
    }

    /// `forbidden` when a socket in `held` rooms may not enter another.
    pub fn another_room(&self, held: u64) -> Result<(), ChatError> {
        match self.rooms_per_user {
            Some(max) if held >= max => {
                metrics::counter!(names::RATE_LIMITED, "limit" => "rooms_per_user").increment(1);
                Err(ChatError::too_many_rooms(max))
            }
            _ => Ok(()),
        }
    }

    /// The client's address: the peer's, or behind a trusted balancer the last address it
    /// appended to `X-Forwarded-For`.
    pub fn client_address(
        &self,
        headers: &http::HeaderMap,
        extensions: &http::Extensions,
    ) -> String {
        if !self.trust_x_forwarded_for && headers.contains_key("x-forwarded-for") {
            warn_untrusted_forwarding();
        }
        let forwarded = self
            .trust_x_forwarded_for
            .then(|| headers.get_all("x-forwarded-for").iter().next_back())
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        match forwarded {
            Some(address) => address.to_owned(),
            None => extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_owned(), |peer| peer.0.ip().to_string()),
        }
    }

    /// Sockets one user may hold on this node, if limited.
    pub fn sockets_per_user(&self) -> Option<usize> {
        self.sockets_per_user
    }

    /// `rate_limited` for a user who holds `held` sockets here, its limit.
    pub fn too_many_sockets(&self, held: usize) -> ChatError {
        metrics::counter!(names::RATE_LIMITED, "limit" => "sockets_per_user").increment(1);
        ChatError::new(
            ErrorCode::RateLimited,
            format!("at most {held} connections per user; close one first"),
        )
    }

    /// A Socket.IO handshake (on any namespace, the admin UI's logins too) within its client
    /// address's allowance; answers the address, for the logs.
    pub fn handshake(&self, request: &http::request::Parts) -> Result<String, ChatError> {
        let address = self.client_address(&request.headers, &request.extensions);
        admit(
            self.connect.as_ref(),
            &format!("handshake {address}"),
            "connect",
        )?;
        Ok(address)
    }

    /// A new Engine.IO session (a first polling request or a WebSocket upgrade without a
    /// session id) from `address`: it costs memory from its first byte, so an address may
    /// hold only so many that have not connected yet. The slot returned goes with the session
    /// (in its request head) and is given back when it connects ([`RateLimits::connected`])
    /// or closes, whichever comes first.
    pub fn open_session(&self, address: &str) -> Result<Option<PendingSession>, ChatError> {
        let Some(pending) = &self.pending else {
            return Ok(None);
        };
        pending.take(address).map(Some).ok_or_else(|| {
            metrics::counter!(names::RATE_LIMITED, "limit" => "session").increment(1);
            let mut error = rate_limited(PENDING_RETRY);
            error.message = format!(
                "too many sessions from this address have not connected yet; retry in {} ms",
                PENDING_RETRY.as_millis()
            );
            error
        })
    }

    /// The session that `request` opened has connected (a handshake was admitted): it no
    /// longer counts against its address.
    pub fn connected(request: &http::request::Parts) {
        if let Some(slot) = request.extensions.get::<PendingSession>() {
            slot.release();
        }
    }

    /// An admin UI login attempt from `address`, within its allowance.
    pub fn admin_login(&self, address: &str) -> Result<(), ChatError> {
        admit(self.admin_login.as_ref(), address, "admin_login")
    }

    /// A new socket's tolerance for refusals; `None` when abuse never disconnects.
    pub fn strikes(&self) -> Option<Strikes> {
        self.strikes.map(|quota| {
            Strikes(Arc::new(RateLimiter::direct_with_clock(
                quota,
                self.clock.clone(),
            )))
        })
    }

    /// `rate_limited` (with a retry hint) when `user` has used up the allowance `command`
    /// draws on. (A `typing` signal refused here is dropped by its caller, not answered.)
    pub fn check(&self, command: Command, user: &str) -> Result<(), ChatError> {
        admit(self.of(command.allowance()).as_ref(), user, command.name())
    }

    fn of(&self, allowance: Allowance) -> &Option<Limiter> {
        match allowance {
            Allowance::Messages => &self.message,
            Allowance::Memberships => &self.join,
            Allowance::Reads => &self.history,
            Allowance::Edits => &self.edit,
            Allowance::ReadMarks => &self.read,
            Allowance::Typing => &self.typing,
        }
    }

    /// The HTTP publish route's allowance, shared by all its callers.
    pub fn publish(&self) -> Result<(), ChatError> {
        admit(self.publish.as_ref(), "", "publish")
    }

    /// A history page read over HTTP by a caller that is no user (the API key, or anyone in
    /// open mode without a key), from client `address`: the publish rate, per address.
    pub fn api_read(&self, address: &str) -> Result<(), ChatError> {
        admit(self.api_read.as_ref(), address, API_READ)
    }

    /// Forgets users whose allowance is full again, so that the limiters do not grow with
    /// every user ever seen. Called now and then.
    pub fn forget_idle(&self) {
        for limiter in [
            &self.message,
            &self.join,
            &self.history,
            &self.edit,
            &self.read,
            &self.typing,
            &self.publish,
            &self.api_read,
            &self.connect,
            &self.admin_login,
        ]
        .into_iter()
        .flatten()
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

fn admit(limiter: Option<&Limiter>, key: &str, limit: &'static str) -> Result<(), ChatError> {
    let Some(limiter) = limiter else {
        return Ok(());
    };
    // Allocation only for a key the limiter has not seen: the common case is a lookup.
    match limiter.check_key(&key.to_owned()) {
        Ok(()) => Ok(()),
        Err(not_until) => {
            metrics::counter!(names::RATE_LIMITED, "limit" => limit).increment(1);
            let wait = not_until.wait_time_from(limiter.clock().now());
            Err(rate_limited(wait))
        }
    }
}

/// The rate-limited metric's label for [`RateLimits::api_read`].
const API_READ: &str = "api_read";

/// Admin UI logins per client address: a burst of 20, then one a second.
const ADMIN_LOGINS: Rate = Rate {
    burst: 20,
    per_second: 1.0,
};

/// Says once per process that clients' addresses may all be a proxy's.
fn warn_untrusted_forwarding() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(
            "requests carry X-Forwarded-For, which is not trusted (CHATOXIDE_TRUST_X_FORWARDED_FOR=false): the per-address limits count every client behind that proxy as one address; set it when a balancer you control sets the header, and only then"
        );
    });
}

/// `rate_limited`, saying when to retry.
pub fn rate_limited(wait: Duration) -> ChatError {
    let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
    let mut error = ChatError::new(
        ErrorCode::RateLimited,
        format!("too many requests; retry in {ms} ms"),
    );
    error.retry_after_ms = Some(ms);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_burst_colon_per_second() {
        assert_eq!(
            Rate::parse("20:5"),
            Ok(Rate {
                burst: 20,
                per_second: 5.0
            })
        );
        for bad in ["20", "0:5", "20:0", "x:5", "20:inf", "20:-1", ""] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_burst_passes_then_the_next_is_refused_with_a_hint() {
        let limits = RateLimits::new(&RateConfig {
            // One more every 100 s: nothing refills during the test.
            message: Some(Rate {
                burst: 3,
                per_second: 0.01,
            }),
            ..RateConfig::off()
        });
        for _ in 0..3 {
            assert!(limits.check(Command::Message, "alice").is_ok());
        }
        let refused = limits.check(Command::Message, "alice").err();
        assert_eq!(
            refused.as_ref().map(|e| e.code),
            Some(ErrorCode::RateLimited)
        );
        assert!(
            refused
                .and_then(|e| e.retry_after_ms)
                .is_some_and(|ms| ms <= 100_000)
        );
        // Per user, and per kind of command.
        assert!(limits.check(Command::Message, "bob").is_ok());
        assert!(limits.check(Command::Join, "alice").is_ok());
    }

    #[test]
    fn every_command_is_limited_by_default() {
        let limits = RateLimits::new(&RateConfig::default());
        for command in Command::ALL {
            assert!(
                limits.of(command.allowance()).is_some(),
                "{} has no limit",
                command.name()
            );
        }
    }

    #[test]
    fn http_reads_count_against_the_user_or_the_address() {
        let rate = Some(Rate {
            burst: 2,
            per_second: 0.01,
        });
        let limits = RateLimits::new(&RateConfig {
            history: rate,
            publish: rate,
            ..RateConfig::off()
        });
        // A token's user: one allowance with the `history` command.
        assert!(limits.check(Command::History, "alice").is_ok());
        assert!(limits.check(Command::History, "alice").is_ok());
        let refused = limits
            .check(Command::History, "alice")
            .err()
            .map(|e| e.code);
        assert_eq!(refused, Some(ErrorCode::RateLimited));
        // Callers without a user: per address, apart from users and from publishing.
        assert!(limits.api_read("10.0.0.1").is_ok());
        assert!(limits.api_read("10.0.0.1").is_ok());
        let refused = limits.api_read("10.0.0.1").err().map(|e| e.code);
        assert_eq!(refused, Some(ErrorCode::RateLimited));
        assert!(limits.api_read("10.0.0.2").is_ok());
        assert!(limits.publish().is_ok());
    }
}
