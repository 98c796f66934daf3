//! `message`, `history`, `edit` and `delete`.

use super::command::Handler;
use super::delivery;
use super::protocol::{self, Deleted, Page, Stored, event};
use super::rooms::member_room;
use super::socket_user::user_of;
use crate::chat::{
    ChatError, ClientId, Deletion, HistoryQuery, Message, MessageId, MessageText, RoomName,
};
use crate::state::AppState;
use crate::store::{Announce, Appended, DeleteRequest, Draft, EditRequest, Refusal, Removal};
use crate::wire::Command;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

impl<A: Adapter> Handler<A> for protocol::Send {
    const COMMAND: Command = Command::Message;
    type Answer = Stored;

    async fn run(self, socket: &SocketRef<A>, app: &AppState) -> Result<Stored, ChatError> {
        let cmd = self;
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
            room_key: None,
        };
        let appended = app.append(draft, Some(announce)).await?;
        Ok(Stored {
            message: appended.message,
        })
    }
}

impl<A: Adapter> Handler<A> for protocol::History {
    const COMMAND: Command = Command::History;
    type Answer = Page;

    async fn run(self, socket: &SocketRef<A>, app: &AppState) -> Result<Page, ChatError> {
        let cmd = self;
        let user = user_of(socket)?;
        let name = RoomName::parse(&cmd.room)?;
        let query = HistoryQuery::parse(cmd.before.as_deref(), cmd.after.as_deref(), cmd.limit)?;
        let room = member_room(app, socket, &name, &user).await?;
        query.ensure_in_room(room.id)?;
        Ok(app.store.history(&room, query).await?)
    }
}

impl<A: Adapter> Handler<A> for protocol::Edit {
    const COMMAND: Command = Command::Edit;
    type Answer = Stored;

    async fn run(self, socket: &SocketRef<A>, app: &AppState) -> Result<Stored, ChatError> {
        let cmd = self;
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
        let message = app.edit(request, announce).await??;
        Ok(Stored { message })
    }
}

impl<A: Adapter> Handler<A> for protocol::Delete {
    const COMMAND: Command = Command::Delete;
    type Answer = Deleted;

    async fn run(self, socket: &SocketRef<A>, app: &AppState) -> Result<Deleted, ChatError> {
        let cmd = self;
        let user = user_of(socket)?;
        let id = MessageId::parse(&cmd.message_id)?;
        let deleter = socket.clone();
        let announce: Announce<Result<Removal, Refusal>> = Box::new(move |removal| {
            let removal = removal.as_ref().ok().filter(|r| r.changed)?.clone();
            Some(Box::pin(async move {
                let payload = Deletion {
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
        let removal = app.delete(request, announce).await??;
        Ok(Deleted {
            message_id: removal.message_id,
        })
    }
}
