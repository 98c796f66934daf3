//! Message ids: 32 lowercase hex digits, the room's number then the message's sequence number.
//!
//! Within a room they sort (as strings) in the order the messages were stored, and across rooms
//! they are unique, so `edit` and `delete` need nothing but the id. Clients treat them as opaque.

use super::ChatError;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId {
    pub room_id: i64,
    pub seq: i64,
}

impl MessageId {
    const LEN: usize = 32;

    pub fn new(room_id: i64, seq: i64) -> Self {
        Self { room_id, seq }
    }

    /// Anything that is not an id this server could have made is a `bad_request`.
    pub fn parse(raw: &str) -> Result<Self, ChatError> {
        let invalid = || ChatError::bad_request("message_id is not a valid message id");
        if raw.len() != Self::LEN || !raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid());
        }
        let (room, seq) = raw.split_at(Self::LEN / 2);
        let room_id = i64::from_str_radix(room, 16).map_err(|_| invalid())?;
        let seq = i64::from_str_radix(seq, 16).map_err(|_| invalid())?;
        if room_id < 1 || seq < 1 {
            return Err(invalid());
        }
        Ok(Self { room_id, seq })
    }
}

impl MessageId {
    /// A cursor or a reference must name a message of the room it is used in: another room's
    /// id is `not_found` there.
    pub fn ensure_in_room(self, room_id: i64) -> Result<(), ChatError> {
        if self.room_id == room_id {
            Ok(())
        } else {
            Err(ChatError::not_found("no such message in this room"))
        }
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}{:016x}", self.room_id, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let id = MessageId::new(42, 7);
        assert_eq!(id.to_string(), "000000000000002a0000000000000007");
        assert_eq!(MessageId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn string_order_is_store_order_within_a_room() {
        let ids: Vec<String> = [1, 9, 10, 255, 256, 70_000]
            .iter()
            .map(|s| MessageId::new(3, *s).to_string())
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn rejects_what_the_server_never_made() {
        for bad in [
            "",
            "abc",
            "000000000000002A0000000000000007",
            "00000000000000000000000000000007",
            "ffffffffffffffff0000000000000001",
            "zz00000000000002a0000000000000007",
        ] {
            assert!(MessageId::parse(bad).is_err(), "{bad}");
        }
    }
}
