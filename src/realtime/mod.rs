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
pub use session::{DISCONNECT_REASONS, attach, attach_cluster, reason_name, user_label};

/// The command labels of the command metrics: every command, relayed events, unknown names.
pub fn command_labels() -> impl Iterator<Item = &'static str> {
    command::ALL
        .into_iter()
        .chain([relay::RELAY, session::UNKNOWN])
}

/// The event labels of the broadcast metrics: every broadcast event, relayed events, and room
/// changes.
pub fn broadcast_labels() -> impl Iterator<Item = &'static str> {
    event::BROADCAST
        .into_iter()
        .chain([relay::RELAY, delivery::ROOMS])
}
