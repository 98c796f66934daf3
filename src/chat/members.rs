//! Member lists: pages of a room's members, or of those online, in user id order; and which
//! rooms are large.

use super::history::{DEFAULT_LIMIT, page_limit};
use super::{ChatError, User, UserId};
use serde::Serialize;

/// At most this many users come back in `join`'s `members`, and in `presence`'s `users` when
/// the client names no smaller limit.
pub const MEMBERS_IN_REPLY: u64 = 100;

/// A page of a member list: the users after `after` (a user id) in id order, at most `limit`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MemberQuery {
    pub after: Option<String>,
    pub limit: u64,
}

impl MemberQuery {
    /// `after` must be a user id; `limit` as a history page's, `default` when absent.
    pub fn parse(after: Option<&str>, limit: Option<i64>, default: u64) -> Result<Self, ChatError> {
        let after = after
            .map(|a| UserId::parse(a).map(|id| id.as_str().to_owned()))
            .transpose()
            .map_err(|_| ChatError::bad_request("after must be a user id"))?;
        Ok(Self {
            after,
            limit: page_limit(limit, default)?,
        })
    }

    /// The `members` command's page (50 unless told).
    pub fn members(after: Option<&str>, limit: Option<i64>) -> Result<Self, ChatError> {
        Self::parse(after, limit, DEFAULT_LIMIT)
    }

    /// The first page, as a reply carries it.
    pub fn first() -> Self {
        Self {
            after: None,
            limit: MEMBERS_IN_REPLY,
        }
    }

    /// The page this query selects from `users`, sorted by id.
    pub fn page(&self, users: &[User]) -> MemberPage {
        let start = self
            .after
            .as_deref()
            .map_or(0, |after| users.partition_point(|u| u.id.as_str() <= after));
        let rest = &users[start.min(users.len())..];
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        MemberPage {
            members: rest.iter().take(limit).cloned().collect(),
            has_more: rest.len() > limit,
        }
    }
}

/// `{ members, has_more }`: `has_more` says whether users after the last one remain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberPage {
    pub members: Vec<User>,
    pub has_more: bool,
}

/// The size past which a room is large: its joins, leaves and read marks are not told to every
/// member (that is quadratic in the room's size); its member count is, at most once a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LargeRoom(pub u64);

impl Default for LargeRoom {
    fn default() -> Self {
        Self(1000)
    }
}

impl LargeRoom {
    /// Whether a room of `member_count` members is large.
    pub fn holds(self, member_count: u64) -> bool {
        member_count > self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(ids: &[&str]) -> Vec<User> {
        ids.iter()
            .map(|id| User {
                id: (*id).to_owned(),
                name: (*id).to_owned(),
            })
            .collect()
    }

    #[test]
    fn pages_follow_user_ids_after_the_cursor() {
        let all = users(&["a", "b", "c", "d", "e"]);
        let first = MemberQuery::members(None, Some(2)).map(|q| q.page(&all));
        assert_eq!(first.as_ref().map(|p| p.has_more), Ok(true));
        assert_eq!(first.map(|p| p.members), Ok(users(&["a", "b"])));
        let last = MemberQuery::members(Some("c"), Some(5)).map(|q| q.page(&all));
        assert_eq!(
            last,
            Ok(MemberPage {
                members: users(&["d", "e"]),
                has_more: false
            })
        );
        // A cursor that is not in the list (the user left) still places the page.
        let gone = MemberQuery::members(Some("bb"), Some(1)).map(|q| q.page(&all));
        assert_eq!(gone.map(|p| p.members), Ok(users(&["c"])));
    }

    #[test]
    fn limits_and_cursors_are_checked_as_for_history() {
        assert_eq!(MemberQuery::members(None, None).map(|q| q.limit), Ok(50));
        assert_eq!(
            MemberQuery::members(None, Some(1000)).map(|q| q.limit),
            Ok(100)
        );
        assert!(MemberQuery::members(None, Some(0)).is_err());
        assert!(MemberQuery::members(Some(""), None).is_err());
        assert!(MemberQuery::members(Some("bad\u{7}"), None).is_err());
    }

    #[test]
    fn a_room_is_large_past_its_threshold() {
        let large = LargeRoom(3);
        assert!(!large.holds(3));
        assert!(large.holds(4));
    }
}
