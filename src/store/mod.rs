//! Persistence with SeaORM: rooms, memberships and messages on SQLite or PostgreSQL.
//!
//! Every function here either commits what it was asked to or returns an error; a `message`
//! is only acknowledged after [`Store::append`] has returned, i.e. after its commit.

mod batch;
mod connect;
mod error;
mod import;
mod memberships;
mod messages;
mod rooms;
mod rows;
mod writer;

pub use batch::Draft;
pub use connect::Store;
pub use error::StoreError;
pub use import::{ImportCount, Imported};
pub use messages::{Appended, Removal};
pub use rooms::{Joined, RoomRef};
pub use rows::now_ms;
pub use writer::{Announce, Broadcast, Writer, WriterConfig, WriterTask};
