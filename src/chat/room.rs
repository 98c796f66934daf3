//! Room names: 1 to 64 characters of `A-Z a-z 0-9 _ - . :`; `user:` is the server's.

use super::ChatError;
use std::fmt;

const MAX_LEN: usize = 64;
const RESERVED_PREFIX: &str = "user:";

/// A valid name of a chat room a user may join (never a reserved `user:` room).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RoomName(String);

impl RoomName {
    /// Checks the characters and the length; `user:` rooms are `forbidden`, everything else
    /// that is not a room name is a `bad_request`.
    pub fn parse(raw: &str) -> Result<Self, ChatError> {
        if raw.is_empty() || raw.len() > MAX_LEN {
            return Err(ChatError::bad_request(format!(
                "room must be 1 to {MAX_LEN} characters"
            )));
        }
        if !raw.bytes().all(is_room_byte) {
            return Err(ChatError::bad_request(
                "room may contain only letters, digits and _ - . :",
            ));
        }
        if raw.starts_with(RESERVED_PREFIX) {
            return Err(ChatError::forbidden(
                "rooms that begin with 'user:' are reserved",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The Socket.IO room that reaches every socket of `user_id`.
    pub fn personal(user_id: &str) -> String {
        format!("{RESERVED_PREFIX}{user_id}")
    }

    /// The Socket.IO room of those sockets of `user_id` whose token limits their rooms: a room
    /// joined on another tab reaches them only where their token allows it. (No user id holds
    /// a control character, so this is never a user's personal room.)
    pub fn limited(user_id: &str) -> String {
        format!("{RESERVED_PREFIX}{user_id}\u{1f}limited")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_room_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':')
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ErrorCode;

    #[test]
    fn accepts_every_allowed_character() {
        let name = RoomName::parse("Team_42-a.b:c").map(|r| r.as_str().to_owned());
        assert_eq!(name, Ok("Team_42-a.b:c".to_owned()));
    }

    #[test]
    fn length_is_one_to_sixty_four() {
        assert!(RoomName::parse(&"a".repeat(64)).is_ok());
        for bad in ["", &"a".repeat(65)] {
            assert_eq!(
                RoomName::parse(bad).map_err(|e| e.code),
                Err(ErrorCode::BadRequest)
            );
        }
    }

    #[test]
    fn rejects_other_characters() {
        for bad in ["a b", "a/b", "é", "a\u{0}", "a#", "zero\u{200b}width"] {
            assert_eq!(
                RoomName::parse(bad).map_err(|e| e.code),
                Err(ErrorCode::BadRequest),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn user_rooms_are_forbidden() {
        assert_eq!(
            RoomName::parse("user:alice").map_err(|e| e.code),
            Err(ErrorCode::Forbidden)
        );
        assert!(RoomName::parse("users:alice").is_ok());
    }
}
