//! Requests between nodes and their answers, as Node's adapter 8.x writes them.
//!
//! Requests go to `key-request#nsp#` as JSON text, except a broadcast that waits for acks
//! (msgpack: its packet may hold binaries). Each carries the sender's `uid`. Answers go to
//! `key-response#nsp#` and carry the request's `requestId`; only three say their `type` (a
//! server-side emit's answer, a broadcast's client count, an ack, the last in msgpack), the
//! others are known by the request they answer.
//!
//! | type | request | answer |
//! |---|---|---|
//! | 0 | `{uid, requestId, type, rooms}`: socket ids in rooms (before 4.x) | `{requestId, sockets: [id]}` |
//! | 1 | `{uid, requestId, type}`: every room | `{requestId, rooms}` |
//! | 2, 3 | `{uid, type, opts: {rooms, except}, rooms}`: join, leave | none |
//! | 2, 3 | `{uid, requestId, type, sid, room}`: one socket (before 4.x) | `{requestId}` |
//! | 4 | `{uid, type, opts, close}`: disconnect | none (`{requestId}` for `{sid, close}`) |
//! | 5 | `{uid, requestId, type, opts}`: fetch sockets | `{requestId, sockets: [{id, handshake, rooms, data}]}` |
//! | 6 | `{uid, [requestId], type, data: [event, ...args]}`: server-side emit | `{type, requestId, data}` |
//! | 7 | msgpack `{uid, requestId, type, packet, opts}`: broadcast with acks | `{type: 8, requestId, clientCount}`, then msgpack `{type: 9, requestId, packet}` per ack |

use super::envelope::{NodePacket, Opts};
use super::json;
use super::wire::{self, WireError, array, field, map, string_list, text};
use rmpv::Value;

/// A request as it arrived: from whom, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub uid: Option<String>,
    pub request: Request,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Sockets {
        request_id: String,
        rooms: Vec<String>,
    },
    AllRooms {
        request_id: String,
    },
    Join {
        target: Target,
        rooms: Vec<String>,
    },
    Leave {
        target: Target,
        rooms: Vec<String>,
    },
    Disconnect {
        target: Target,
        close: bool,
    },
    Fetch {
        request_id: String,
        opts: Opts,
    },
    ServerSideEmit {
        request_id: Option<String>,
        data: Value,
    },
    Broadcast {
        request_id: String,
        packet: NodePacket,
        opts: Opts,
    },
}

/// The sockets a join, leave or disconnect applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A selection (socket.io 4.x's `socketsJoin`, `socketsLeave`, `disconnectSockets`).
    Select(Opts),
    /// One socket by id, answered with `{requestId}` (the older `remoteJoin` family).
    Socket { request_id: String, sid: String },
}

/// One socket as a fetch answers it (Node's `RemoteSocket` is built from this).
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedSocket {
    pub id: String,
    pub handshake: Value,
    pub rooms: Vec<String>,
    pub data: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Sockets {
        request_id: String,
        sockets: Vec<String>,
    },
    Rooms {
        request_id: String,
        rooms: Vec<String>,
    },
    Done {
        request_id: String,
    },
    Fetched {
        request_id: String,
        sockets: Vec<FetchedSocket>,
    },
    ServerSideEmit {
        request_id: String,
        data: Value,
    },
    ClientCount {
        request_id: String,
        client_count: u64,
    },
    Ack {
        request_id: String,
        packet: Option<Value>,
    },
}

const SOCKETS: u64 = 0;
const ALL_ROOMS: u64 = 1;
const REMOTE_JOIN: u64 = 2;
const REMOTE_LEAVE: u64 = 3;
const REMOTE_DISCONNECT: u64 = 4;
const REMOTE_FETCH: u64 = 5;
const SERVER_SIDE_EMIT: u64 = 6;
const BROADCAST: u64 = 7;
const BROADCAST_CLIENT_COUNT: u64 = 8;
const BROADCAST_ACK: u64 = 9;

type Pairs = Vec<(Value, Value)>;

fn id(pairs: &mut Pairs) -> Result<String, WireError> {
    text(
        field(pairs, "requestId").ok_or(WireError::Shape("requestId"))?,
        "requestId",
    )
}

fn opts(pairs: &mut Pairs) -> Result<Opts, WireError> {
    Opts::from_value(field(pairs, "opts").ok_or(WireError::Shape("opts"))?)
}

fn rooms(pairs: &mut Pairs, name: &'static str) -> Result<Vec<String>, WireError> {
    field(pairs, name).map_or(Ok(Vec::new()), |v| string_list(v, name))
}

/// The sockets of a join, leave or disconnect, and for one socket the room it names.
fn target(pairs: &mut Pairs) -> Result<(Target, Option<String>), WireError> {
    if pairs.iter().any(|(k, _)| k.as_str() == Some("opts")) {
        return Ok((Target::Select(opts(pairs)?), None));
    }
    let request_id = id(pairs)?;
    let sid = text(field(pairs, "sid").ok_or(WireError::Shape("sid"))?, "sid")?;
    let room = field(pairs, "room").map(|r| text(r, "room")).transpose()?;
    Ok((Target::Socket { request_id, sid }, room))
}

impl Incoming {
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut pairs = map(wire::read(bytes)?, "request")?;
        let uid = field(&mut pairs, "uid").and_then(|u| text(u, "uid").ok());
        let kind = field(&mut pairs, "type").and_then(|t| t.as_u64());
        let p = &mut pairs;
        let request = match kind.ok_or(WireError::Shape("request type"))? {
            SOCKETS => Request::Sockets {
                request_id: id(p)?,
                rooms: rooms(p, "rooms")?,
            },
            ALL_ROOMS => Request::AllRooms { request_id: id(p)? },
            kind @ (REMOTE_JOIN | REMOTE_LEAVE) => {
                let (target, room) = target(p)?;
                let rooms = match room {
                    Some(room) => vec![room],
                    None => rooms(p, "rooms")?,
                };
                if kind == REMOTE_JOIN {
                    Request::Join { target, rooms }
                } else {
                    Request::Leave { target, rooms }
                }
            }
            REMOTE_DISCONNECT => Request::Disconnect {
                target: target(p)?.0,
                close: field(p, "close").and_then(|c| c.as_bool()) == Some(true),
            },
            REMOTE_FETCH => Request::Fetch {
                request_id: id(p)?,
                opts: opts(p)?,
            },
            SERVER_SIDE_EMIT => Request::ServerSideEmit {
                request_id: id(p).ok(),
                data: field(p, "data").ok_or(WireError::Shape("data"))?,
            },
            BROADCAST => Request::Broadcast {
                request_id: id(p)?,
                packet: NodePacket::from_value(
                    field(p, "packet").ok_or(WireError::Shape("packet"))?,
                )?,
                opts: opts(p)?,
            },
            _ => return Err(WireError::Shape("a known request type")),
        };
        Ok(Self { uid, request })
    }
}

impl Request {
    /// The bytes Node would publish for this request from node `uid`.
    pub fn encode(&self, uid: &str) -> Vec<u8> {
        let mut pairs: Pairs = vec![("uid".into(), uid.into())];
        let mut put = |name: &str, value: Value| pairs.push((name.into(), value));
        let list = |l: &[String]| Value::Array(l.iter().map(|r| r.as_str().into()).collect());
        match self {
            Self::Sockets { request_id, rooms } => {
                put("requestId", request_id.as_str().into());
                put("type", SOCKETS.into());
                put("rooms", list(rooms));
            }
            Self::AllRooms { request_id } => {
                put("requestId", request_id.as_str().into());
                put("type", ALL_ROOMS.into());
            }
            Self::Join { target, rooms } | Self::Leave { target, rooms } => {
                let kind = if matches!(self, Self::Join { .. }) {
                    REMOTE_JOIN
                } else {
                    REMOTE_LEAVE
                };
                match target {
                    Target::Select(opts) => {
                        put("type", kind.into());
                        put("opts", opts.to_value(false));
                        put("rooms", list(rooms));
                    }
                    Target::Socket { request_id, sid } => {
                        put("requestId", request_id.as_str().into());
                        put("type", kind.into());
                        put("sid", sid.as_str().into());
                        put(
                            "room",
                            rooms.first().map_or(Value::Nil, |r| r.as_str().into()),
                        );
                    }
                }
            }
            Self::Disconnect { target, close } => {
                match target {
                    Target::Select(opts) => {
                        put("type", REMOTE_DISCONNECT.into());
                        put("opts", opts.to_value(false));
                    }
                    Target::Socket { request_id, sid } => {
                        put("requestId", request_id.as_str().into());
                        put("type", REMOTE_DISCONNECT.into());
                        put("sid", sid.as_str().into());
                    }
                }
                put("close", (*close).into());
            }
            Self::Fetch { request_id, opts } => {
                put("requestId", request_id.as_str().into());
                put("type", REMOTE_FETCH.into());
                put("opts", opts.to_value(false));
            }
            Self::ServerSideEmit { request_id, data } => {
                if let Some(request_id) = request_id {
                    put("requestId", request_id.as_str().into());
                }
                put("type", SERVER_SIDE_EMIT.into());
                put("data", data.clone());
            }
            Self::Broadcast {
                request_id,
                packet,
                opts,
            } => {
                put("requestId", request_id.as_str().into());
                put("type", BROADCAST.into());
                put("packet", packet.to_value());
                put("opts", opts.to_value(true));
                return wire::msgpack(&Value::Map(pairs));
            }
        }
        json::stringify(&Value::Map(pairs)).into_bytes()
    }
}

impl FetchedSocket {
    fn from_value(value: Value) -> Result<Self, WireError> {
        let mut pairs = map(value, "socket")?;
        Ok(Self {
            id: text(field(&mut pairs, "id").ok_or(WireError::Shape("id"))?, "id")?,
            handshake: field(&mut pairs, "handshake").unwrap_or(Value::Nil),
            rooms: rooms(&mut pairs, "rooms")?,
            data: field(&mut pairs, "data").unwrap_or(Value::Nil),
        })
    }

    fn to_value(&self) -> Value {
        Value::Map(vec![
            ("id".into(), self.id.as_str().into()),
            ("handshake".into(), self.handshake.clone()),
            (
                "rooms".into(),
                Value::Array(self.rooms.iter().map(|r| r.as_str().into()).collect()),
            ),
            ("data".into(), self.data.clone()),
        ])
    }
}

impl Response {
    pub fn request_id(&self) -> &str {
        match self {
            Self::Sockets { request_id, .. }
            | Self::Rooms { request_id, .. }
            | Self::Done { request_id }
            | Self::Fetched { request_id, .. }
            | Self::ServerSideEmit { request_id, .. }
            | Self::ClientCount { request_id, .. }
            | Self::Ack { request_id, .. } => request_id,
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut pairs = map(wire::read(bytes)?, "response")?;
        let kind = field(&mut pairs, "type").and_then(|t| t.as_u64());
        let request_id = id(&mut pairs)?;
        let p = &mut pairs;
        Ok(match kind {
            Some(BROADCAST_CLIENT_COUNT) => Self::ClientCount {
                request_id,
                client_count: field(p, "clientCount")
                    .and_then(|c| c.as_u64())
                    .unwrap_or(0),
            },
            Some(BROADCAST_ACK) => Self::Ack {
                request_id,
                packet: field(p, "packet"),
            },
            Some(SERVER_SIDE_EMIT) => Self::ServerSideEmit {
                request_id,
                data: field(p, "data").unwrap_or(Value::Nil),
            },
            _ => match (field(p, "sockets"), field(p, "rooms")) {
                (Some(sockets), _) => {
                    let sockets = array(sockets, "sockets")?;
                    if sockets.iter().all(Value::is_str) {
                        let sockets = string_list(Value::Array(sockets), "socket ids")?;
                        Self::Sockets {
                            request_id,
                            sockets,
                        }
                    } else {
                        let sockets = sockets.into_iter().map(FetchedSocket::from_value);
                        Self::Fetched {
                            request_id,
                            sockets: sockets.collect::<Result<_, _>>()?,
                        }
                    }
                }
                (None, Some(rooms)) => Self::Rooms {
                    request_id,
                    rooms: string_list(rooms, "rooms")?,
                },
                (None, None) => Self::Done { request_id },
            },
        })
    }

    /// The bytes Node would publish for this answer.
    pub fn encode(&self) -> Vec<u8> {
        let id = |request_id: &str| ("requestId".into(), request_id.into());
        let list = |l: &[String]| Value::Array(l.iter().map(|r| r.as_str().into()).collect());
        let pairs: Pairs = match self {
            Self::Sockets {
                request_id,
                sockets,
            } => {
                vec![id(request_id), ("sockets".into(), list(sockets))]
            }
            Self::Rooms { request_id, rooms } => {
                vec![id(request_id), ("rooms".into(), list(rooms))]
            }
            Self::Done { request_id } => vec![id(request_id)],
            Self::Fetched {
                request_id,
                sockets,
            } => vec![
                id(request_id),
                (
                    "sockets".into(),
                    Value::Array(sockets.iter().map(FetchedSocket::to_value).collect()),
                ),
            ],
            Self::ServerSideEmit { request_id, data } => vec![
                ("type".into(), SERVER_SIDE_EMIT.into()),
                id(request_id),
                ("data".into(), data.clone()),
            ],
            Self::ClientCount {
                request_id,
                client_count,
            } => vec![
                ("type".into(), BROADCAST_CLIENT_COUNT.into()),
                id(request_id),
                ("clientCount".into(), (*client_count).into()),
            ],
            Self::Ack { request_id, packet } => {
                let mut pairs = vec![("type".into(), BROADCAST_ACK.into()), id(request_id)];
                // Node leaves out a key whose value is `undefined` (an ack with no argument).
                if let Some(packet) = packet {
                    pairs.push(("packet".into(), packet.clone()));
                }
                return wire::msgpack(&Value::Map(pairs));
            }
        };
        json::stringify(&Value::Map(pairs)).into_bytes()
    }
}
