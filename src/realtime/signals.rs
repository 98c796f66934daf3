//! `typing` and `read`: small signals to the other members of a room.

use super::command::Handler;
use super::delivery;
use super::protocol::{self, Nothing, ReadEvent, TypingEvent, event};
use super::rooms::member_room;
use super::socket_user::user_of;
use crate::chat::{ChatError, LargeRoom, MessageId, RoomName, User};
use crate::state::AppState;
use crate::store::{Announce, Marked, ReadMark};
use crate::wire::Command;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

impl<A: Adapter> Handler<A> for protocol::Typing {
    const COMMAND: Command = Command::Typing;
    type Answer = Nothing;

    async fn run(self, socket: &SocketRef<A>, app: &AppState) -> Result<Nothing, ChatError> {
        let cmd = self;
        let user = user_of(socket)?;
        let name = RoomName::parse(&cmd.room)?;
        member_room(app, socket, &name, &user).await?;
        let payload = TypingEvent {
            room: name.as_str(),
            user: &user,
            typing: cmd.typing,
        };
        let to_others = || socket.to(name.to_string()).volatile();
        delivery::emit(to_others, event::TYPING, &payload).await;
        Ok(Nothing {})
    }
}

impl<A: Adapter> Handler<A> for protocol::Read {
    const COMMAND: Command = Command::Read;
    type Answer = Nothing;

    async fn run(self, socket: &SocketRef<A>, app: &AppState) -> Result<Nothing, ChatError> {
        let cmd = self;
        let user = user_of(socket)?;
        let name = RoomName::parse(&cmd.room)?;
        let id = MessageId::parse(&cmd.message_id)?;
        let room = member_room(app, socket, &name, &user).await?;
        id.ensure_in_room(room.id)?;
        let mark = ReadMark {
            room,
            user_id: user.id.clone(),
            message: id,
        };
        let announce = announce_read(socket, user, app.large_room, mark.clone());
        app.writer
            .mark_read(mark, announce)
            .await?
            .ok_or_else(|| ChatError::not_found("no such message in this room"))?;
        Ok(Nothing {})
    }
}

/// After the commit: the room's other sockets hear of the mark, unless the room is large (the
/// read receipts of thousands of readers are noise, and quadratic).
fn announce_read<A: Adapter>(
    socket: &SocketRef<A>,
    user: User,
    large_room: LargeRoom,
    mark: ReadMark,
) -> Announce<Option<Marked>> {
    let socket = socket.clone();
    Box::new(move |marked: &Option<Marked>| {
        let marked = (*marked)?;
        if large_room.holds(marked.member_count) {
            return None;
        }
        Some(Box::pin(async move {
            let message_id = mark.message.to_string();
            let payload = ReadEvent {
                room: &mark.room.name,
                user: &user,
                message_id: &message_id,
            };
            let to_others = || socket.to(mark.room.name.clone());
            delivery::emit(to_others, event::READ, &payload).await;
        }))
    })
}
