//! A room's message events as they leave the server outside Socket.IO (the room feed, the
//! outbox): `message`, `message_updated` and `message_deleted`, each with the id of the message
//! it is about and the JSON of the Socket.IO event's argument.

use super::Message;
use crate::wire::event;
use serde::{Deserialize, Serialize};

/// Which of the room's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Message,
    MessageUpdated,
    MessageDeleted,
}

impl Kind {
    /// The Socket.IO event of the same name and argument.
    pub fn event(self) -> &'static str {
        match self {
            Self::Message => event::MESSAGE,
            Self::MessageUpdated => event::MESSAGE_UPDATED,
            Self::MessageDeleted => event::MESSAGE_DELETED,
        }
    }

    /// The kind an event name names (as the outbox stores it).
    pub fn named(name: &str) -> Option<Self> {
        [Self::Message, Self::MessageUpdated, Self::MessageDeleted]
            .into_iter()
            .find(|k| k.event() == name)
    }
}

/// `message_deleted`'s argument.
#[derive(Debug, Serialize)]
pub struct Deletion<'a> {
    pub room: &'a str,
    pub message_id: &'a str,
}

/// One event of a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomEvent {
    pub room: String,
    pub kind: Kind,
    /// The id of the message the event is about.
    pub id: String,
    /// The JSON of the Socket.IO event's argument.
    pub data: String,
}

impl RoomEvent {
    /// A message stored.
    pub fn stored(message: &Message) -> serde_json::Result<Self> {
        Self::of(&message.room, Kind::Message, &message.id, message)
    }

    /// A message edited.
    pub fn edited(message: &Message) -> serde_json::Result<Self> {
        Self::of(&message.room, Kind::MessageUpdated, &message.id, message)
    }

    /// A message deleted.
    pub fn deleted(room: &str, message_id: &str) -> serde_json::Result<Self> {
        let payload = Deletion { room, message_id };
        Self::of(room, Kind::MessageDeleted, message_id, &payload)
    }

    fn of(room: &str, kind: Kind, id: &str, payload: &impl Serialize) -> serde_json::Result<Self> {
        Ok(Self {
            room: room.to_owned(),
            kind,
            id: id.to_owned(),
            data: serde_json::to_string(payload)?,
        })
    }
}
