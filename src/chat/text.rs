//! Message text and the client's idempotency key.

use super::{ChatError, ErrorCode};

/// The longest text a message may have, in characters (configuration; 4000 by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextLimit(pub usize);

impl Default for TextLimit {
    fn default() -> Self {
        Self(4000)
    }
}

/// Message text: trimmed, 1 to `TextLimit` characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    /// Empty or only white space is a `bad_request`; over the limit is `too_large`.
    pub fn parse(raw: &str, limit: TextLimit) -> Result<Self, ChatError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(ChatError::bad_request("text must not be empty"));
        }
        // PostgreSQL cannot store NUL in text; no chat needs it.
        if text.contains('\0') {
            return Err(ChatError::bad_request(
                "text must not contain NUL characters",
            ));
        }
        // Counting stops one past the limit: a huge string costs no more than a short one.
        if text.chars().take(limit.0 + 1).count() > limit.0 {
            return Err(ChatError::new(
                ErrorCode::TooLarge,
                format!("text is longer than {} characters", limit.0),
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A client-chosen key that makes a retried `message` return the first one: 1 to 64 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientId(String);

impl ClientId {
    const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ChatError> {
        let chars = raw.chars().take(Self::MAX_LEN + 1).count();
        if chars == 0 || chars > Self::MAX_LEN {
            return Err(ChatError::bad_request(format!(
                "client_id must be 1 to {} characters",
                Self::MAX_LEN
            )));
        }
        if raw.chars().any(char::is_control) {
            return Err(ChatError::bad_request(
                "client_id must not contain control characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<MessageText, ChatError>) -> Result<String, ErrorCode> {
        r.map(MessageText::into_string).map_err(|e| e.code)
    }

    #[test]
    fn text_is_trimmed() {
        assert_eq!(
            code(MessageText::parse("  hi \n", TextLimit(10))),
            Ok("hi".into())
        );
    }

    #[test]
    fn blank_text_is_a_bad_request() {
        for blank in ["", "   ", "\n\t"] {
            assert_eq!(
                code(MessageText::parse(blank, TextLimit(10))),
                Err(ErrorCode::BadRequest)
            );
        }
    }

    #[test]
    fn the_limit_counts_characters_after_trimming() {
        let limit = TextLimit(4);
        assert!(MessageText::parse(" éééé ", limit).is_ok());
        assert_eq!(
            code(MessageText::parse("ééééé", limit)),
            Err(ErrorCode::TooLarge)
        );
        assert_eq!(
            code(MessageText::parse(
                &"x".repeat(100_000),
                TextLimit::default()
            )),
            Err(ErrorCode::TooLarge)
        );
    }

    #[test]
    fn client_ids_are_one_to_sixty_four_characters() {
        assert!(ClientId::parse("c-17").is_ok());
        assert!(ClientId::parse(&"c".repeat(64)).is_ok());
        assert!(ClientId::parse(&"c".repeat(65)).is_err());
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse("c\u{0}1").is_err());
    }

    #[test]
    fn nul_is_refused_other_text_is_kept() {
        assert_eq!(
            code(MessageText::parse("a\u{0}b", TextLimit(10))),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            code(MessageText::parse("a\tb\nc", TextLimit(10))),
            Ok("a\tb\nc".into())
        );
    }
}
