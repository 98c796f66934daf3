//! The node's one connection to Redis, shared by the Socket.IO adapter (pub/sub) and presence.
//!
//! socketioxide-redis's own driver holds a connection that never comes back once Redis goes
//! away, and drops messages silently when a channel's buffer is full. This driver reconnects by
//! itself (the redis crate's connection manager, re-subscribing every channel), counts what it
//! drops, and while Redis is out of reach fails at once instead of waiting: a broadcast then
//! falls back to this node's sockets without delay.

use crate::telemetry::names;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::{TcpSettings, socket2};
use redis::{AsyncCommands, FromRedisValue, IntoConnectionInfo, ProtocolVersion, PushInfo};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How often the link checks that Redis answers, and how long it waits for an answer.
const PROBE_EVERY: Duration = Duration::from_millis(500);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest a broadcast waits for Redis before it is delivered on this node only: a
/// `PUBLISH` to a healthy Redis takes well under a millisecond.
const PUBLISH_TIMEOUT: Duration = Duration::from_millis(500);
/// Data Redis has not acknowledged after this long kills the connection (TCP_USER_TIMEOUT),
/// so a dead host or a partition is noticed, and reconnected around, in seconds rather than
/// after the kernel's retransmissions give up (about 15 minutes).
const DEAD_PEER: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("Redis is out of reach")]
    Down,
    #[error("Redis did not answer in time")]
    Timeout,
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
}

type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

/// Every Redis operation, as the Redis errors metric names them.
pub const OPERATIONS: [&str; 5] = ["publish", "subscribe", "unsubscribe", "numsub", "presence"];

/// A reconnecting Redis connection with pub/sub. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Link {
    conn: ConnectionManager,
    handlers: Handlers,
    up: Arc<AtomicBool>,
}

impl Link {
    /// Connects to `url` (RESP3 is switched on here: pub/sub shares the connection).
    pub async fn connect(url: &str) -> Result<Self, LinkError> {
        let info = url.into_connection_info()?;
        let redis = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(DEAD_PEER)
            .with_interval(Duration::from_secs(1));
        let tcp = TcpSettings::default()
            .set_nodelay(true)
            .set_keepalive(keepalive)
            .set_user_timeout(DEAD_PEER);
        let client = redis::Client::open(info.set_redis_settings(redis).set_tcp_settings(tcp))?;
        let handlers: Handlers = Arc::default();
        let up = Arc::new(AtomicBool::new(true));
        let (routes, lost) = (handlers.clone(), up.clone());
        let config = ConnectionManagerConfig::new()
            .set_push_sender(move |push: PushInfo| {
                if push.kind == redis::PushKind::Disconnection {
                    // Down at once: broadcasts stop waiting on Redis until a probe answers.
                    flip(&lost, false);
                    return Ok(());
                }
                route(push, &routes);
                Ok::<(), std::convert::Infallible>(())
            })
            .set_automatic_resubscription()
            .set_connection_timeout(Some(PROBE_TIMEOUT))
            .set_response_timeout(Some(PROBE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(client, config).await?;
        metrics::gauge!(names::REDIS_UP).set(1.0);
        Ok(Self { conn, handlers, up })
    }

    /// Whether Redis answered the last probe and every call since.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// A plain connection handle for commands (presence); it reconnects as the link does.
    pub fn commands(&self) -> Result<ConnectionManager, LinkError> {
        if self.is_up() {
            Ok(self.conn.clone())
        } else {
            Err(LinkError::Down)
        }
    }

    /// Records the outcome of a call. A lost or silent connection marks Redis down until the
    /// next good probe; an error Redis answered with (OOM, NOPERM, a wrong type) does not: the
    /// connection still carries everything else.
    pub fn observe<T>(&self, op: &'static str, res: redis::RedisResult<T>) -> Result<T, LinkError> {
        res.map_err(|err| {
            metrics::counter!(names::REDIS_ERRORS, "op" => op).increment(1);
            if err.is_io_error()
                || err.is_timeout()
                || err.is_connection_dropped()
                || err.is_connection_refusal()
            {
                self.mark(false);
            } else {
                tracing::warn!(error = %err, op, "Redis refused a command");
            }
            LinkError::Redis(err)
        })
    }

    /// Asks Redis for a PONG within the probe timeout, whatever the link believes.
    pub async fn ping(&self) -> bool {
        let mut conn = self.conn.clone();
        let pong = tokio::time::timeout(
            PROBE_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
        matches!(pong, Ok(Ok(_)))
    }

    /// Probes Redis until `stop`, so that the link comes back up by itself after an outage.
    pub async fn watch(self, stop: CancellationToken) {
        let mut every = tokio::time::interval(PROBE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = stop.cancelled() => return,
            }
            let answered = self.ping().await;
            self.mark(answered);
        }
    }

    fn mark(&self, up: bool) {
        flip(&self.up, up);
    }
}

/// Sets whether Redis is up; a change is logged and exported once.
fn flip(state: &AtomicBool, up: bool) {
    if state.swap(up, Ordering::Relaxed) == up {
        return;
    }
    metrics::gauge!(names::REDIS_UP).set(if up { 1.0 } else { 0.0 });
    if up {
        tracing::info!("Redis answers again: cluster fan-out and presence resume");
    } else {
        tracing::warn!("Redis is out of reach: serving this node's sockets only until it returns");
    }
}

/// Hands a pub/sub message to the stream of its channel (or of the pattern it matched). A full
/// stream drops the message: the connection's reader must never wait, or every channel and
/// command would stall behind it.
fn route(push: PushInfo, handlers: &Handlers) {
    let Some((key, chan, payload)) = message_of(push) else {
        return;
    };
    let handlers = handlers.read().unwrap_or_else(PoisonError::into_inner);
    let Some(stream) = handlers.get(&key) else {
        tracing::debug!(chan, "message on a channel nobody listens to");
        return;
    };
    metrics::counter!(names::REDIS_RECEIVED).increment(1);
    if stream.try_send((chan, payload)).is_err() {
        metrics::counter!(names::REDIS_DROPPED).increment(1);
        tracing::warn!("a message from another node was dropped: its channel's buffer is full");
    }
}

/// The subscription a pub/sub message came through (its channel, or the pattern it matched),
/// its channel and its payload; `None` for other pushes (subscribe replies).
fn message_of(push: PushInfo) -> Option<(String, String, Vec<u8>)> {
    let pattern = match push.kind {
        redis::PushKind::Message | redis::PushKind::SMessage => false,
        redis::PushKind::PMessage => true,
        _ => return None,
    };
    let mut data = push.data.into_iter();
    let pattern = if pattern {
        Some(String::from_redis_value(data.next()?).ok()?)
    } else {
        None
    };
    let chan = String::from_redis_value(data.next()?).ok()?;
    let payload = Vec::<u8>::from_redis_value(data.next()?).ok()?;
    Some((pattern.unwrap_or_else(|| chan.clone()), chan, payload))
}

impl Link {
    /// Every message on `channels` and on the channels matching `patterns` (Redis glob
    /// syntax), with its channel, in one stream in the order Redis delivered them: a Node
    /// node's join followed by a broadcast to the room is applied before the broadcast.
    pub async fn subscribe_in_order(
        &self,
        channels: Vec<String>,
        patterns: Vec<String>,
        size: usize,
    ) -> Result<mpsc::Receiver<ChanItem>, LinkError> {
        let (tx, rx) = mpsc::channel(size);
        for key in channels.iter().chain(&patterns) {
            self.listen(key, tx.clone());
        }
        let mut conn = self.conn.clone();
        let mut res = conn.subscribe(&channels).await;
        if res.is_ok() {
            res = conn.psubscribe(&patterns).await;
        }
        if let Err(err) = self.observe("subscribe", res) {
            channels
                .iter()
                .chain(&patterns)
                .for_each(|key| self.forget(key));
            return Err(err);
        }
        Ok(rx)
    }

    /// Ends what [`Link::subscribe_in_order`] started.
    pub async fn unsubscribe_all(
        &self,
        channels: Vec<String>,
        patterns: Vec<String>,
    ) -> Result<(), LinkError> {
        channels
            .iter()
            .chain(&patterns)
            .for_each(|key| self.forget(key));
        let mut conn = self.commands()?;
        let res = conn.unsubscribe(&channels).await;
        self.observe("unsubscribe", res)?;
        let res = conn.punsubscribe(&patterns).await;
        self.observe("unsubscribe", res)
    }

    fn listen(&self, key: &str, stream: mpsc::Sender<ChanItem>) {
        self.handlers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), stream);
    }

    fn forget(&self, key: &str) {
        self.handlers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

impl Driver for Link {
    type Error = LinkError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), LinkError> {
        let mut conn = self.commands()?;
        let publish = conn.publish::<_, _, redis::Value>(chan, val);
        let Ok(res) = tokio::time::timeout(PUBLISH_TIMEOUT, publish).await else {
            metrics::counter!(names::REDIS_ERRORS, "op" => "publish").increment(1);
            self.mark(false);
            return Err(LinkError::Timeout);
        };
        self.observe("publish", res)?;
        metrics::counter!(names::REDIS_PUBLISHED).increment(1);
        Ok(())
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, LinkError> {
        let (tx, rx) = mpsc::channel(size);
        // Listening before subscribing: nothing published in between is lost.
        self.listen(&chan, tx);
        let res = self.conn.clone().subscribe(chan.as_str()).await;
        if let Err(err) = self.observe("subscribe", res) {
            self.forget(&chan);
            return Err(err);
        }
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), LinkError> {
        self.forget(&chan);
        let mut conn = self.commands()?;
        let res = conn.unsubscribe(chan).await;
        self.observe("unsubscribe", res)
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, LinkError> {
        let mut conn = self.commands()?;
        let res = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async::<(String, u16)>(&mut conn)
            .await;
        Ok(self.observe("numsub", res)?.1)
    }
}
