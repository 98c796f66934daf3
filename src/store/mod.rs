//! Persistence with SeaORM: rooms, memberships and messages on SQLite or PostgreSQL.
//!
//! Every change goes through the writer ([`Writer`]), which commits them in batches; reads run
//! on a pool of their own. A command is only acknowledged after its change has committed.

mod batch;
mod change;
mod commit;
mod connect;
mod error;
#[cfg(test)]
mod fixtures;
mod flight;
mod import;
mod membership_changes;
mod memberships;
mod messages;
mod outbox;
mod rooms;
mod rows;
mod sorted;
mod writer;
mod writer_config;

pub use batch::{Draft, MessageKey};
pub use change::{Announce, Broadcast};
pub use connect::Store;
pub use error::StoreError;
pub use import::{ImportCount, Imported};
pub use memberships::{JoinRequest, Joined, LeaveRequest, Left, Marked, ReadMark};
pub use messages::{Appended, DeleteRequest, EditRequest, Refusal, Removal};
pub use outbox::Unsent;
pub use rooms::RoomRef;
pub use rows::now_ms;
pub use writer::{Writer, WriterTask};
pub use writer_config::WriterConfig;
