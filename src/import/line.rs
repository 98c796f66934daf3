//! One line of an import file: a JSON object checked by the chat's rules, or the reason it is
//! rejected. Pure: no I/O.

use crate::chat::{ChatError, ClientId, MessageText, RoomName, TextLimit, UserId};
use chrono::DateTime;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// Every derived client id begins with this; `id` may take what is left of its 64 characters.
const KEY_PREFIX: &str = "import:";
const MAX_ID_LEN: usize = 64 - KEY_PREFIX.len();
/// Hex digits of the content hash in the key of a line without `id` (160 bits).
const HASH_HEX_LEN: usize = 40;
/// 9999-12-31T23:59:59.999Z: later instants have no RFC 3339 form.
const MAX_CREATED_AT: i64 = 253_402_300_799_999;

/// One valid line: a message ready to be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub room: RoomName,
    pub user: UserId,
    pub text: MessageText,
    /// Unix milliseconds.
    pub created_at: i64,
    /// `import:<id>`, or `import:` and a hash of the message without one.
    pub client_id: ClientId,
}

/// Why a line was rejected, for people: `room must be 1 to 64 characters`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(String);

impl From<ChatError> for Rejected {
    fn from(err: ChatError) -> Self {
        Self(err.message)
    }
}

/// Reads one line of the file (without its line break): `Ok(None)` for a blank line.
pub fn parse_line(line: &str, limit: TextLimit) -> Result<Option<Entry>, Rejected> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(line).map_err(json_error)?;
    let Value::Object(fields) = value else {
        return Err(Rejected("a line must be a JSON object".into()));
    };
    let room = RoomName::parse(string(&fields, "room")?)?;
    let user = UserId::parse(string(&fields, "user")?)?;
    let text = MessageText::parse(string(&fields, "text")?, limit)?;
    let created_at = created_at(fields.get("created_at"))?;
    let client_id = match id(fields.get("id"))? {
        Some(id) => ClientId::parse(&format!("{KEY_PREFIX}{id}"))?,
        None => ClientId::parse(&content_key(&room, &user, &text, created_at))?,
    };
    Ok(Some(Entry {
        room,
        user,
        text,
        created_at,
        client_id,
    }))
}

/// serde_json's message without its position (always line 1 here), the column kept.
fn json_error(err: serde_json::Error) -> Rejected {
    let message = err.to_string();
    let position = format!(" at line {} column {}", err.line(), err.column());
    let message = message.strip_suffix(&position).unwrap_or(&message);
    Rejected(format!(
        "invalid JSON at column {}: {message}",
        err.column()
    ))
}

fn string<'a>(fields: &'a Map<String, Value>, key: &str) -> Result<&'a str, Rejected> {
    match fields.get(key) {
        None | Some(Value::Null) => Err(Rejected(format!("{key} is missing"))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Rejected(format!("{key} must be a string"))),
    }
}

/// An RFC 3339 string (`2024-05-01T12:00:00Z`, any offset) or integer Unix milliseconds, as
/// Unix milliseconds (finer digits are dropped).
fn created_at(value: Option<&Value>) -> Result<i64, Rejected> {
    let ms = match value {
        None | Some(Value::Null) => return Err(Rejected("created_at is missing".into())),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map_err(|e| Rejected(format!("created_at is not an RFC 3339 time: {e}")))?
            .timestamp_millis(),
        Some(n @ Value::Number(_)) => n.as_i64().ok_or_else(|| {
            Rejected("created_at must be an RFC 3339 string or integer milliseconds".into())
        })?,
        Some(_) => {
            return Err(Rejected(
                "created_at must be an RFC 3339 string or integer milliseconds".into(),
            ));
        }
    };
    if !(0..=MAX_CREATED_AT).contains(&ms) {
        return Err(Rejected(
            "created_at must be between 1970-01-01 and 9999-12-31".into(),
        ));
    }
    Ok(ms)
}

/// The message's id in the other backend, if it has one: a string or an integer.
fn id(value: Option<&Value>) -> Result<Option<String>, Rejected> {
    let id = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(n @ Value::Number(_)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(_) => return Err(Rejected("id must be a string or an integer".into())),
    };
    let chars = id.chars().count();
    if chars == 0 || chars > MAX_ID_LEN {
        return Err(Rejected(format!("id must be 1 to {MAX_ID_LEN} characters")));
    }
    if id.chars().any(char::is_control) {
        return Err(Rejected("id must not contain control characters".into()));
    }
    Ok(Some(id))
}

/// `import:` and the first hex digits of SHA-256 over the message as it is stored: the same
/// message gives the same key whichever form its time came in. NUL separates the parts (none
/// of them may contain it).
fn content_key(room: &RoomName, user: &UserId, text: &MessageText, created_at: i64) -> String {
    let mut hash = Sha256::new();
    for part in [
        room.as_str(),
        user.as_str(),
        &created_at.to_string(),
        text.as_str(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let mut key = String::with_capacity(KEY_PREFIX.len() + HASH_HEX_LEN);
    key.push_str(KEY_PREFIX);
    for byte in hash.finalize().iter().take(HASH_HEX_LEN / 2) {
        // Writing to a String cannot fail.
        let _ = write!(key, "{byte:02x}");
    }
    key
}

/// The line as text, without its line break (and, on line 1, without a byte order mark).
pub(super) fn text_of(buf: &[u8], number: u64) -> Result<&str, Rejected> {
    let line = std::str::from_utf8(buf).map_err(|_| Rejected("not UTF-8 text".into()))?;
    let line = line.trim_end_matches(['\n', '\r']);
    Ok(if number == 1 {
        line.strip_prefix('\u{feff}').unwrap_or(line)
    } else {
        line
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: TextLimit = TextLimit(20);

    fn parse(line: &str) -> Result<Option<Entry>, String> {
        parse_line(line, LIMIT).map_err(|e| e.to_string())
    }

    fn entry(line: &str) -> Result<Entry, String> {
        parse(line)?.ok_or_else(|| "blank".to_owned())
    }

    #[test]
    fn a_full_line_with_an_id() -> Result<(), String> {
        let e = entry(
            r#"{"room":"general","user":"alice","text":" hi ","created_at":"2024-05-01T12:00:00.5+02:00","id":"m-1"}"#,
        )?;
        assert_eq!(
            (e.room.as_str(), e.user.as_str(), e.text.as_str()),
            ("general", "alice", "hi")
        );
        assert_eq!(e.created_at, 1_714_557_600_500);
        assert_eq!(e.client_id.as_str(), "import:m-1");
        Ok(())
    }

    #[test]
    fn created_at_may_be_milliseconds_and_ids_integers() -> Result<(), String> {
        let e = entry(r#"{"room":"r","user":"u","text":"t","created_at":1714557600500,"id":42}"#)?;
        assert_eq!(
            (e.created_at, e.client_id.as_str()),
            (1_714_557_600_500, "import:42")
        );
        Ok(())
    }

    #[test]
    fn without_an_id_the_key_is_a_hash_of_the_message() -> Result<(), String> {
        let line = |text: &str, at: &str| {
            entry(&format!(
                r#"{{"room":"r","user":"u","text":"{text}","created_at":{at}}}"#
            ))
            .map(|e| e.client_id.as_str().to_owned())
        };
        let key = line("hello", "1714557600500")?;
        assert!(
            key.starts_with("import:") && key.len() == 7 + HASH_HEX_LEN,
            "{key}"
        );
        assert_eq!(line("hello", r#""2024-05-01T10:00:00.500Z""#)?, key);
        assert_eq!(line("  hello ", "1714557600500")?, key);
        assert_ne!(line("hello!", "1714557600500")?, key);
        assert_ne!(line("hello", "1714557600501")?, key);
        Ok(())
    }

    #[test]
    fn blank_lines_are_skipped() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("  \t\r"), Ok(None));
    }

    #[test]
    fn bad_lines_say_why() {
        let ok = r#""room":"r","user":"u","text":"t","created_at":0"#;
        let cases = [
            ("{\"room\":", "invalid JSON at column 8"),
            ("[1, 2]", "a line must be a JSON object"),
            (
                r#"{"user":"u","text":"t","created_at":0}"#,
                "room is missing",
            ),
            (
                r#"{"room":"","user":"u","text":"t","created_at":0}"#,
                "room must be 1 to 64 characters",
            ),
            (
                r#"{"room":"a b","user":"u","text":"t","created_at":0}"#,
                "room may contain only",
            ),
            (
                r#"{"room":"user:x","user":"u","text":"t","created_at":0}"#,
                "reserved",
            ),
            (
                r#"{"room":"r","user":7,"text":"t","created_at":0}"#,
                "user must be a string",
            ),
            (
                r#"{"room":"r","user":"a\u0007","text":"t","created_at":0}"#,
                "user id must not contain control",
            ),
            (
                r#"{"room":"r","user":"u","text":"  ","created_at":0}"#,
                "text must not be empty",
            ),
            (
                r#"{"room":"r","user":"u","text":"123456789012345678901","created_at":0}"#,
                "text is longer than 20 characters",
            ),
            (
                r#"{"room":"r","user":"u","text":"t"}"#,
                "created_at is missing",
            ),
            (
                r#"{"room":"r","user":"u","text":"t","created_at":"yesterday"}"#,
                "not an RFC 3339 time",
            ),
            (
                r#"{"room":"r","user":"u","text":"t","created_at":1.5}"#,
                "integer milliseconds",
            ),
            (
                r#"{"room":"r","user":"u","text":"t","created_at":-1}"#,
                "between 1970-01-01",
            ),
            (
                r#"{"room":"r","user":"u","text":"t","created_at":true}"#,
                "integer milliseconds",
            ),
        ];
        for (line, why) in cases {
            let got = parse(line);
            assert!(
                got.as_ref().is_err_and(|e| e.contains(why)),
                "{line}: {got:?}"
            );
        }
        let too_long = format!(r#"{{{ok},"id":"{}"}}"#, "x".repeat(MAX_ID_LEN + 1));
        assert_eq!(
            parse(&too_long),
            Err("id must be 1 to 57 characters".into())
        );
        assert!(parse(&format!(r#"{{{ok},"id":"{}"}}"#, "x".repeat(MAX_ID_LEN))).is_ok());
        assert_eq!(
            parse(&format!(r#"{{{ok},"id":[1]}}"#)),
            Err("id must be a string or an integer".into())
        );
    }

    #[test]
    fn line_text_drops_line_breaks_and_a_leading_byte_order_mark() {
        assert_eq!(text_of(b"\xef\xbb\xbf{}\r\n", 1), Ok("{}"));
        assert_eq!(text_of(b"\xef\xbb\xbf{}\n", 2), Ok("\u{feff}{}"));
        assert_eq!(
            text_of(b"\xff\n", 3),
            Err(Rejected("not UTF-8 text".into()))
        );
    }
}
