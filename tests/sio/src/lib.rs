//! What chatoxide's integration tests (`tests/`) and load tool (`bench/`) share to reach a
//! server the way its clients do: a small Socket.IO v5 client over WebSocket ([`Socket`]), and
//! a server binary started on a free port ([`ServerProcess`]).
//!
//! It lives under `tests/` as a crate of its own: cargo takes only `tests/*.rs` and
//! `tests/*/main.rs` for integration tests, so nothing here runs as one.

mod server;
mod socket;

pub use server::ServerProcess;
pub use socket::{Event, Incoming, Refused, Socket};
