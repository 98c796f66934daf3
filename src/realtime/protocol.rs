//! The wire protocol in one place: every event name, every command argument and every reply.

use crate::chat::{ChatError, HistoryPage, MemberPage, Message, User};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;
use std::sync::Arc;

pub use crate::wire::event;

/// Turns a command's argument into its typed form: it must be one object, with the fields of `T`.
pub fn decode<T: DeserializeOwned>(
    arg: Result<Value, impl std::fmt::Display>,
) -> Result<T, ChatError> {
    let arg = arg.map_err(|e| ChatError::bad_request(format!("unreadable argument: {e}")))?;
    if !arg.is_object() {
        return Err(ChatError::bad_request("the argument must be an object"));
    }
    serde_json::from_value(arg).map_err(|e| ChatError::bad_request(e.to_string()))
}

// ---- command arguments ----

#[derive(Debug, Deserialize)]
pub struct Join {
    pub room: String,
    pub since: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Leave {
    pub room: String,
}

/// `members`: a page of a room's members.
#[derive(Debug, Deserialize)]
pub struct MemberList {
    pub room: String,
    pub after: Option<String>,
    pub limit: Option<i64>,
}

/// `presence`: a page of a room's members online.
#[derive(Debug, Deserialize)]
pub struct Presence {
    pub room: String,
    pub after: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct Send {
    pub room: String,
    pub text: String,
    pub client_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Typing {
    pub room: String,
    pub typing: bool,
}

#[derive(Debug, Deserialize)]
pub struct History {
    pub room: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct Read {
    pub room: String,
    pub message_id: String,
}

#[derive(Debug, Deserialize)]
pub struct Edit {
    pub message_id: String,
    pub text: String,
}

#[derive(Debug, Deserialize)]
pub struct Delete {
    pub message_id: String,
}

// ---- replies (the `...result` of `{ ok: true, ...result }`) ----

#[derive(Debug, Serialize)]
pub struct Joined {
    pub room: String,
    /// The first members in user id order, at most 100; `members` pages through the rest.
    pub members: Arc<[User]>,
    pub member_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missed: Option<Vec<Message>>,
}

#[derive(Debug, Serialize)]
pub struct Left {
    pub room: String,
}

#[derive(Debug, Serialize)]
pub struct Stored {
    pub message: Message,
}

#[derive(Debug, Serialize)]
pub struct Nothing {}

pub type Page = HistoryPage;

pub type Members = MemberPage;

/// `presence`: a page of the members online, and how many are.
#[derive(Debug, Serialize)]
pub struct Online {
    pub users: Vec<User>,
    pub online_count: usize,
    pub has_more: bool,
}

#[derive(Debug, Serialize)]
pub struct Deleted {
    pub message_id: String,
}

// ---- events ----

#[derive(Debug, Serialize)]
pub struct Membership<'a> {
    pub room: &'a str,
    pub user: &'a User,
}

/// A large room's member count (instead of its joins and leaves one by one).
#[derive(Debug, Serialize)]
pub struct MemberCount<'a> {
    pub room: &'a str,
    pub member_count: u64,
}

#[derive(Debug, Serialize)]
pub struct TypingEvent<'a> {
    pub room: &'a str,
    pub user: &'a User,
    pub typing: bool,
}

#[derive(Debug, Serialize)]
pub struct ReadEvent<'a> {
    pub room: &'a str,
    pub user: &'a User,
    pub message_id: &'a str,
}

/// `{ ok: true, ...body }`.
#[derive(Debug, Serialize)]
pub struct Success<T> {
    pub ok: bool,
    #[serde(flatten)]
    pub body: T,
}

/// `{ ok: false, error: { code, message } }`.
#[derive(Debug, Serialize)]
pub struct Failure<'a> {
    pub ok: bool,
    pub error: &'a ChatError,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ErrorCode;
    use serde_json::json;

    fn code<T: DeserializeOwned + std::fmt::Debug>(v: Value) -> Result<T, ErrorCode> {
        decode::<T>(Ok::<_, String>(v)).map_err(|e| e.code)
    }

    #[test]
    fn anything_but_an_object_is_a_bad_request() {
        for v in [json!(null), json!([{"room": "a"}]), json!("a"), json!(5)] {
            assert_eq!(code::<Leave>(v).err(), Some(ErrorCode::BadRequest));
        }
    }

    #[test]
    fn missing_and_mistyped_fields_are_bad_requests() {
        assert_eq!(
            code::<Typing>(json!({"room": "a"})).err(),
            Some(ErrorCode::BadRequest)
        );
        assert_eq!(
            code::<Typing>(json!({"room": "a", "typing": "yes"})).err(),
            Some(ErrorCode::BadRequest)
        );
        assert_eq!(
            code::<History>(json!({"room": "a", "limit": 1.5})).err(),
            Some(ErrorCode::BadRequest)
        );
        assert!(code::<History>(json!({"room": "a", "limit": null, "extra": 1})).is_ok());
    }

    #[test]
    fn replies_flatten_into_ok_true() {
        let reply = serde_json::to_value(Success {
            ok: true,
            body: Left { room: "a".into() },
        })
        .ok();
        assert_eq!(reply, Some(json!({"ok": true, "room": "a"})));
        let empty = serde_json::to_value(Success {
            ok: true,
            body: Nothing {},
        })
        .ok();
        assert_eq!(empty, Some(json!({"ok": true})));
    }
}
