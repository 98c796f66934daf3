//! `chatoxide import FILE`: message history exported from another backend, one JSON object a
//! line, stored with the server's settings (docs/migrating-from-node.md#importing-history).
//!
//! - `line.rs`: [`parse_line`] makes a line an [`Entry`] under the chat's own rules for rooms,
//!   users and texts, with an idempotency key derived from it; a line that fails them is
//!   [`Rejected`] (reported with its number; the import goes on, and exits 1 at the end);
//! - `run.rs`: [`run`], the file read line by line, the entries stored in batches of one
//!   transaction each ([`Store::import_batch`](crate::store::Store::import_batch)), a progress
//!   bar, and the [`Tally`] it ends with. Rooms are created as needed; memberships are not.

mod line;
mod run;
mod summary;

pub use line::{Entry, Rejected, parse_line};
pub use run::run;
pub use summary::Tally;
