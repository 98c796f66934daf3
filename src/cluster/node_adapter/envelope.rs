//! A broadcast as Node's adapter publishes it, and its parts: the msgpack array
//! `[uid, packet, opts]`, with `packet` a socket.io-parser packet before encoding
//! (`{ type: 2, data: [event, ...args], nsp }`, binary arguments as msgpack `bin`) and `opts`
//! `{ rooms, except, flags }`.
//!
//! Node always publishes an event as type 2 (EVENT), attachments inside `data`: its parser
//! makes it a BINARY_EVENT when it writes it to a socket, and would mangle a packet that
//! arrived as type 5. So type 2 is written whatever the packet carries, and 2 and 5 are read.

use super::json;
use super::wire::{WireError, array, field, map, string_list, text};
use rmpv::Value;
use socketioxide_core::adapter::{BroadcastFlags, BroadcastOptions, Room};
use socketioxide_core::packet::{Packet, PacketData};
use socketioxide_core::{Str, Value as SioValue};

/// socket.io-parser's packet types that carry an event.
const EVENT: u8 = 2;
const BINARY_EVENT: u8 = 5;

/// One broadcast on a `key#nsp#…` channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The publishing node's id: a node skips its own broadcasts.
    pub uid: String,
    pub packet: NodePacket,
    pub opts: Opts,
}

/// An event packet: its namespace and its data, `[event, ...args]`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePacket {
    pub nsp: String,
    pub data: Value,
}

/// Whom a broadcast or a request selects: sockets in any of `rooms` (every socket when there
/// are none), less those in any of `except`. A socket id is a room holding that socket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Opts {
    pub rooms: Vec<String>,
    pub except: Vec<String>,
    pub flags: Flags,
}

/// The broadcast flags that travel: `volatile`, `compress`, `local` (never published),
/// `broadcast`, and `timeout` (milliseconds, on broadcasts that wait for acks).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flags {
    pub volatile: bool,
    pub compress: Option<bool>,
    pub local: bool,
    pub broadcast: bool,
    pub timeout: Option<u64>,
}

impl Envelope {
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let value = rmpv::decode::read_value(&mut &bytes[..])?;
        let [uid, packet, opts] = <[Value; 3]>::try_from(array(value, "envelope")?)
            .map_err(|_| WireError::Shape("envelope of three"))?;
        Ok(Self {
            uid: text(uid, "uid")?,
            packet: NodePacket::from_value(packet)?,
            opts: Opts::from_value(opts)?,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let value = Value::Array(vec![
            self.uid.as_str().into(),
            self.packet.to_value(),
            self.opts.to_value(true),
        ]);
        super::wire::msgpack(&value)
    }
}

impl NodePacket {
    pub fn from_value(value: Value) -> Result<Self, WireError> {
        let mut pairs = map(value, "packet")?;
        let kind = field(&mut pairs, "type").and_then(|v| v.as_u64());
        if !matches!(kind, Some(k) if k == u64::from(EVENT) || k == u64::from(BINARY_EVENT)) {
            return Err(WireError::Shape("an event packet"));
        }
        let nsp = match field(&mut pairs, "nsp") {
            Some(nsp) => text(nsp, "nsp")?,
            None => "/".to_owned(),
        };
        let data = field(&mut pairs, "data").ok_or(WireError::Shape("packet data"))?;
        match &data {
            Value::Array(items) if items.first().is_some_and(Value::is_str) => {}
            _ => return Err(WireError::Shape("[event, ...args]")),
        }
        Ok(Self { nsp, data })
    }

    pub fn to_value(&self) -> Value {
        Value::Map(vec![
            ("type".into(), EVENT.into()),
            ("data".into(), self.data.clone()),
            ("nsp".into(), self.nsp.as_str().into()),
        ])
    }

    /// The packet socketioxide writes to its sockets: the data's JSON text, its attachments
    /// beside it.
    pub fn to_packet(&self) -> Packet {
        let (text, bins) = json::deconstruct(&self.data);
        let bins = (!bins.is_empty()).then_some(bins);
        Packet::event(
            Str::from(self.nsp.clone()),
            SioValue::Str(Str::from(text), bins),
        )
    }

    /// The event of a socketioxide packet, as Node publishes it; `None` for other packets.
    pub fn from_packet(packet: &Packet) -> Option<Self> {
        let (PacketData::Event(SioValue::Str(text, bins), _)
        | PacketData::BinaryEvent(SioValue::Str(text, bins), _)) = &packet.inner
        else {
            return None;
        };
        let data = json::reconstruct(text.as_str(), &bins.clone().unwrap_or_default()).ok()?;
        Some(Self {
            nsp: packet.ns.to_string(),
            data,
        })
    }
}

impl Opts {
    pub fn from_value(value: Value) -> Result<Self, WireError> {
        let mut pairs = map(value, "opts")?;
        let list = |v: Option<Value>, what| v.map_or(Ok(Vec::new()), |v| string_list(v, what));
        let rooms = list(field(&mut pairs, "rooms"), "rooms")?;
        let except = list(field(&mut pairs, "except"), "except")?;
        let flags = field(&mut pairs, "flags").map_or_else(Flags::default, Flags::from_value);
        Ok(Self {
            rooms,
            except,
            flags,
        })
    }

    /// `{ rooms, except }`, and `flags` when `with_flags` (requests other than broadcasts
    /// carry none).
    pub fn to_value(&self, with_flags: bool) -> Value {
        let list = |l: &[String]| Value::Array(l.iter().map(|r| r.as_str().into()).collect());
        let mut pairs = vec![
            ("rooms".into(), list(&self.rooms)),
            ("except".into(), list(&self.except)),
        ];
        if with_flags {
            pairs.push(("flags".into(), self.flags.to_value()));
        }
        Value::Map(pairs)
    }

    /// What socketioxide's local adapter needs to select the same sockets on this node.
    pub fn to_broadcast_options(&self) -> BroadcastOptions {
        let mut opts = BroadcastOptions::default();
        opts.rooms = self.rooms.iter().cloned().map(Room::Owned).collect();
        opts.except = self.except.iter().cloned().map(Room::Owned).collect();
        // No rooms is everyone; socketioxide says so with the broadcast flag (no sender).
        if opts.rooms.is_empty() {
            opts.add_flag(BroadcastFlags::Broadcast);
        }
        if self.flags.volatile {
            opts.add_flag(BroadcastFlags::Volatile);
        }
        opts
    }

    /// The same selection as Node writes it; `None` when it selects nobody (one socket by id
    /// is the room of that id; the sender of a `broadcast` is excepted the same way).
    pub fn from_broadcast_options(opts: &BroadcastOptions) -> Option<Self> {
        let broadcast = opts.has_flag(BroadcastFlags::Broadcast);
        let mut rooms: Vec<String> = opts.rooms.iter().map(|r| r.to_string()).collect();
        let mut except: Vec<String> = opts.except.iter().map(|r| r.to_string()).collect();
        match opts.sid {
            Some(sid) if broadcast => except.push(sid.to_string()),
            Some(sid) if rooms.is_empty() => rooms.push(sid.to_string()),
            None if rooms.is_empty() && !broadcast => return None,
            _ => {}
        }
        let flags = Flags {
            volatile: opts.has_flag(BroadcastFlags::Volatile),
            ..Flags::default()
        };
        Some(Self {
            rooms,
            except,
            flags,
        })
    }
}

impl Flags {
    fn from_value(value: Value) -> Self {
        let Value::Map(pairs) = value else {
            return Self::default();
        };
        let mut flags = Self::default();
        for (key, value) in pairs {
            match key.as_str() {
                Some("volatile") => flags.volatile = value.as_bool() == Some(true),
                Some("compress") => flags.compress = value.as_bool(),
                Some("local") => flags.local = value.as_bool() == Some(true),
                Some("broadcast") => flags.broadcast = value.as_bool() == Some(true),
                Some("timeout") => {
                    flags.timeout = value.as_u64().or(value.as_f64().map(|f| f as u64))
                }
                _ => {}
            }
        }
        flags
    }

    fn to_value(&self) -> Value {
        let mut pairs: Vec<(Value, Value)> = Vec::new();
        let mut set = |name: &str, value: Value| pairs.push((name.into(), value));
        if self.volatile {
            set("volatile", true.into());
        }
        if let Some(compress) = self.compress {
            set("compress", compress.into());
        }
        if self.local {
            set("local", true.into());
        }
        if self.broadcast {
            set("broadcast", true.into());
        }
        if let Some(timeout) = self.timeout {
            set("timeout", timeout.into());
        }
        Value::Map(pairs)
    }
}
