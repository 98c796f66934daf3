//! `join`, `leave` and `presence`: membership is stored per user and applied to all of the
//! user's sockets, on every node.

use super::delivery::{self, Move};
use super::protocol::{self, Joined, Left, Membership, Online, command, decode, event};
use super::reply::Reply;
use super::session::{grant_of, user_of};
use crate::chat::{ChatError, HistoryQuery, MessageId, RoomName, User};
use crate::state::AppState;
use crate::store::RoomRef;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State, TryData};

type Arg = TryData<Value>;

pub async fn join<A: Adapter>(
    socket: SocketRef<A>,
    TryData(arg): Arg,
    State(app): State<AppState>,
    reply: Reply<A>,
) {
    reply
        .serve(&app, command::JOIN, run_join(&socket, arg, &app))
        .await;
}

async fn run_join<A: Adapter>(
    socket: &SocketRef<A>,
    arg: Result<Value, impl std::fmt::Display>,
    app: &AppState,
) -> Result<Joined, ChatError> {
    let cmd: protocol::Join = decode(arg)?;
    let user = user_of(socket)?;
    let name = RoomName::parse(&cmd.room)?;
    grant_of(socket)?.ensure_room(&name)?;
    let since = cmd.since.as_deref().map(MessageId::parse).transpose()?;
    if let Some(since) = since {
        // Checked before joining: a join that answers an error must not have happened.
        // A room that does not exist yet holds no message `since` could name.
        let known = app.store.room(&name).await?;
        since.ensure_in_room(known.map_or(0, |r| r.id))?;
    }
    if app.limits.counts_rooms() && app.store.membership(&name, &user.id).await?.is_none() {
        app.limits
            .another_room(app.store.membership_count(&user.id).await?)?;
    }
    let joined = app.store.join(&name, &user).await?;
    socket.join(name.to_string());
    let users_sockets = || socket.within(user.personal_room());
    delivery::enroll(users_sockets, name.as_str(), Move::Join).await;
    if joined.newly {
        broadcast_membership(socket, event::USER_JOINED, &name, &user).await;
    }
    let members = app.store.members(joined.room.id).await?;
    let missed = match since {
        Some(since) => Some(
            app.store
                .history(&joined.room, HistoryQuery::since(since))
                .await?
                .messages,
        ),
        None => None,
    };
    Ok(Joined {
        room: joined.room.name,
        members,
        missed,
    })
}

pub async fn leave<A: Adapter>(
    socket: SocketRef<A>,
    TryData(arg): Arg,
    State(app): State<AppState>,
    reply: Reply<A>,
) {
    reply
        .serve(&app, command::LEAVE, run_leave(&socket, arg, &app))
        .await;
}

async fn run_leave<A: Adapter>(
    socket: &SocketRef<A>,
    arg: Result<Value, impl std::fmt::Display>,
    app: &AppState,
) -> Result<Left, ChatError> {
    let cmd: protocol::RoomOnly = decode(arg)?;
    let user = user_of(socket)?;
    let name = RoomName::parse(&cmd.room)?;
    let room = app
        .store
        .leave(&name, &user.id)
        .await?
        .ok_or_else(|| ChatError::not_a_member(name.as_str()))?;
    socket.leave(name.to_string());
    let users_sockets = || socket.within(user.personal_room());
    delivery::enroll(users_sockets, name.as_str(), Move::Leave).await;
    broadcast_membership(socket, event::USER_LEFT, &name, &user).await;
    Ok(Left { room: room.name })
}

pub async fn presence<A: Adapter>(
    socket: SocketRef<A>,
    TryData(arg): Arg,
    State(app): State<AppState>,
    reply: Reply<A>,
) {
    reply
        .serve(&app, command::PRESENCE, run_presence(&socket, arg, &app))
        .await;
}

async fn run_presence<A: Adapter>(
    socket: &SocketRef<A>,
    arg: Result<Value, impl std::fmt::Display>,
    app: &AppState,
) -> Result<Online, ChatError> {
    let cmd: protocol::RoomOnly = decode(arg)?;
    let user = user_of(socket)?;
    let room = member_room(app, socket, &RoomName::parse(&cmd.room)?, &user).await?;
    let members = app.store.members(room.id).await?;
    Ok(Online {
        users: app.presence.online(members).await,
    })
}

/// The room, if `user` is a member of it and the socket's token allows it; `forbidden`
/// otherwise.
///
/// A socket is in the Socket.IO rooms of its user's memberships (joined after the membership
/// commits, left after it is deleted), so that answers without a database trip; the database
/// decides when the socket is not in the room.
pub(super) async fn member_room<A: Adapter>(
    app: &AppState,
    socket: &SocketRef<A>,
    room: &RoomName,
    user: &User,
) -> Result<RoomRef, ChatError> {
    grant_of(socket)?.ensure_room(room)?;
    if socket.rooms().iter().any(|r| r == room.as_str())
        && let Some(known) = app.store.room(room).await?
    {
        return Ok(known);
    }
    app.store
        .membership(room, &user.id)
        .await?
        .ok_or_else(|| ChatError::not_a_member(room.as_str()))
}

async fn broadcast_membership<A: Adapter>(
    socket: &SocketRef<A>,
    name: &'static str,
    room: &RoomName,
    user: &User,
) {
    let payload = Membership {
        room: room.as_str(),
        user,
    };
    delivery::emit(|| socket.to(room.to_string()), name, &payload).await;
}
