//! Users: an id (the key of memberships and authorship) and a display name.

use super::ChatError;
use serde::Serialize;

const MAX_LEN: usize = 64;

/// Validates a user id or name: 1 to 64 characters, no control characters.
fn parse_name(raw: &str, what: &str) -> Result<String, ChatError> {
    let chars = raw.chars().count();
    if chars == 0 || chars > MAX_LEN {
        return Err(ChatError::bad_request(format!(
            "{what} must be 1 to {MAX_LEN} characters"
        )));
    }
    if raw.chars().any(char::is_control) {
        return Err(ChatError::bad_request(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(raw.to_owned())
}

/// A valid user id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, ChatError> {
        parse_name(raw, "user id").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A valid display name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    pub fn parse(raw: &str) -> Result<Self, ChatError> {
        parse_name(raw, "name").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `{ id, name }` as the protocol shows a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    pub name: String,
}

impl User {
    pub fn new(id: UserId, name: UserName) -> Self {
        Self {
            id: id.0,
            name: name.0,
        }
    }

    /// The Socket.IO room that reaches all of this user's sockets.
    pub fn personal_room(&self) -> String {
        super::RoomName::personal(&self.id)
    }

    /// The Socket.IO room of this user's sockets whose tokens limit their rooms.
    pub fn limited_room(&self) -> String {
        super::RoomName::limited(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_to_sixty_four_characters_counted_as_characters() {
        assert!(UserName::parse(&"é".repeat(64)).is_ok());
        assert!(UserName::parse(&"é".repeat(65)).is_err());
        assert!(UserName::parse("").is_err());
    }

    #[test]
    fn names_reject_control_characters_but_keep_other_unicode() {
        assert!(UserName::parse("al\u{7}ice").is_err());
        assert!(UserName::parse("line\nbreak").is_err());
        assert!(UserName::parse("שלום 👋").is_ok());
    }
}
