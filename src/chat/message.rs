//! The message object of the protocol.

use super::User;
use serde::Serialize;

/// `{ id, room, user, text, client_id, created_at, edited_at, deleted }`. A deleted message keeps
/// its place in history but loses its text: the `text` key is left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Message {
    pub id: String,
    pub room: String,
    pub user: User,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub client_id: Option<String>,
    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-22T10:00:00.123Z`.
    pub created_at: String,
    pub edited_at: Option<String>,
    pub deleted: bool,
}
