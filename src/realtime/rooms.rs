//! `join`, `leave`, `members` and `presence`: membership is stored per user and applied to all
//! of the user's sockets, on every node.
//!
//! A join or leave is answered once its commit is done; the user's sockets enter or leave the
//! room, and the room hears of it, after the commit and in commit order (the writer's
//! announcer), so a socket whose join failed is never in the room, and a `user_joined` never
//! overtakes a message committed before it. Large rooms hear their member count instead.

use super::delivery::{self, Move};
use super::protocol::{self, Joined, Left, Members, Membership, Online, command, decode, event};
use super::reply::Reply;
use super::session::{grant_of, user_of};
use crate::chat::{
    ChatError, HistoryQuery, MEMBERS_IN_REPLY, MemberQuery, MessageId, RoomName, User,
};
use crate::state::AppState;
use crate::store::{self, Announce, JoinRequest, LeaveRequest, Refusal, RoomRef};
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
    let known = app.store.room(&name).await?;
    if let Some(since) = since {
        // A room that does not exist yet holds no message `since` could name.
        since.ensure_in_room(known.as_ref().map_or(0, |r| r.id))?;
    }
    // A member already, with this socket in the room: nothing to write.
    if known.is_some()
        && in_room(socket, &name)
        && let Some(room) = app.store.membership(&name, &user.id).await?
    {
        return rejoined(app, room, since).await;
    }
    let request = JoinRequest {
        room: name,
        user: user.clone(),
        since,
        max_rooms: app.limits.rooms_per_user(),
    };
    let joined = app
        .writer
        .join(request, announce_join(socket, user, app))
        .await??;
    Ok(Joined {
        room: joined.room.name,
        members: joined.members,
        member_count: joined.member_count,
        missed: joined.missed,
    })
}

/// The reply to a join of a room the user is in: read, nothing written.
async fn rejoined(
    app: &AppState,
    room: RoomRef,
    since: Option<MessageId>,
) -> Result<Joined, ChatError> {
    let members = app.store.members(room.id, &MemberQuery::first()).await?;
    let member_count = app.store.member_count(room.id).await?;
    let missed = match since {
        Some(since) => Some(
            app.store
                .history(&room, HistoryQuery::since(since))
                .await?
                .messages,
        ),
        None => None,
    };
    Ok(Joined {
        room: room.name,
        members: members.members.into(),
        member_count,
        missed,
    })
}

fn in_room<A: Adapter>(socket: &SocketRef<A>, room: &RoomName) -> bool {
    socket.rooms().iter().any(|r| r == room.as_str())
}

/// After the commit: the user's sockets enter the room, and the room hears of a first join.
fn announce_join<A: Adapter>(
    socket: &SocketRef<A>,
    user: User,
    app: &AppState,
) -> Announce<Result<store::Joined, Refusal>> {
    let (socket, app) = (socket.clone(), app.clone());
    Box::new(move |joined| {
        let joined = joined.as_ref().ok()?;
        let (room, newly, count) = (joined.room.name.clone(), joined.newly, joined.member_count);
        Some(Box::pin(async move {
            delivery::enroll(|| socket.within(user.personal_room()), &room, Move::Join).await;
            if newly {
                tell(&socket, &app, event::USER_JOINED, &room, &user, count).await;
            }
        }))
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
    let not_a_member = || ChatError::not_a_member(name.as_str());
    let room = app.store.room(&name).await?.ok_or_else(not_a_member)?;
    let request = LeaveRequest {
        room,
        user_id: user.id.clone(),
    };
    let left = app
        .writer
        .leave(request, announce_leave(socket, user, app))
        .await?
        .ok_or_else(not_a_member)?;
    Ok(Left {
        room: left.room.name,
    })
}

/// After the commit: the user's sockets leave the room, then the room hears of it.
fn announce_leave<A: Adapter>(
    socket: &SocketRef<A>,
    user: User,
    app: &AppState,
) -> Announce<Option<store::Left>> {
    let (socket, app) = (socket.clone(), app.clone());
    Box::new(move |left| {
        let (room, count) = left
            .as_ref()
            .map(|l| (l.room.name.clone(), l.member_count))?;
        Some(Box::pin(async move {
            delivery::enroll(|| socket.within(user.personal_room()), &room, Move::Leave).await;
            tell(&socket, &app, event::USER_LEFT, &room, &user, count).await;
        }))
    })
}

/// Tells the room's other sockets that `user` joined or left; a large room gets its member
/// count instead, once a second.
async fn tell<A: Adapter>(
    socket: &SocketRef<A>,
    app: &AppState,
    name: &'static str,
    room: &str,
    user: &User,
    member_count: u64,
) {
    if app.large_room.holds(member_count) {
        app.headcount.changed(room, member_count);
        return;
    }
    let payload = Membership { room, user };
    delivery::emit(|| socket.to(room.to_owned()), name, &payload).await;
}

pub async fn members<A: Adapter>(
    socket: SocketRef<A>,
    TryData(arg): Arg,
    State(app): State<AppState>,
    reply: Reply<A>,
) {
    reply
        .serve(&app, command::MEMBERS, run_members(&socket, arg, &app))
        .await;
}

async fn run_members<A: Adapter>(
    socket: &SocketRef<A>,
    arg: Result<Value, impl std::fmt::Display>,
    app: &AppState,
) -> Result<Members, ChatError> {
    let cmd: protocol::MemberList = decode(arg)?;
    let user = user_of(socket)?;
    let query = MemberQuery::members(cmd.after.as_deref(), cmd.limit)?;
    let room = member_room(app, socket, &RoomName::parse(&cmd.room)?, &user).await?;
    Ok(app.store.members(room.id, &query).await?)
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
    let cmd: protocol::MemberList = decode(arg)?;
    let user = user_of(socket)?;
    let query = MemberQuery::parse(cmd.after.as_deref(), cmd.limit, MEMBERS_IN_REPLY)?;
    let room = member_room(app, socket, &RoomName::parse(&cmd.room)?, &user).await?;
    let online = app
        .presence
        .online(app.store.all_members(room.id).await?)
        .await;
    let page = query.page(&online);
    Ok(Online {
        users: page.members,
        online_count: online.len(),
        has_more: page.has_more,
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
    if in_room(socket, room)
        && let Some(known) = app.store.room(room).await?
    {
        return Ok(known);
    }
    app.store
        .membership(room, &user.id)
        .await?
        .ok_or_else(|| ChatError::not_a_member(room.as_str()))
}
