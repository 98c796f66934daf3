//! `typing` and `read`: small signals to the other members of a room.

use super::delivery;
use super::protocol::{self, Nothing, ReadEvent, TypingEvent, command, decode, event};
use super::reply::Reply;
use super::rooms::member_room;
use super::session::user_of;
use crate::chat::{ChatError, LargeRoom, MessageId, RoomName, User};
use crate::state::AppState;
use crate::store::{Announce, Marked, ReadMark};
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State, TryData};

type Arg = TryData<Value>;

pub async fn typing<A: Adapter>(
    socket: SocketRef<A>,
    TryData(arg): Arg,
    State(app): State<AppState>,
    reply: Reply<A>,
) {
    reply
        .serve(&app, command::TYPING, run_typing(&socket, arg, &app))
        .await;
}

async fn run_typing<A: Adapter>(
    socket: &SocketRef<A>,
    arg: Result<Value, impl std::fmt::Display>,
    app: &AppState,
) -> Result<Nothing, ChatError> {
    let cmd: protocol::Typing = decode(arg)?;
    let user = user_of(socket)?;
    let name = RoomName::parse(&cmd.room)?;
    member_room(app, socket, &name, &user).await?;
    if !app.limits.typing(&user.id) {
        // Over the limit a typing signal is dropped, not refused: it is only a hint.
        return Ok(Nothing {});
    }
    let payload = TypingEvent {
        room: name.as_str(),
        user: &user,
        typing: cmd.typing,
    };
    let to_others = || socket.to(name.to_string()).volatile();
    delivery::emit(to_others, event::TYPING, &payload).await;
    Ok(Nothing {})
}

pub async fn read<A: Adapter>(
    socket: SocketRef<A>,
    TryData(arg): Arg,
    State(app): State<AppState>,
    reply: Reply<A>,
) {
    reply
        .serve(&app, command::READ, run_read(&socket, arg, &app))
        .await;
}

async fn run_read<A: Adapter>(
    socket: &SocketRef<A>,
    arg: Result<Value, impl std::fmt::Display>,
    app: &AppState,
) -> Result<Nothing, ChatError> {
    let cmd: protocol::Read = decode(arg)?;
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
