//! Where a socket's replays start: the offsets its handshake's `auth` gave, one per replaying
//! rule of its namespace, read before it connects so that one it cannot use is refused then.

use crate::chat::{ChatError, MessageId};
use crate::rules::{Rule, Rules};
use crate::store::RoomRef;
use serde_json::Value;
use std::sync::Arc;

/// Where a socket's replay starts, from its handshake: before everything, after a sequence
/// number of the rule's room, or after a message id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offset {
    Start,
    Seq(i64),
    Id(MessageId),
}

impl Offset {
    /// `auth[field]`: absent, `null`, `0`, `""` or `"0"` is the start; a message id (the one
    /// the client saw last) is after that message; a whole number `n` (a Node app's integer
    /// ids) is after the room's `n`-th. Anything else is a `bad_request`.
    pub fn from_auth(auth: &Value, field: &str) -> Result<Self, ChatError> {
        let invalid = || {
            ChatError::bad_request(format!(
                "auth.{field} must be 0 or the id of the last message received"
            ))
        };
        match auth.get(field) {
            None | Some(Value::Null) => Ok(Self::Start),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(0) => Ok(Self::Start),
                Some(n) if n > 0 => Ok(Self::Seq(n)),
                _ => Err(invalid()),
            },
            Some(Value::String(s)) if s.is_empty() || s == "0" => Ok(Self::Start),
            // An id first: 32 hex digits may well be all decimal ones.
            Some(Value::String(s)) => match (MessageId::parse(s), s.parse::<i64>()) {
                (Ok(id), _) => Ok(Self::Id(id)),
                (Err(_), Ok(n)) if n > 0 => Ok(Self::Seq(n)),
                _ => Err(invalid()),
            },
            Some(_) => Err(invalid()),
        }
    }

    /// The sequence number of `room` after which to replay. An id of another room (the
    /// rule's room was changed, the store replaced) says nothing of this one: everything.
    pub(super) fn after(self, room: &RoomRef) -> i64 {
        match self {
            Self::Start => 0,
            Self::Seq(n) => n,
            Self::Id(id) if id.room_id == room.id => id.seq,
            Self::Id(_) => 0,
        }
    }
}

/// The offsets a socket's handshake gave, one per replaying rule of its namespace.
#[derive(Clone, Debug, Default)]
pub struct Offsets(pub(super) Vec<(Arc<Rule>, Offset)>);

impl Offsets {
    /// Reads every replaying rule's offset of `namespace` from `auth`.
    pub fn from_auth(rules: &Rules, namespace: &str, auth: &Value) -> Result<Self, ChatError> {
        let mut offsets = Vec::new();
        for rule in rules.of(namespace) {
            if let Some(replay) = &rule.replay {
                offsets.push((rule.clone(), Offset::from_auth(auth, &replay.auth_field)?));
            }
        }
        Ok(Self(offsets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ErrorCode;
    use serde_json::json;

    #[test]
    fn offsets_start_at_zero_and_continue_after_an_id_or_a_number() {
        let at = |auth: Value| Offset::from_auth(&auth, "serverOffset").map_err(|e| e.code);
        assert_eq!(at(json!({})), Ok(Offset::Start));
        assert_eq!(at(json!({ "serverOffset": 0 })), Ok(Offset::Start));
        assert_eq!(at(json!({ "serverOffset": null })), Ok(Offset::Start));
        assert_eq!(at(json!({ "serverOffset": "0" })), Ok(Offset::Start));
        assert_eq!(at(json!({ "serverOffset": "" })), Ok(Offset::Start));
        assert_eq!(at(json!({ "serverOffset": 42 })), Ok(Offset::Seq(42)));
        assert_eq!(at(json!({ "serverOffset": "42" })), Ok(Offset::Seq(42)));
        assert_eq!(
            at(json!({ "serverOffset": "0000000000000003000000000000002a" })),
            Ok(Offset::Id(MessageId::new(3, 42)))
        );
        assert_eq!(
            at(json!({ "serverOffset": "00000000000000030000000000000042" })),
            Ok(Offset::Id(MessageId::new(3, 0x42)))
        );
        for bad in [json!(-1), json!(1.5), json!("x"), json!(true), json!([1])] {
            assert_eq!(
                at(json!({ "serverOffset": bad })),
                Err(ErrorCode::BadRequest),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_id_of_another_room_replays_everything() {
        let room = RoomRef {
            id: 3,
            name: "tutorial".to_owned(),
        };
        assert_eq!(Offset::Id(MessageId::new(3, 42)).after(&room), 42);
        assert_eq!(Offset::Id(MessageId::new(4, 42)).after(&room), 0);
        assert_eq!(Offset::Seq(7).after(&room), 7);
        assert_eq!(Offset::Start.after(&room), 0);
    }
}
