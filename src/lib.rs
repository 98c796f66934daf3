//! chatoxide: a Socket.IO-compatible chat server.
//!
//! - [`wire`]: the names on the wire (commands and their allowances, events), a leaf;
//! - [`chat`]: the rules (room names, texts, ids, permissions), free of I/O;
//! - [`store`]: rooms, memberships and messages in SQLite or PostgreSQL through SeaORM;
//! - [`realtime`]: the Socket.IO face (handshake, commands, events);
//! - [`http`]: health, readiness, metrics and the message routes;
//! - [`startup`]: wiring and the shutdown sequence; [`config`] and [`telemetry`] around them.

pub mod admin;
pub mod chat;
pub mod cluster;
pub mod config;
pub mod handshakes;
pub mod headcount;
pub mod http;
pub mod identity;
pub mod import;
pub mod limits;
pub mod outbox;
pub mod presence;
pub mod realtime;
pub mod recovery;
pub mod resources;
pub mod room_events;
pub mod rules;
pub mod secret;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod wire;
