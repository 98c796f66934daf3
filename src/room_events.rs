//! A room's stored-message events for readers outside Socket.IO (the Server-Sent Events feed,
//! `GET /api/rooms/{room}/events`): `message`, `message_updated` and `message_deleted`, told as
//! they commit, on every node of a cluster.
//!
//! A node keeps one channel per room that has readers on it, made with the first reader and
//! dropped with the last. What commits on this node is told to them in commit order (the
//! writer's announcer calls [`RoomEvents::stored`] and its kin); on a cluster node it is also
//! published on Redis (`<prefix>:room-events`), in the same order, for the other nodes' readers,
//! and what they publish reaches this node's readers the same way. A reader that falls
//! [`BACKLOG`] events behind is cut rather than buffered for: it comes back from the store.

use crate::chat::{Message, RoomEvent};
use crate::cluster::Link;
use crate::telemetry::names;
use serde::{Deserialize, Serialize};
use socketioxide_redis::drivers::Driver;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// Events a reader may fall behind by before it is cut.
pub const BACKLOG: usize = 256;

/// Events waiting to be published on Redis; past this, they are dropped (and counted): the
/// other nodes' readers then miss them live, and find them in the store when they come back.
const PUBLISH_BACKLOG: usize = 4096;

/// An event as published on Redis: the node that committed it skips its own.
#[derive(Serialize, Deserialize)]
struct Envelope {
    node: String,
    event: RoomEvent,
}

type Rooms = Mutex<HashMap<String, broadcast::Sender<Arc<RoomEvent>>>>;

/// The rooms' events on this node. Cheap to clone; clones share everything.
#[derive(Clone, Default)]
pub struct RoomEvents {
    rooms: Arc<Rooms>,
    /// On a cluster node: the queue of the task that publishes on Redis.
    publish: Option<mpsc::Sender<RoomEvent>>,
    /// Cancelled at shutdown, once everything committed has been told: readers' streams end.
    closing: CancellationToken,
}

impl RoomEvents {
    /// A cluster node's: what commits here is published on `<prefix>:room-events`, and what
    /// other nodes publish there is told to this node's readers. The tasks end at `stop`.
    pub async fn cluster(
        link: Link,
        prefix: &str,
        node: &str,
        stop: CancellationToken,
    ) -> anyhow::Result<Self> {
        let channel = format!("{prefix}:room-events");
        let mut incoming = link.subscribe(channel.clone(), PUBLISH_BACKLOG).await?;
        let (publish, outgoing) = mpsc::channel(PUBLISH_BACKLOG);
        let events = Self {
            publish: Some(publish),
            ..Self::default()
        };
        let me = node.to_owned();
        tokio::spawn(publish_in_order(link, channel, me.clone(), outgoing));
        let local = events.clone();
        tokio::spawn(async move {
            use futures_util::StreamExt;
            loop {
                let item = tokio::select! {
                    item = incoming.next() => item,
                    () = stop.cancelled() => None,
                };
                let Some((_, payload)) = item else { break };
                match serde_json::from_slice::<Envelope>(&payload) {
                    Ok(envelope) if envelope.node == me => {}
                    Ok(envelope) => local.tell_here(envelope.event),
                    Err(err) => tracing::warn!(error = %err, "an unreadable room event on Redis"),
                }
            }
        });
        Ok(events)
    }

    /// A message stored.
    pub fn stored(&self, message: &Message) {
        self.tell(&message.room, || RoomEvent::stored(message));
    }

    /// A message edited.
    pub fn edited(&self, message: &Message) {
        self.tell(&message.room, || RoomEvent::edited(message));
    }

    /// A message deleted.
    pub fn deleted(&self, room: &str, message_id: &str) {
        self.tell(room, || RoomEvent::deleted(room, message_id));
    }

    /// The room's events from now on; lagging more than [`BACKLOG`] behind ends it.
    pub fn subscribe(&self, room: &str) -> broadcast::Receiver<Arc<RoomEvent>> {
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        match rooms.get(room) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = broadcast::channel(BACKLOG);
                rooms.insert(room.to_owned(), sender);
                receiver
            }
        }
    }

    /// Resolves once shutdown has told every committed event: readers end their streams.
    pub async fn closed(&self) {
        self.closing.cancelled().await;
    }

    /// Ends every reader's stream (at shutdown, after the writer's last announcement).
    pub fn close(&self) {
        self.closing.cancel();
    }

    /// Tells the room's readers here and, on a cluster node, the other nodes; the event is made
    /// only when someone may hear it.
    fn tell(&self, room: &str, event: impl FnOnce() -> serde_json::Result<RoomEvent>) {
        let here = self.readers(room);
        if here.is_none() && self.publish.is_none() {
            return;
        }
        let event = match event() {
            Ok(event) => event,
            Err(err) => return tracing::error!(error = %err, "could not serialize a room event"),
        };
        if let Some(publish) = &self.publish
            && publish.try_send(event.clone()).is_err()
        {
            metrics::counter!(names::ROOM_EVENTS_UNPUBLISHED).increment(1);
        }
        if let Some(sender) = here {
            let _ = sender.send(Arc::new(event));
        }
    }

    /// Tells this node's readers of the event's room (an event from another node).
    fn tell_here(&self, event: RoomEvent) {
        if let Some(sender) = self.readers(&event.room) {
            let _ = sender.send(Arc::new(event));
        }
    }

    /// The channel of the room's readers on this node, if it has any (one lock, taken once
    /// per event); a room whose readers all left is forgotten.
    fn readers(&self, room: &str) -> Option<broadcast::Sender<Arc<RoomEvent>>> {
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = rooms.get(room)?;
        if sender.receiver_count() == 0 {
            rooms.remove(room);
            return None;
        }
        Some(sender.clone())
    }
}

/// Publishes this node's events on Redis one after another, so other nodes get them in commit
/// order. One that Redis refuses is dropped and counted: chat goes on, and readers elsewhere
/// find it in the store when they come back.
async fn publish_in_order(
    link: Link,
    channel: String,
    node: String,
    mut events: mpsc::Receiver<RoomEvent>,
) {
    while let Some(event) = events.recv().await {
        let envelope = Envelope {
            node: node.clone(),
            event,
        };
        let Ok(payload) = serde_json::to_vec(&envelope) else {
            continue;
        };
        if let Err(err) = link.publish(channel.clone(), payload).await {
            metrics::counter!(names::ROOM_EVENTS_UNPUBLISHED).increment(1);
            tracing::debug!(error = %err, "a room event not published on Redis");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{Kind, User};

    fn message(room: &str, id: &str) -> Message {
        Message {
            id: id.to_owned(),
            room: room.to_owned(),
            user: User {
                id: "alice".to_owned(),
                name: "Alice".to_owned(),
            },
            text: Some("hi".to_owned()),
            client_id: None,
            created_at: "2026-11-30T00:00:00.000Z".to_owned(),
            edited_at: None,
            deleted: false,
        }
    }

    #[tokio::test]
    async fn readers_of_a_room_hear_its_events_in_order_and_nothing_else() {
        let events = RoomEvents::default();
        let mut general = events.subscribe("general");
        let mut other = events.subscribe("other");
        events.stored(&message("general", "1"));
        events.edited(&message("general", "1"));
        events.deleted("general", "1");
        let kinds: Vec<_> = (0..3)
            .map(|_| general.try_recv().map(|e| (e.kind, e.id.clone())))
            .collect();
        assert_eq!(
            kinds,
            vec![
                Ok((Kind::Message, "1".to_owned())),
                Ok((Kind::MessageUpdated, "1".to_owned())),
                Ok((Kind::MessageDeleted, "1".to_owned())),
            ]
        );
        assert!(other.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_room_without_readers_is_forgotten() {
        let events = RoomEvents::default();
        drop(events.subscribe("general"));
        events.stored(&message("general", "1"));
        events.tell_here(RoomEvent {
            room: "general".to_owned(),
            kind: Kind::Message,
            id: "2".to_owned(),
            data: "{}".to_owned(),
        });
        assert!(
            events
                .rooms
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_reader_too_far_behind_lags() {
        let events = RoomEvents::default();
        let mut slow = events.subscribe("general");
        for i in 0..=BACKLOG {
            events.stored(&message("general", &i.to_string()));
        }
        assert!(matches!(
            slow.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }
}
