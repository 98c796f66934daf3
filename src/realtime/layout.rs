//! A rule's argument layout applied to an event: the text and the key it stores, the arguments
//! it relays, and a stored message rebuilt as the rule relays it (src/rules/layout.rs checks
//! the layout).

use super::args::Args;
use crate::chat::{ChatError, ClientId, Message};
use crate::rules::{AppendSpec, Layout};
use rmpv::Value;

/// The text to store.
pub(super) fn text<'a>(layout: &Layout, args: &'a Args) -> Result<&'a str, ChatError> {
    args.text(layout.text_argument, layout.text_field.as_deref())
}

/// The client's idempotency key: a string, or an integer as its decimal digits; `None` when the
/// rule takes none or the client sent none.
pub(super) fn key(layout: &Layout, args: &Args) -> Result<Option<ClientId>, ChatError> {
    let Some(index) = layout.key_argument else {
        return Ok(None);
    };
    let raw = match args.get(index) {
        None | Some(Value::Nil) => return Ok(None),
        Some(Value::String(s)) => s.as_str().map(str::to_owned),
        Some(Value::Integer(n)) => Some(n.to_string()),
        Some(_) => None,
    };
    let raw = raw.ok_or_else(|| {
        ChatError::bad_request(format!(
            "the event's argument {index} must be its key: a string or an integer"
        ))
    })?;
    ClientId::parse(&raw).map(Some)
}

/// What the rule relays: the event's arguments without the key (the sender's own), or, for a
/// rule that replays, the stored text alone; then the fields `append` names of the stored
/// message.
pub(super) fn relayed(layout: &Layout, args: &Args, stored: Option<&Message>) -> Args {
    let mut values = match (layout.rebuilt, stored) {
        (true, Some(message)) => vec![Value::from(message.text.as_deref().unwrap_or_default())],
        _ => args
            .clone()
            .into_values()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != layout.key_argument)
            .map(|(_, v)| v)
            .collect(),
    };
    if let Some(message) = stored {
        values.extend(layout.append.iter().map(|field| appended(*field, message)));
    }
    Args::from_values(values)
}

/// A stored message as the rule relays it, for a replay; `None` for a deleted one.
pub(super) fn rebuilt(layout: &Layout, message: &Message) -> Option<Args> {
    let text = message.text.as_deref()?;
    let mut values = vec![Value::from(text)];
    values.extend(layout.append.iter().map(|field| appended(*field, message)));
    Some(Args::from_values(values))
}

fn appended(field: AppendSpec, message: &Message) -> Value {
    match field {
        AppendSpec::Id => Value::from(message.id.as_str()),
        AppendSpec::User => Value::from(message.user.name.as_str()),
        AppendSpec::CreatedAt => Value::from(message.created_at.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{ErrorCode, User};

    fn tutorial() -> Layout {
        Layout {
            text_argument: 0,
            text_field: None,
            key_argument: Some(1),
            append: vec![AppendSpec::Id],
            rebuilt: true,
        }
    }

    fn stored(text: Option<&str>) -> Message {
        Message {
            id: "0000000000000001000000000000002a".to_owned(),
            room: "tutorial".to_owned(),
            user: User {
                id: "guest-1".to_owned(),
                name: "guest-1".to_owned(),
            },
            text: text.map(str::to_owned),
            client_id: Some("abc-0".to_owned()),
            created_at: "2026-11-29T10:00:00.000Z".to_owned(),
            edited_at: None,
            deleted: text.is_none(),
        }
    }

    fn args(values: Vec<Value>) -> Args {
        Args::from_values(values)
    }

    #[test]
    fn the_tutorial_stores_its_text_under_its_offset_and_relays_the_id() {
        let sent = args(vec![Value::from("hello"), Value::from("abc-0")]);
        let layout = tutorial();
        assert_eq!(text(&layout, &sent), Ok("hello"));
        assert_eq!(key(&layout, &sent), Ok(ClientId::parse("abc-0").ok()));
        let message = stored(Some("hello"));
        let expected = args(vec![
            Value::from("hello"),
            Value::from("0000000000000001000000000000002a"),
        ]);
        assert_eq!(relayed(&layout, &sent, Some(&message)), expected);
        assert_eq!(rebuilt(&layout, &message), Some(expected));
        assert_eq!(rebuilt(&layout, &stored(None)), None);
    }

    #[test]
    fn keys_are_strings_or_integers_and_may_be_left_out() {
        let layout = tutorial();
        let with = |k: Value| key(&layout, &args(vec![Value::from("t"), k]));
        assert_eq!(with(Value::from(7)), Ok(ClientId::parse("7").ok()));
        assert_eq!(with(Value::Nil), Ok(None));
        assert_eq!(key(&layout, &args(vec![Value::from("t")])), Ok(None));
        assert_eq!(
            with(Value::from(1.5)).map_err(|e| e.code),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            with(Value::from("")).map_err(|e| e.code),
            Err(ErrorCode::BadRequest)
        );
    }

    #[test]
    fn a_rule_that_does_not_replay_relays_what_came_without_the_key() {
        let layout = Layout {
            text_argument: 1,
            text_field: None,
            key_argument: Some(2),
            append: vec![AppendSpec::User, AppendSpec::CreatedAt],
            rebuilt: false,
        };
        let sent = args(vec![
            Value::from("room-1"),
            Value::from("hi"),
            Value::from("k"),
        ]);
        assert_eq!(text(&layout, &sent), Ok("hi"));
        assert_eq!(
            relayed(&layout, &sent, Some(&stored(Some("hi")))),
            args(vec![
                Value::from("room-1"),
                Value::from("hi"),
                Value::from("guest-1"),
                Value::from("2026-11-29T10:00:00.000Z"),
            ])
        );
        assert_eq!(
            relayed(&layout, &sent, None),
            args(vec![Value::from("room-1"), Value::from("hi")])
        );
    }
}
