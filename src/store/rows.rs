//! Rows to protocol objects, and time.

use crate::chat::{Message, MessageId, User};
use chrono::{DateTime, SecondsFormat, Utc};
use entity::message;

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// `2026-11-22T10:00:00.123Z`.
fn timestamp(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn to_message(row: message::Model, room: &str) -> Message {
    Message {
        id: MessageId::new(row.room_id, row.seq).to_string(),
        room: room.to_owned(),
        user: User {
            id: row.user_id,
            name: row.user_name,
        },
        text: if row.deleted { None } else { row.text },
        // The key the sender gave, whichever kind: a client that retries recognises it.
        client_id: row.client_id.or(row.room_key),
        created_at: timestamp(row.created_at),
        edited_at: row.edited_at.map(timestamp),
        deleted: row.deleted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(timestamp(1_795_341_600_123), "2026-11-22T10:00:00.123Z");
    }
}
