//! Delivering events and room changes: through the adapter to every node, and when the adapter
//! cannot reach the other nodes (Redis is out of reach), to this node's sockets alone. Local
//! delivery never waits on Redis, and never stops for it.

use crate::telemetry::names;
use serde::Serialize;
use socketioxide::BroadcastError;
use socketioxide::adapter::Adapter;
use socketioxide::operators::BroadcastOperators;
use std::sync::atomic::{AtomicU64, Ordering};

/// The label room changes are counted under.
pub(super) const ROOMS: &str = "rooms";

/// One broadcast in this many has its audience on this node counted.
const AUDIENCE_SAMPLE: u64 = 16;
static BROADCASTS_SEEN: AtomicU64 = AtomicU64::new(0);

/// Emits `name` to the sockets `select` picks. `select` is called again, made local, when the
/// other nodes are out of reach. A failure is counted and logged, never turned into a failed
/// command: what was stored stays stored, and clients catch up through history.
pub(super) async fn emit<A, T>(
    select: impl Fn() -> BroadcastOperators<A>,
    name: &'static str,
    payload: &T,
) where
    A: Adapter,
    T: Serialize + ?Sized,
{
    emit_named(select, name, name, payload).await;
}

/// [`emit`] for an event whose name is not known until run time (a relay rule's), counted in
/// metrics under `label`.
pub(super) async fn emit_named<A, T>(
    select: impl Fn() -> BroadcastOperators<A>,
    name: &str,
    label: &'static str,
    payload: &T,
) where
    A: Adapter,
    T: Serialize + ?Sized,
{
    metrics::counter!(names::BROADCASTS, "event" => label).increment(1);
    // Counting a broadcast's audience walks its sockets once more: one broadcast in
    // AUDIENCE_SAMPLE pays for it, so that the count stays off the fan-out's cost.
    if BROADCASTS_SEEN
        .fetch_add(1, Ordering::Relaxed)
        .is_multiple_of(AUDIENCE_SAMPLE)
    {
        let here = select().local().sockets().len();
        metrics::histogram!(names::BROADCAST_AUDIENCE, "event" => label).record(here as f64);
    }
    let failure = match select().emit(name, payload).await {
        Ok(()) => return,
        Err(BroadcastError::Adapter(err)) => {
            metrics::counter!(names::FANOUT_FALLBACKS, "event" => label).increment(1);
            tracing::debug!(error = %err, event = name, "other nodes out of reach: delivered on this node only");
            match select().local().emit(name, payload).await {
                Ok(()) => return,
                Err(err) => err,
            }
        }
        Err(err) => err,
    };
    // Per-socket failures (a full buffer) leave that client to catch up through history.
    metrics::counter!(names::BROADCAST_FAILURES, "event" => label).increment(1);
    tracing::debug!(error = %failure, event = name, "broadcast did not reach every socket");
}

/// Whether sockets enter a room or leave it.
#[derive(Clone, Copy, Debug)]
pub(super) enum Move {
    Join,
    Leave,
}

/// Puts the sockets `select` picks in `room`, or takes them out, on every node; on this node
/// alone when the others are out of reach (their sockets are put right at their next connect).
pub(super) async fn enroll<A: Adapter>(
    select: impl Fn() -> BroadcastOperators<A>,
    room: &str,
    change: Move,
) {
    let everywhere = match change {
        Move::Join => select().join(room.to_owned()).await,
        Move::Leave => select().leave(room.to_owned()).await,
    };
    let Err(err) = everywhere else { return };
    metrics::counter!(names::FANOUT_FALLBACKS, "event" => ROOMS).increment(1);
    tracing::warn!(error = %err, room, ?change, "other nodes out of reach: room change made on this node only");
    let here = match change {
        Move::Join => select().local().join(room.to_owned()).await,
        Move::Leave => select().local().leave(room.to_owned()).await,
    };
    if let Err(err) = here {
        tracing::error!(error = %err, room, ?change, "room change failed on this node");
    }
}
