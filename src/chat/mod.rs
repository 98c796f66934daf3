//! The chat's rules: what a room name, a user, a message text and a message id are, and who may
//! do what. Input becomes one of these types once, at the edge; nothing here does I/O.

mod error;
mod grant;
mod history;
mod members;
mod message;
mod message_id;
mod room;
mod room_event;
mod text;
mod user;

pub use error::{ChatError, ErrorCode};
pub use grant::{Grant, RoomPatterns};
pub use history::{HistoryPage, HistoryQuery, MISSED_LIMIT};
pub use members::{LargeRoom, MEMBERS_IN_REPLY, MemberPage, MemberQuery};
pub use message::Message;
pub use message_id::MessageId;
pub use room::RoomName;
pub use room_event::{Deletion, Kind, RoomEvent};
pub use text::{ClientId, MessageText, TextLimit};
pub use user::{User, UserId, UserName};
