//! The outbox relay: publishes the room events the writer wrote to the outbox table
//! (store/outbox.rs, in the transaction of their change) on a broker, in order, and forgets each
//! once the broker confirmed it. A broker that is down or slow delays the events and never chat:
//! commands are answered when their change commits, whatever the broker does.
//!
//! - **At least once, with a stable id.** An event is deleted only after the broker confirmed
//!   it; one published whose confirmation was lost (a crash, a cut) is published again with the
//!   same id: NATS JetStream drops it within its duplicate window, RabbitMQ consumers
//!   de-duplicate by `message_id`. [`stable_id`]: the message's id for `message`.
//! - **In order.** Events are published in the order of the outbox, which within a room is the
//!   order of their commits (a room's changes take its row's lock); a batch stops at its first
//!   failure and is taken up from there.
//! - **One relay on a cluster.** The node that holds the lease (a row renewed every few seconds)
//!   publishes; when it stops or dies, another takes over once the lease has expired.

mod amqp;
mod nats;

use crate::chat::RoomEvent;
use crate::config::{BrokerKind, OutboxConfig};
use crate::store::{Store, Unsent, now_ms};
use crate::telemetry::names;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Events read and published at once.
const BATCH: u64 = 256;
/// How long a lease lasts unless renewed, and how often its holder renews it.
pub const LEASE_TTL: Duration = Duration::from_secs(10);
const RENEW_AFTER: Duration = Duration::from_secs(3);
/// How often the relay looks for events other nodes wrote (this node's wake it at once), and
/// how often a node without the lease asks for it.
const POLL: Duration = Duration::from_millis(250);
const STANDBY_POLL: Duration = Duration::from_secs(1);
/// Waits after a failure: doubled each time, up to the last.
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The operations the failures metric names.
pub const OPERATIONS: [&str; 3] = ["connect", "publish", "store"];

/// Why a publication stopped: what the broker confirmed before it, and the error.
pub(crate) struct Stopped {
    pub confirmed: usize,
    pub op: &'static str,
    pub error: anyhow::Error,
}

/// The broker the outbox publishes on.
enum Broker {
    Nats(nats::Nats),
    Amqp(amqp::Amqp),
}

impl Broker {
    fn new(config: &OutboxConfig) -> Self {
        match config.broker {
            BrokerKind::Nats => Self::Nats(nats::Nats::new(config)),
            BrokerKind::Amqp => Self::Amqp(amqp::Amqp::new(config)),
        }
    }

    /// Publishes `events` in order; Ok once the broker confirmed every one.
    async fn publish(&mut self, events: &[Unsent]) -> Result<(), Stopped> {
        match self {
            Self::Nats(broker) => broker.publish(events).await,
            Self::Amqp(broker) => broker.publish(events).await,
        }
    }
}

/// The relay task; it ends at `stop`, letting its lease go.
pub fn start(
    store: Store,
    config: &OutboxConfig,
    holder: String,
) -> (JoinHandle<()>, CancellationToken) {
    let stop = CancellationToken::new();
    let relay = Relay {
        store,
        broker: Broker::new(config),
        holder,
        stop: stop.clone(),
        lease: None,
        backoff: BACKOFF_FIRST,
    };
    (tokio::spawn(relay.run()), stop)
}

struct Relay {
    store: Store,
    broker: Broker,
    /// This node's name on the lease.
    holder: String,
    stop: CancellationToken,
    /// When this node last took or renewed the lease, while it holds it.
    lease: Option<Instant>,
    backoff: Duration,
}

impl Relay {
    async fn run(mut self) {
        tracing::info!(holder = %self.holder, "the outbox relay runs");
        while !self.stop.is_cancelled() {
            if !self.hold_lease().await {
                self.pause(STANDBY_POLL).await;
                continue;
            }
            let unsent = match self.store.unsent(BATCH).await {
                Ok(unsent) => unsent,
                Err(err) => {
                    self.failed("store", &anyhow::Error::new(err)).await;
                    continue;
                }
            };
            report_lag(unsent.first());
            if unsent.is_empty() {
                tokio::select! {
                    () = self.store.outbox_written() => {}
                    () = tokio::time::sleep(POLL) => {}
                    () = self.stop.cancelled() => {}
                }
                continue;
            }
            self.relay(&unsent).await;
        }
        if self.lease.is_some()
            && let Err(err) = self.store.release_outbox(&self.holder).await
        {
            tracing::debug!(error = %err, "the outbox lease was not released");
        }
        metrics::gauge!(names::OUTBOX_RELAY).set(0.0);
    }

    /// Publishes a batch and forgets what the broker confirmed.
    async fn relay(&mut self, unsent: &[Unsent]) {
        let (confirmed, stopped) = match self.broker.publish(unsent).await {
            Ok(()) => (unsent.len(), None),
            Err(stopped) => (stopped.confirmed.min(unsent.len()), Some(stopped)),
        };
        let seqs: Vec<i64> = unsent[..confirmed].iter().map(|u| u.seq).collect();
        metrics::counter!(names::OUTBOX_PUBLISHED).increment(seqs.len() as u64);
        if let Err(err) = self.store.sent(&seqs).await {
            // Published, not forgotten: they will be published again, with the same ids.
            self.failed("store", &anyhow::Error::new(err)).await;
            return;
        }
        match stopped {
            None => self.backoff = BACKOFF_FIRST,
            Some(Stopped { op, error, .. }) => self.failed(op, &error).await,
        }
    }

    /// Whether this node holds the lease, taking or renewing it when due.
    async fn hold_lease(&mut self) -> bool {
        if self.lease.is_some_and(|at| at.elapsed() < RENEW_AFTER) {
            return true;
        }
        match self.store.lease_outbox(&self.holder, LEASE_TTL).await {
            Ok(held) => {
                if held != self.lease.is_some() {
                    tracing::info!(holder = %self.holder, held, "the outbox relay's lease");
                }
                self.lease = held.then(Instant::now);
                metrics::gauge!(names::OUTBOX_RELAY).set(if held { 1.0 } else { 0.0 });
                if !held {
                    metrics::gauge!(names::OUTBOX_LAG).set(0.0);
                }
                held
            }
            Err(err) => {
                // Unsure whether it still holds it: it stops publishing until it knows.
                self.lease = None;
                metrics::gauge!(names::OUTBOX_RELAY).set(0.0);
                self.failed("store", &anyhow::Error::new(err)).await;
                false
            }
        }
    }

    /// Counts a failure, says it, and waits before the next try (longer each time).
    async fn failed(&mut self, op: &'static str, error: &anyhow::Error) {
        metrics::counter!(names::OUTBOX_FAILURES, "op" => op).increment(1);
        tracing::warn!(op, error = format!("{error:#}"), retry_in = ?self.backoff, "the outbox could not relay");
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        self.pause(wait).await;
    }

    async fn pause(&self, wait: Duration) {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = self.stop.cancelled() => {}
        }
    }
}

/// The age of the oldest event not confirmed yet (0 when there is none).
fn report_lag(oldest: Option<&Unsent>) {
    let lag_ms = oldest.map_or(0, |u| now_ms().saturating_sub(u.created_at).max(0));
    metrics::gauge!(names::OUTBOX_LAG).set(lag_ms as f64 / 1000.0);
}

/// An event's id, the same every time it is published: the message's id for `message`, and the
/// message's id, the event and the event's place in the outbox for an edit or a delete (a
/// message may be edited many times).
pub fn stable_id(unsent: &Unsent) -> String {
    match unsent.event.kind {
        crate::chat::Kind::Message => unsent.event.id.clone(),
        kind => format!("{}:{}:{}", unsent.event.id, kind.event(), unsent.seq),
    }
}

/// The room as one token of a subject or routing key: `.` separates tokens there, and is
/// written `%2E` (room names have no `%`).
pub fn room_token(room: &str) -> String {
    room.replace('.', "%2E")
}

/// What a consumer receives: `{ event, room, id, message_id, data }`, `data` being the Socket.IO
/// event's argument.
pub fn body(unsent: &Unsent) -> Vec<u8> {
    let RoomEvent {
        room,
        kind,
        id,
        data,
    } = &unsent.event;
    let text = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        r#"{{"event":{},"room":{},"id":{},"message_id":{},"data":{data}}}"#,
        text(kind.event()),
        text(room),
        text(&stable_id(unsent)),
        text(id),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Kind;

    fn unsent(kind: Kind, seq: i64) -> Unsent {
        Unsent {
            seq,
            event: RoomEvent {
                room: "team.a".to_owned(),
                kind,
                id: "0000000000000001000000000000002a".to_owned(),
                data: r#"{"x":"y \"z\""}"#.to_owned(),
            },
            created_at: 0,
        }
    }

    #[test]
    fn a_message_s_id_is_its_own_and_an_edit_s_is_unique() {
        assert_eq!(
            stable_id(&unsent(Kind::Message, 7)),
            "0000000000000001000000000000002a"
        );
        assert_eq!(
            stable_id(&unsent(Kind::MessageUpdated, 7)),
            "0000000000000001000000000000002a:message_updated:7"
        );
        assert_ne!(
            stable_id(&unsent(Kind::MessageUpdated, 7)),
            stable_id(&unsent(Kind::MessageUpdated, 8))
        );
    }

    #[test]
    fn the_body_is_json_with_the_event_s_data_as_is() {
        let body: serde_json::Value =
            serde_json::from_slice(&body(&unsent(Kind::MessageDeleted, 3))).unwrap_or_default();
        assert_eq!(body["event"], "message_deleted");
        assert_eq!(body["room"], "team.a");
        assert_eq!(body["data"]["x"], "y \"z\"");
        assert_eq!(room_token("team.a"), "team%2Ea");
    }
}
