//! The Socket.IO face of the chat on namespace `/`: handshake, commands, events.
//!
//! Handlers are generic over the adapter, so the same code serves one process (local adapter)
//! and a cluster (Redis adapter).

mod args;
mod command;
mod delivery;
mod fanout;
mod feed;
mod layout;
mod messages;
mod protocol;
mod recovered;
mod relay;
mod reply;
mod rooms;
mod session;
mod signals;
mod socket_user;

pub use args::Args;
pub use fanout::{Census, Fanout};
pub use feed::Feeds;
pub use protocol::{Failure, Stored, Success};
pub use session::{DISCONNECT_REASONS, Local, attach, attach_cluster, reason_name};
pub use socket_user::user_label;

use crate::wire::Command;
pub use crate::wire::event;

/// The command labels of the command metrics: every command, relayed events, unknown names.
pub fn command_labels() -> impl Iterator<Item = &'static str> {
    Command::ALL
        .into_iter()
        .map(Command::name)
        .chain([relay::RELAY, command::UNKNOWN])
}

/// The event labels of the broadcast metrics: every broadcast event, relayed events, and room
/// changes.
pub fn broadcast_labels() -> impl Iterator<Item = &'static str> {
    event::BROADCAST
        .into_iter()
        .chain([relay::RELAY, delivery::ROOMS])
}
