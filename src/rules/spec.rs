//! A `[[rules]]` table as written in the TOML file, before it is checked (mod.rs).

use serde::Deserialize;

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
    /// Which argument holds the text to store, counted from 0 [default: 0].
    pub text_argument: Option<usize>,
    /// Where the text is in that argument: this field of an object [default: the argument
    /// itself, which must then be a string].
    pub text_field: Option<String>,
    /// Which argument holds the client's idempotency key (a string or a number): a message
    /// sent again with a key stored in its room stores nothing new and is answered as the
    /// first. The key is the sender's: it is not relayed [default: none].
    pub key_argument: Option<usize>,
    /// Fields of the stored message appended to the relayed arguments, in order: `id`,
    /// `user` (the author's name), `created_at` [default: none].
    #[serde(default)]
    pub append: Vec<AppendSpec>,
    /// On connect, the socket is sent what was stored after an offset its handshake's `auth`
    /// carries (`replay = { auth = "serverOffset" }`), in order, as the rule relays it.
    pub replay: Option<ReplaySpec>,
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

/// `to = "others"`, `to = "everyone"`, `to = "sender_rooms"`, `to = "argument"`,
/// `to = { room = "lobby" }`, `to = { field = "room" }`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetSpec {
    /// Every other socket of the namespace (Node's `socket.broadcast.emit`).
    #[default]
    Others,
    /// Every socket of the namespace, the sender's too (Node's `io.emit`).
    Everyone,
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
    /// As Node's `callback()`: an acknowledgement with no value once the event is relayed (and
    /// stored, or found stored under its key). A failure a retry may cure (`unavailable`,
    /// `rate_limited`) is not answered, so that the client's `retries` send it again; any other
    /// failure is answered `{ ok: false, error }`.
    Empty,
}

/// `append = ["id", "user", "created_at"]`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AppendSpec {
    /// The stored message's id (a string of 32 hex digits).
    Id,
    /// The author's name.
    User,
    /// When it was stored, RFC 3339.
    CreatedAt,
}

/// `replay = { auth = "serverOffset" }`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReplaySpec {
    /// The field of the handshake's `auth` that holds the offset: the id of the last message
    /// the client has, or `0` (or nothing) for everything.
    pub auth: String,
}
