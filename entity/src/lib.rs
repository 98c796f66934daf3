//! SeaORM entities of chatoxide.
//!
//! Times are Unix milliseconds (`i64`) so that SQLite and PostgreSQL store and compare them the
//! same way; the protocol layer renders them as RFC 3339.

pub mod membership;
pub mod message;
pub mod outbox;
pub mod room;
