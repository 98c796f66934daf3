//! The state every handler shares: one Clone struct of cheap handles.

use crate::chat::Message;
use crate::chat::{ChatError, ErrorCode, LargeRoom, RoomName, TextLimit};
use crate::handshakes::Handshakes;
use crate::headcount::Headcount;
use crate::identity::Authenticator;
use crate::limits::RateLimits;
use crate::presence::Presence;
use crate::recovery::Recovery;
use crate::room_events::RoomEvents;
use crate::rules::Rules;
use crate::store::{
    Announce, Appended, DeleteRequest, Draft, EditRequest, Refusal, Removal, RoomRef, Store,
    StoreError, Writer,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::task::TaskTracker;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Commits every change in batches; the only way anything is written.
    pub writer: Writer,
    pub auth: Authenticator,
    pub presence: Presence,
    pub limits: RateLimits,
    pub text_limit: TextLimit,
    /// Relay rules for legacy frontends.
    pub rules: Rules,
    /// Rooms past this size hear their member count, not each join, leave and read mark.
    pub large_room: LargeRoom,
    /// The member counts of large rooms, told once a second.
    pub headcount: Headcount,
    /// This node's sockets' handshakes, kept for the Node nodes of a mixed cluster.
    pub handshakes: Handshakes,
    /// Connection state recovery: sessions kept, and the journal of what was sent.
    pub recovery: Recovery,
    /// Rooms' stored-message events for the Server-Sent Events feeds, from every node.
    pub room_events: RoomEvents,
    /// The longest a command may take before it is answered `unavailable`.
    pub command_deadline: Duration,
    /// Commands being served; shutdown waits for them.
    pub in_flight: TaskTracker,
    /// Set when shutdown begins: new commands and handshakes are refused from then on.
    draining: Arc<AtomicBool>,
}

impl AppState {
    pub fn new(
        store: Store,
        writer: Writer,
        auth: Authenticator,
        presence: Presence,
        limits: RateLimits,
        text_limit: TextLimit,
        command_deadline: Duration,
    ) -> Self {
        Self {
            rules: Rules::default(),
            large_room: LargeRoom::default(),
            headcount: Headcount::default(),
            handshakes: Handshakes::default(),
            recovery: Recovery::off(),
            room_events: RoomEvents::default(),
            command_deadline,
            store,
            writer,
            auth,
            presence,
            limits,
            text_limit,
            in_flight: TaskTracker::new(),
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The same state, serving these relay rules.
    pub fn with_rules(self, rules: Rules) -> Self {
        Self { rules, ..self }
    }

    /// The same state, telling rooms' events through `room_events` (a cluster node's).
    pub fn with_room_events(self, room_events: RoomEvents) -> Self {
        Self {
            room_events,
            ..self
        }
    }

    /// The same state, keeping the handshakes of its sockets in `handshakes`.
    pub fn with_handshakes(self, handshakes: Handshakes) -> Self {
        Self { handshakes, ..self }
    }

    /// The same state, recovering sessions with `recovery`.
    pub fn with_recovery(self, recovery: Recovery) -> Self {
        Self { recovery, ..self }
    }

    /// The same state, with rooms past `large_room` members counted as large.
    pub fn with_large_room(self, large_room: LargeRoom) -> Self {
        Self { large_room, ..self }
    }

    /// The room called `name`, created if need be (a trusted publisher, a relay rule that
    /// stores in a room named by the client).
    pub async fn open_room(&self, name: &RoomName) -> Result<RoomRef, StoreError> {
        match self.store.room(name).await? {
            Some(room) => Ok(room),
            None => self.writer.open_room(name.clone()).await,
        }
    }

    /// Stores a message (see [`Writer::append`]); once committed its room's feeds hear it, then
    /// `announce` runs. Every message is stored through here, so the feeds hear every one.
    pub async fn append(
        &self,
        draft: Draft,
        announce: Option<Announce<Appended>>,
    ) -> Result<Appended, StoreError> {
        let feeds = self.room_events.clone();
        let announce: Announce<Appended> = Box::new(move |appended| {
            feeds.stored(&appended.message);
            announce.and_then(|announce| announce(appended))
        });
        self.writer.append(draft, Some(announce)).await
    }

    /// Edits a message (see [`Writer::edit`]); its room's feeds hear it, then `announce` runs.
    pub async fn edit(
        &self,
        request: EditRequest,
        announce: Announce<Result<Message, Refusal>>,
    ) -> Result<Result<Message, Refusal>, StoreError> {
        let feeds = self.room_events.clone();
        let announce: Announce<Result<Message, Refusal>> = Box::new(move |edited| {
            if let Ok(message) = edited {
                feeds.edited(message);
            }
            announce(edited)
        });
        self.writer.edit(request, announce).await
    }

    /// Deletes a message (see [`Writer::delete`]); its room's feeds hear it (when it was not
    /// deleted already), then `announce` runs.
    pub async fn delete(
        &self,
        request: DeleteRequest,
        announce: Announce<Result<Removal, Refusal>>,
    ) -> Result<Result<Removal, Refusal>, StoreError> {
        let feeds = self.room_events.clone();
        let announce: Announce<Result<Removal, Refusal>> = Box::new(move |removal| {
            if let Ok(removal) = removal
                && removal.changed
            {
                feeds.deleted(&removal.room, &removal.message_id);
            }
            announce(removal)
        });
        self.writer.delete(request, announce).await
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// `unavailable` once shutdown has begun.
    pub fn ensure_serving(&self) -> Result<(), ChatError> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(ChatError::new(
                ErrorCode::Unavailable,
                "the server is shutting down; reconnect and retry",
            ));
        }
        Ok(())
    }
}
