//! Where a rule finds what it stores among an event's arguments, what it relays, and what it
//! replays: checked once, at start (mod.rs); applied to events in realtime/layout.rs.

use super::spec::{AppendSpec, ReplaySpec, RuleSpec};
use crate::chat::RoomName;

/// The most arguments a rule may point into: Node apps send a few.
const MAX_ARGUMENT: usize = 15;

/// The arguments of a rule's event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layout {
    /// The argument that holds the text to store.
    pub text_argument: usize,
    /// The field of that argument that holds it (else the argument is the text).
    pub text_field: Option<String>,
    /// The argument that holds the client's idempotency key; not relayed.
    pub key_argument: Option<usize>,
    /// Fields of the stored message appended to what is relayed.
    pub append: Vec<AppendSpec>,
    /// Relayed as the text and `append` alone, so that a replay (rebuilt from the store) and
    /// the live event look alike: set for rules that replay.
    pub rebuilt: bool,
}

/// What a rule sends a socket that connects: what was stored in `room` after the offset in
/// `auth[auth_field]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    pub auth_field: String,
    pub room: RoomName,
}

impl Layout {
    /// The layout of `spec`, which stores when `stores`.
    pub(super) fn parse(spec: &RuleSpec, stores: bool) -> Result<Self, String> {
        let text_argument = spec.text_argument.unwrap_or(0);
        for (key, index) in [
            ("text_argument", Some(text_argument)),
            ("key_argument", spec.key_argument),
        ] {
            if index.is_some_and(|i| i > MAX_ARGUMENT) {
                return Err(format!("{key} must be 0 to {MAX_ARGUMENT}"));
            }
        }
        if !stores {
            let stored_only = [
                ("text_field", spec.text_field.is_some()),
                ("text_argument", spec.text_argument.is_some()),
                ("key_argument", spec.key_argument.is_some()),
                ("append", !spec.append.is_empty()),
                ("replay", spec.replay.is_some()),
            ];
            if let Some((key, _)) = stored_only.iter().find(|(_, set)| *set) {
                return Err(format!("{key} is only used with store"));
            }
        }
        if spec.text_field.as_deref() == Some("") {
            return Err("text_field is empty".to_owned());
        }
        if spec.key_argument == Some(text_argument) {
            return Err("key_argument and text_argument name the same argument".to_owned());
        }
        if spec.replay.is_some() && spec.text_field.is_some() {
            return Err(
                "replay rebuilds the event from the stored text: the text must be an argument of its own, not text_field"
                    .to_owned(),
            );
        }
        Ok(Self {
            text_argument,
            text_field: spec.text_field.clone(),
            key_argument: spec.key_argument,
            append: spec.append.clone(),
            rebuilt: spec.replay.is_some(),
        })
    }
}

impl Replay {
    pub(super) fn parse(spec: &ReplaySpec, room: Option<&RoomName>) -> Result<Self, String> {
        let room = room.ok_or(
            "replay needs one room to replay: store = \"<room>\" (or to = { room = … } with store = true)",
        )?;
        if spec.auth.is_empty() || spec.auth.len() > 64 {
            return Err("replay.auth must be 1 to 64 characters".to_owned());
        }
        Ok(Self {
            auth_field: spec.auth.clone(),
            room: room.clone(),
        })
    }
}
