//! Relay rules: events of frontends written for a Node socket.io server, served without code.
//!
//! A rule says: on this namespace, an incoming event is relayed under an outgoing name to a
//! target, optionally stored in a room's history, and how the sender's acknowledgement is
//! answered. Rules come from the TOML file (`[[rules]]`, docs/migrating-from-node.md) and are
//! checked once, at start; nothing here does I/O.

use crate::chat::RoomName;
use crate::wire::{Command, event};
use serde::Deserialize;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The namespace of the chat contract.
pub const CHAT_NAMESPACE: &str = "/";

/// Event names Socket.IO keeps for itself: a client cannot send them and a server must not emit
/// them.
const RESERVED_EVENTS: [&str; 7] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
    "error",
];

/// The contract's events: on `/`, a rule cannot emit one (a client could forge a `message`).
const CHAT_EVENTS: [&str; 8] = event::BROADCAST;

/// The admin UI's namespace: never a rule's.
const ADMIN_NAMESPACE: &str = "/admin";

const DEFAULT_ACK_TIMEOUT_MS: u64 = 5_000;

/// One `[[rules]]` table as written in the file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// The namespace the rule serves; other namespaces than `/` are opened by their rules
    /// [default: `/`].
    pub namespace: Option<String>,
    /// The incoming event's name.
    pub on: String,
    /// What the event does [default: `relay`].
    #[serde(default)]
    pub action: Action,
    /// The name it is relayed under [default: the incoming name; with `join` or `leave`,
    /// nothing is relayed unless it is set].
    pub emit: Option<String>,
    /// Who gets it [default: every other socket of the namespace].
    #[serde(default)]
    pub to: TargetSpec,
    /// The sender gets it too, as with Node's `io.to(room).emit` [default: false].
    #[serde(default)]
    pub echo: bool,
    /// `true`: stored in the target room's history; a room name: stored in that room's.
    pub store: Option<StoreSpec>,
    /// Where the text to store is in the payload's first argument: that field of an object
    /// [default: the argument itself, which must then be a string].
    pub text_field: Option<String>,
    /// How the sender's acknowledgement is answered [default: `server`].
    #[serde(default)]
    pub ack: AckMode,
    /// Milliseconds `ack = "receivers"` waits for the receivers' answers [default: 5000].
    pub ack_timeout_ms: Option<u64>,
}

/// What a rule's event does.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Relays the event to its target.
    #[default]
    Relay,
    /// Puts the sender's socket in the target room (Node's `socket.join(room)`); with `emit`
    /// set, the event is then relayed to the room's other sockets.
    Join,
    /// Takes the sender's socket out of the target room (Node's `socket.leave(room)`); with
    /// `emit` set, the event is first relayed to the room's other sockets.
    Leave,
}

/// `to = "others"`, `to = "sender_rooms"`, `to = "argument"`, `to = { room = "lobby" }`,
/// `to = { field = "room" }`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetSpec {
    /// Every other socket of the namespace (Node's `socket.broadcast.emit`).
    #[default]
    Others,
    /// Every room the sender's socket is in, but its own personal room (Node's
    /// `socket.to([...socket.rooms])`).
    SenderRooms,
    /// The room the payload's first argument names (a string).
    Argument,
    /// One fixed room.
    Room(String),
    /// The room named by this field of the payload's first argument (an object).
    Field(String),
}

/// `store = true` or `store = "room"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum StoreSpec {
    Target(bool),
    Room(String),
}

/// How a relayed event's acknowledgement is answered, when the sender asked for one.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AckMode {
    /// The server answers once the event is relayed (and stored): `{ ok: true }`, with the
    /// stored `message` when there is one; failures as `{ ok: false, error }`.
    #[default]
    Server,
    /// Passed through: the event goes to the receivers with an acknowledgement, and the sender's
    /// is answered with the array of their answers (Node's broadcast with an ack).
    Receivers,
}

/// Who a relayed event goes to, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Others,
    SenderRooms,
    Argument,
    Room(RoomName),
    Field(String),
}

/// Where a relayed event is stored.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreIn {
    /// The room the event went to (a `room` or `field` target).
    Target,
    Room(RoomName),
}

/// A checked rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub namespace: String,
    pub on: String,
    pub action: Action,
    /// Set: the event is relayed under this name.
    pub emit: Option<String>,
    pub to: Target,
    pub echo: bool,
    pub store: Option<StoreIn>,
    pub text_field: Option<String>,
    pub ack: AckMode,
    pub ack_timeout: Duration,
}

/// Every rule of the configuration.
#[derive(Debug, Clone, Default)]
pub struct Rules(Arc<[Arc<Rule>]>);

impl Rules {
    /// Checks every rule; the first invalid one is named in the error.
    pub fn parse(specs: &[RuleSpec]) -> Result<Self, String> {
        let mut seen = HashSet::new();
        let mut rules = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let rule =
                Rule::parse(spec).map_err(|why| format!("rules[{i}] ({}): {why}", spec.on))?;
            if !seen.insert((rule.namespace.clone(), rule.on.clone())) {
                return Err(format!(
                    "rules[{i}]: a second rule for '{}' on namespace '{}'",
                    rule.on, rule.namespace
                ));
            }
            rules.push(Arc::new(rule));
        }
        Ok(Self(rules.into()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The rules that serve `namespace`.
    pub fn of(&self, namespace: &str) -> impl Iterator<Item = &Arc<Rule>> {
        self.0.iter().filter(move |r| r.namespace == namespace)
    }

    /// Namespaces other than `/` that rules open.
    pub fn extra_namespaces(&self) -> BTreeSet<&str> {
        self.0
            .iter()
            .map(|r| r.namespace.as_str())
            .filter(|ns| *ns != CHAT_NAMESPACE)
            .collect()
    }
}

impl Rule {
    fn parse(spec: &RuleSpec) -> Result<Self, String> {
        let namespace = spec
            .namespace
            .clone()
            .unwrap_or_else(|| CHAT_NAMESPACE.to_owned());
        check_namespace(&namespace)?;
        check_event("on", &spec.on)?;
        if namespace == CHAT_NAMESPACE && Command::named(&spec.on).is_some() {
            return Err(format!(
                "'{}' is a command of the chat contract on '/': use another name or namespace",
                spec.on
            ));
        }
        let emit = match spec.action {
            Action::Relay => Some(spec.emit.clone().unwrap_or_else(|| spec.on.clone())),
            Action::Join | Action::Leave => spec.emit.clone(),
        };
        if let Some(emit) = &emit {
            check_event("emit", emit)?;
            if namespace == CHAT_NAMESPACE && CHAT_EVENTS.contains(&emit.as_str()) {
                return Err(format!(
                    "emit = '{emit}' is an event of the chat contract on '/': clients would take it for the server's"
                ));
            }
        }
        let to = match &spec.to {
            TargetSpec::Others => Target::Others,
            TargetSpec::SenderRooms => Target::SenderRooms,
            TargetSpec::Argument => Target::Argument,
            TargetSpec::Room(room) => Target::Room(room_name(room)?),
            TargetSpec::Field(field) if field.is_empty() => {
                return Err("to.field is empty".to_owned());
            }
            TargetSpec::Field(field) => Target::Field(field.clone()),
        };
        let store = match &spec.store {
            None | Some(StoreSpec::Target(false)) => None,
            Some(StoreSpec::Target(true)) => match to {
                Target::Room(_) | Target::Field(_) | Target::Argument => Some(StoreIn::Target),
                Target::Others | Target::SenderRooms => {
                    return Err(
                        "store = true needs a room target (to.room, to.field or \"argument\"); name the room to store in instead"
                            .to_owned(),
                    );
                }
            },
            Some(StoreSpec::Room(room)) => Some(StoreIn::Room(room_name(room)?)),
        };
        if spec.text_field.is_some() && store.is_none() {
            return Err("text_field is only used with store".to_owned());
        }
        if spec.text_field.as_deref() == Some("") {
            return Err("text_field is empty".to_owned());
        }
        if spec.action != Action::Relay {
            if namespace == CHAT_NAMESPACE {
                return Err(
                    "join and leave rules serve other namespaces: on '/', the contract's join and leave keep memberships"
                        .to_owned(),
                );
            }
            if matches!(to, Target::Others | Target::SenderRooms) {
                return Err(
                    "join and leave need a room target (to.room, to.field or \"argument\")"
                        .to_owned(),
                );
            }
            if store.is_some() || spec.ack == AckMode::Receivers || spec.echo {
                return Err("join and leave take no store, echo or ack = \"receivers\"".to_owned());
            }
        }
        let ack_timeout_ms = spec.ack_timeout_ms.unwrap_or(DEFAULT_ACK_TIMEOUT_MS);
        if !(1..=60_000).contains(&ack_timeout_ms) {
            return Err("ack_timeout_ms must be 1 to 60000".to_owned());
        }
        Ok(Self {
            namespace,
            on: spec.on.clone(),
            action: spec.action,
            emit,
            to,
            echo: spec.echo,
            store,
            text_field: spec.text_field.clone(),
            ack: spec.ack,
            ack_timeout: Duration::from_millis(ack_timeout_ms),
        })
    }
}

fn check_namespace(ns: &str) -> Result<(), String> {
    if ns == ADMIN_NAMESPACE {
        return Err(format!("namespace '{ns}' is the admin UI's"));
    }
    let valid = ns.starts_with('/')
        && ns.len() <= 64
        && ns
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_-.".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "namespace '{ns}' must begin with '/' and hold only letters, digits and / _ - . (at most 64)"
        ))
    }
}

fn check_event(key: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(format!(
            "{key} must be 1 to 128 characters without control characters"
        ));
    }
    if RESERVED_EVENTS.contains(&name) {
        return Err(format!("{key} = '{name}' is an event Socket.IO reserves"));
    }
    Ok(())
}

fn room_name(raw: &str) -> Result<RoomName, String> {
    RoomName::parse(raw).map_err(|e| format!("room '{raw}': {}", e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Rules, String> {
        #[derive(Deserialize)]
        struct File {
            rules: Vec<RuleSpec>,
        }
        let file: File = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        Rules::parse(&file.rules)
    }

    #[test]
    fn the_classic_chat_rule_takes_three_lines() -> Result<(), String> {
        let rules = parse("[[rules]]\non = \"send-chat-message\"\nemit = \"chat-message\"\n")?;
        let rule = rules.of("/").next().ok_or("no rule on /")?;
        assert_eq!(rule.on, "send-chat-message");
        assert_eq!(rule.emit.as_deref(), Some("chat-message"));
        assert_eq!(rule.action, Action::Relay);
        assert_eq!(rule.to, Target::Others);
        assert_eq!(rule.ack, AckMode::Server);
        assert!(rule.store.is_none() && !rule.echo);
        assert!(rules.extra_namespaces().is_empty());
        Ok(())
    }

    #[test]
    fn every_target_and_store_form_reads() -> Result<(), String> {
        let rules = parse(
            r#"
            [[rules]]
            namespace = "/legacy"
            on = "a"
            to = "sender_rooms"
            [[rules]]
            namespace = "/legacy"
            on = "b"
            to = { room = "lobby" }
            store = true
            [[rules]]
            namespace = "/legacy"
            on = "c"
            to = { field = "room" }
            store = true
            text_field = "text"
            ack = "receivers"
            ack_timeout_ms = 250
            [[rules]]
            on = "d"
            store = "log"
            echo = true
            [[rules]]
            namespace = "/legacy"
            on = "join-room"
            action = "join"
            to = "argument"
            "#,
        )?;
        let legacy: Vec<_> = rules.of("/legacy").collect();
        assert_eq!(legacy.len(), 4);
        assert_eq!(legacy[3].action, Action::Join);
        assert_eq!(legacy[3].to, Target::Argument);
        assert_eq!(legacy[3].emit, None);
        assert_eq!(legacy[0].to, Target::SenderRooms);
        assert_eq!(
            legacy[1].to,
            Target::Room(RoomName::parse("lobby").map_err(|e| e.message)?)
        );
        assert_eq!(legacy[2].to, Target::Field("room".to_owned()));
        assert_eq!(legacy[2].store, Some(StoreIn::Target));
        assert_eq!(legacy[2].ack_timeout, Duration::from_millis(250));
        let root = rules.of("/").next().ok_or("no rule on /")?;
        assert_eq!(
            root.store,
            Some(StoreIn::Room(
                RoomName::parse("log").map_err(|e| e.message)?
            ))
        );
        assert!(root.echo);
        assert_eq!(
            rules.extra_namespaces().into_iter().collect::<Vec<_>>(),
            ["/legacy"]
        );
        Ok(())
    }

    #[test]
    fn mistakes_are_refused_with_the_rule_named() {
        let cases = [
            ("[[rules]]\non = \"join\"", "command of the chat contract"),
            ("[[rules]]\non = \"connect\"", "reserves"),
            ("[[rules]]\non = \"x\"\nemit = \"disconnect\"", "reserves"),
            (
                "[[rules]]\non = \"x\"\nnamespace = \"chat\"",
                "must begin with '/'",
            ),
            (
                "[[rules]]\non = \"x\"\nto = { room = \"user:bob\" }",
                "reserved",
            ),
            (
                "[[rules]]\non = \"x\"\nto = { room = \"a b\" }",
                "room 'a b'",
            ),
            ("[[rules]]\non = \"x\"\nstore = true", "needs a room target"),
            (
                "[[rules]]\non = \"x\"\ntext_field = \"t\"",
                "only used with store",
            ),
            ("[[rules]]\non = \"x\"\nack_timeout_ms = 0", "1 to 60000"),
            (
                "[[rules]]\non = \"x\"\n[[rules]]\non = \"x\"",
                "a second rule",
            ),
            (
                "[[rules]]\non = \"x\"\nto = \"everyone\"",
                "unknown variant",
            ),
            ("[[rules]]\non = \"x\"\nack = \"maybe\"", "unknown variant"),
            ("[[rules]]\non = \"x\"\nstor = true", "unknown field"),
            (
                "[[rules]]\nnamespace = \"/o\"\non = \"x\"\naction = \"join\"",
                "need a room target",
            ),
            (
                "[[rules]]\nnamespace = \"/o\"\non = \"x\"\naction = \"leave\"\nto = \"argument\"\necho = true",
                "take no store",
            ),
            (
                "[[rules]]\non = \"x\"\naction = \"join\"\nto = \"argument\"",
                "other namespaces",
            ),
            (
                "[[rules]]\non = \"x\"\nemit = \"message\"",
                "event of the chat contract",
            ),
            ("[[rules]]\nnamespace = \"/admin\"\non = \"x\"", "admin UI"),
            ("[[rules]]\non = \"x\"\nack = \"none\"", "unknown variant"),
        ];
        for (text, why) in cases {
            match parse(text) {
                Ok(_) => panic!("accepted {text:?}"),
                Err(e) => assert!(e.contains(why), "{text:?}: {e}"),
            }
        }
    }

    #[test]
    fn the_join_command_is_free_on_other_namespaces() {
        assert!(parse("[[rules]]\nnamespace = \"/old\"\non = \"join\"").is_ok());
    }
}
