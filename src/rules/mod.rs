//! Relay rules: events of frontends written for a Node socket.io server, served without code.
//!
//! A rule says: on this namespace, an incoming event is relayed under an outgoing name to a
//! target, optionally stored in a room's history, and how the sender's acknowledgement is
//! answered. Rules come from the TOML file (`[[rules]]`, docs/migrating-from-node.md) and are
//! checked once, at start; nothing here does I/O.

mod layout;
mod spec;

pub use layout::{Layout, Replay};
pub use spec::{AckMode, Action, AppendSpec, ReplaySpec, RuleSpec, StoreSpec, TargetSpec};

use crate::chat::RoomName;
use crate::wire::{Command, event};
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

/// The admin UI's namespace: never a rule's, nor a recovering one.
pub const ADMIN_NAMESPACE: &str = "/admin";

const DEFAULT_ACK_TIMEOUT_MS: u64 = 5_000;

/// Who a relayed event goes to, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Others,
    Everyone,
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
    /// Where the stored text and key are among the event's arguments, and what is relayed.
    pub layout: Layout,
    /// What a socket that connects is sent first.
    pub replay: Option<Replay>,
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

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.0.iter()
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
            TargetSpec::Everyone => Target::Everyone,
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
                Target::Others | Target::Everyone | Target::SenderRooms => {
                    return Err(
                        "store = true needs a room target (to.room, to.field or \"argument\"); name the room to store in instead"
                            .to_owned(),
                    );
                }
            },
            Some(StoreSpec::Room(room)) => Some(StoreIn::Room(room_name(room)?)),
        };
        if spec.echo && to == Target::Everyone {
            return Err(
                "to = \"everyone\" reaches the sender already: echo would send it twice".to_owned(),
            );
        }
        let layout = Layout::parse(spec, store.is_some())?;
        let replay = match &spec.replay {
            None => None,
            Some(replay) => {
                if to != Target::Everyone {
                    return Err(
                        "replay sends every socket of the namespace the room's messages: it needs to = \"everyone\""
                            .to_owned(),
                    );
                }
                if spec.ack == AckMode::Receivers {
                    return Err("replay takes no ack = \"receivers\"".to_owned());
                }
                let room = match (&store, &to) {
                    (Some(StoreIn::Room(room)), _)
                    | (Some(StoreIn::Target), Target::Room(room)) => Some(room),
                    _ => None,
                };
                Some(Replay::parse(replay, room)?)
            }
        };
        if spec.action != Action::Relay {
            if namespace == CHAT_NAMESPACE {
                return Err(
                    "join and leave rules serve other namespaces: on '/', the contract's join and leave keep memberships"
                        .to_owned(),
                );
            }
            if matches!(to, Target::Others | Target::Everyone | Target::SenderRooms) {
                return Err(
                    "join and leave need a room target (to.room, to.field or \"argument\")"
                        .to_owned(),
                );
            }
            if store.is_some() || spec.ack != AckMode::Server || spec.echo {
                return Err("join and leave take no store, echo or ack mode".to_owned());
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
            layout,
            replay,
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
    use serde::Deserialize;

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
        assert_eq!(legacy[2].layout.text_field.as_deref(), Some("text"));
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
            ("[[rules]]\non = \"x\"\nto = \"all\"", "unknown variant"),
            (
                "[[rules]]\non = \"x\"\nto = \"everyone\"\necho = true",
                "twice",
            ),
            (
                "[[rules]]\non = \"x\"\nkey_argument = 1",
                "only used with store",
            ),
            (
                "[[rules]]\non = \"x\"\nappend = [\"id\"]",
                "only used with store",
            ),
            (
                "[[rules]]\non = \"x\"\nappend = [\"ip\"]",
                "unknown variant",
            ),
            (
                "[[rules]]\non = \"x\"\nstore = \"r\"\nkey_argument = 0",
                "same argument",
            ),
            (
                "[[rules]]\non = \"x\"\nstore = \"r\"\ntext_argument = 16",
                "0 to 15",
            ),
            (
                "[[rules]]\non = \"x\"\nstore = \"r\"\nreplay = { auth = \"o\" }",
                "needs to = \"everyone\"",
            ),
            (
                "[[rules]]\nnamespace = \"/o\"\non = \"x\"\nto = \"everyone\"\nstore = \"r\"\ntext_field = \"t\"\nreplay = { auth = \"o\" }",
                "not text_field",
            ),
            (
                "[[rules]]\non = \"x\"\nto = \"everyone\"\nstore = \"r\"\nreplay = { auth = \"\" }",
                "1 to 64",
            ),
            (
                "[[rules]]\nnamespace = \"/o\"\non = \"x\"\naction = \"join\"\nto = \"argument\"\nack = \"empty\"",
                "take no store",
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
    fn the_socketio_tutorial_s_server_is_one_rule() -> Result<(), String> {
        let rules = parse(include_str!(
            "../../examples/socketio-tutorial/chatoxide.toml"
        ))?;
        let rule = rules.of("/").next().ok_or("no rule on /")?;
        assert_eq!(rule.on, "chat message");
        assert_eq!(rule.emit.as_deref(), Some("chat message"));
        assert_eq!(rule.to, Target::Everyone);
        assert_eq!(rule.ack, AckMode::Empty);
        let tutorial = RoomName::parse("tutorial").map_err(|e| e.message)?;
        assert_eq!(rule.store, Some(StoreIn::Room(tutorial.clone())));
        assert_eq!(
            rule.layout,
            Layout {
                text_argument: 0,
                text_field: None,
                key_argument: Some(1),
                append: vec![AppendSpec::Id],
                rebuilt: true,
            }
        );
        assert_eq!(
            rule.replay,
            Some(Replay {
                auth_field: "serverOffset".to_owned(),
                room: tutorial,
            })
        );
        Ok(())
    }

    #[test]
    fn the_join_command_is_free_on_other_namespaces() {
        assert!(parse("[[rules]]\nnamespace = \"/old\"\non = \"join\"").is_ok());
    }
}
