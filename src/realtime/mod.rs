//! The Socket.IO face of the chat on namespace `/`: handshake, commands, events.
//!
//! Handlers are generic over the adapter, so the same code serves one process (local adapter)
//! and a cluster (Redis adapter).

mod args;
mod delivery;
mod fanout;
mod messages;
mod protocol;
mod relay;
mod reply;
mod rooms;
mod session;
mod signals;

pub use args::Args;
pub use fanout::{Census, Fanout};
pub use protocol::{Failure, Stored, Success, command, event};
pub use session::{attach, attach_cluster, reason_name, user_label};
