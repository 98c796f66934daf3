//! `message`, `history`, `edit` and `delete`.

use super::delivery;
use super::protocol::{self, Deleted, DeletedEvent, Page, Stored, command, decode, event};
use super::reply::Reply;
use super::rooms::member_room;
use super::session::user_of;
use crate::chat::{ChatError, ClientId, HistoryQuery, Message, MessageId, MessageText, RoomName};
use crate::state::AppState;
use crate::store::{Announce, Appended, DeleteRequest, Draft, EditRequest, Refusal, Removal};
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State, TryData};

type Arg = TryData<Value>;

pub async fn send<A: Adapter>(
    socket: SocketRef<A>,
    TryData(arg): Arg,
    State(app): State<AppState>,
    reply: Reply<A>,
) {
    reply
        .serve(&app, command::MESSAGE, run_send(&socket, arg, &app))
        .await;
}

async fn run_send<A: Adapter>(
    socket: &SocketRef<A>,
    arg: Result<Value, impl std::fmt::Display>,
    app: &AppState,
) -> Result<Stored, ChatError> {
    let cmd: protocol::Send = decode(arg)?;
    let user = user_of(socket)?;
    let name = RoomName::parse(&cmd.room)?;
    let text = MessageText::parse(&cmd.text, app.text_limit)?;
    let client_id = cmd.client_id.as_deref().map(ClientId::parse).transpose()?;
    let room = member_room(app, socket, &name, &user).await?;
    let sender = socket.clone();
    let announce: Announce<Appended> = Box::new(move |appended| {
        let message = appended.message.clone();
        Some(Box::pin(async move {
            let to_others = || sender.to(message.room.clone());
            delivery::emit(to_others, event::MESSAGE, &message).await;
        }))
    });
    let draft = Draft {
        room,
        author: user,
        text,
        client_id,
    };
    let appended = app.writer.append(draft, Some(announce)).await?;
    Ok(Stored {
        message: appended.message,
    })
}

pub async fn history<A: Adapter>(
    socket: SocketRef<A>,
    TryData(arg): Arg,
    State(app): State<AppState>,
    reply: Reply<A>,
) {
    reply
        .serve(&app, command::HISTORY, run_history(&socket, arg, &app))
        .await;
}

async fn run_history<A: Adapter>(
    socket: &SocketRef<A>,
    arg: Result<Value, impl std::fmt::Display>,
    app: &AppState,
) -> Result<Page, ChatError> {
    let cmd: protocol::History = decode(arg)?;
    let user = user_of(socket)?;
    let name = RoomName::parse(&cmd.room)?;
    let query = HistoryQuery::parse(cmd.before.as_deref(), cmd.after.as_deref(), cmd.limit)?;
    let room = member_room(app, socket, &name, &user).await?;
    query.ensure_in_room(room.id)?;
    Ok(app.store.history(&room, query).await?)
}

pub async fn edit<A: Adapter>(
    socket: SocketRef<A>,
    TryData(arg): Arg,
    State(app): State<AppState>,
    reply: Reply<A>,
) {
    reply
        .serve(&app, command::EDIT, run_edit(&socket, arg, &app))
        .await;
}

async fn run_edit<A: Adapter>(
    socket: &SocketRef<A>,
    arg: Result<Value, impl std::fmt::Display>,
    app: &AppState,
) -> Result<Stored, ChatError> {
    let cmd: protocol::Edit = decode(arg)?;
    let user = user_of(socket)?;
    let id = MessageId::parse(&cmd.message_id)?;
    let text = MessageText::parse(&cmd.text, app.text_limit)?;
    let editor = socket.clone();
    let announce: Announce<Result<Message, Refusal>> = Box::new(move |edited| {
        let updated = edited.as_ref().ok()?.clone();
        Some(Box::pin(async move {
            let to_room = || editor.within(updated.room.clone());
            delivery::emit(to_room, event::MESSAGE_UPDATED, &updated).await;
        }))
    });
    let request = EditRequest {
        id,
        text,
        author: user.id,
    };
    let message = app.writer.edit(request, announce).await??;
    Ok(Stored { message })
}

pub async fn delete<A: Adapter>(
    socket: SocketRef<A>,
    TryData(arg): Arg,
    State(app): State<AppState>,
    reply: Reply<A>,
) {
    reply
        .serve(&app, command::DELETE, run_delete(&socket, arg, &app))
        .await;
}

async fn run_delete<A: Adapter>(
    socket: &SocketRef<A>,
    arg: Result<Value, impl std::fmt::Display>,
    app: &AppState,
) -> Result<Deleted, ChatError> {
    let cmd: protocol::Delete = decode(arg)?;
    let user = user_of(socket)?;
    let id = MessageId::parse(&cmd.message_id)?;
    let deleter = socket.clone();
    let announce: Announce<Result<Removal, Refusal>> = Box::new(move |removal| {
        let removal = removal.as_ref().ok().filter(|r| r.changed)?.clone();
        Some(Box::pin(async move {
            let payload = DeletedEvent {
                room: &removal.room,
                message_id: &removal.message_id,
            };
            let to_room = || deleter.within(removal.room.clone());
            delivery::emit(to_room, event::MESSAGE_DELETED, &payload).await;
        }))
    });
    let request = DeleteRequest {
        id,
        author: user.id,
    };
    let removal = app.writer.delete(request, announce).await??;
    Ok(Deleted {
        message_id: removal.message_id,
    })
}
