//! History pages: cursors and limits.

use super::{ChatError, Message, MessageId};
use serde::Serialize;

/// At most this many messages come back in `join { since }`'s `missed`.
pub const MISSED_LIMIT: u64 = 100;
/// A page's size when the client names none (history, members).
pub(super) const DEFAULT_LIMIT: u64 = 50;
/// The largest page: a larger `limit` is taken as this.
pub(super) const MAX_LIMIT: u64 = 100;

/// A page's `limit`: `default` when absent, capped at [`MAX_LIMIT`]; zero or less is a
/// `bad_request`.
pub(super) fn page_limit(limit: Option<i64>, default: u64) -> Result<u64, ChatError> {
    match limit {
        None => Ok(default),
        Some(n) if n < 1 => Err(ChatError::bad_request("limit must be at least 1")),
        Some(n) => Ok(u64::try_from(n).map_or(MAX_LIMIT, |n| n.min(MAX_LIMIT))),
    }
}

/// Which page of a room's history: oldest to newest, at most `limit` messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HistoryQuery {
    pub before: Option<MessageId>,
    pub after: Option<MessageId>,
    pub limit: u64,
}

impl HistoryQuery {
    /// Cursors must be message ids; `limit` defaults to 50 and is capped at 100; zero or less
    /// is a `bad_request`.
    pub fn parse(
        before: Option<&str>,
        after: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Self, ChatError> {
        let before = before.map(MessageId::parse).transpose()?;
        let after = after.map(MessageId::parse).transpose()?;
        Ok(Self {
            before,
            after,
            limit: page_limit(limit, DEFAULT_LIMIT)?,
        })
    }

    /// The messages after `since`, as `join` returns them.
    pub fn since(since: MessageId) -> Self {
        Self {
            before: None,
            after: Some(since),
            limit: MISSED_LIMIT,
        }
    }

    /// Reads forward (oldest first from the `after` cursor) rather than back from the newest.
    pub fn is_forward(&self) -> bool {
        self.after.is_some()
    }

    /// Both cursors must be ids of messages of the room numbered `room_id`.
    pub fn ensure_in_room(&self, room_id: i64) -> Result<(), ChatError> {
        self.before
            .into_iter()
            .chain(self.after)
            .try_for_each(|c| c.ensure_in_room(room_id))
    }
}

/// `{ messages, has_more }`: `has_more` looks back for backward pages, forward for forward ones.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryPage {
    pub messages: Vec<Message>,
    pub has_more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_to_fifty_and_is_capped_at_one_hundred() {
        let limit = |l| HistoryQuery::parse(None, None, l).map(|q| q.limit);
        assert_eq!(limit(None), Ok(50));
        assert_eq!(limit(Some(7)), Ok(7));
        assert_eq!(limit(Some(1000)), Ok(100));
        assert_eq!(limit(Some(i64::MAX)), Ok(100));
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(-5)).is_err());
    }

    #[test]
    fn cursors_are_ids_of_the_room_they_are_used_in() {
        let id = MessageId::new(3, 9).to_string();
        let query = HistoryQuery::parse(Some(&id), None, None);
        assert_eq!(
            query.as_ref().map(|q| q.ensure_in_room(3).is_ok()),
            Ok(true)
        );
        assert_eq!(query.map(|q| q.ensure_in_room(4).is_err()), Ok(true));
        assert!(HistoryQuery::parse(None, Some("nope"), None).is_err());
    }
}
