//! `join`, `leave`, `members` and `presence`: membership is stored per user and applied to all
//! of the user's sockets, on every node.
//!
//! The user's sockets enter or leave the room, and the room hears of it, after the commit and in
//! commit order (the writer's announcer), so a socket whose join failed is never in the room,
//! and a `user_joined` never overtakes a message committed before it; the answer waits until
//! the sockets have moved, on every node. Large rooms hear their member count instead.

use super::command::Handler;
use super::delivery::{self, Move};
use super::protocol::{self, Joined, Left, Members, Membership, Online, event};
use super::socket_user::{grant_of, user_of};
use crate::chat::{ChatError, MEMBERS_IN_REPLY, MemberQuery, MessageId, RoomName, User};
use crate::state::AppState;
use crate::store::{self, Announce, Broadcast, JoinRequest, LeaveRequest, Refusal, RoomRef};
use crate::wire::Command;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use std::time::Duration;
use tokio::sync::oneshot;

impl<A: Adapter> Handler<A> for protocol::Join {
    const COMMAND: Command = Command::Join;
    type Answer = Joined;

    async fn run(self, socket: &SocketRef<A>, app: &AppState) -> Result<Joined, ChatError> {
        let cmd = self;
        let user = user_of(socket)?;
        let name = RoomName::parse(&cmd.room)?;
        grant_of(socket)?.ensure_room(&name)?;
        let since = cmd.since.as_deref().map(MessageId::parse).transpose()?;
        if let Some(since) = since {
            // A room that does not exist yet holds no message `since` could name.
            let known = app.store.room(&name).await?;
            since.ensure_in_room(known.as_ref().map_or(0, |r| r.id))?;
        }
        let request = JoinRequest {
            room: name,
            user: user.clone(),
            since,
            max_rooms: app.limits.rooms_per_user(),
        };
        let (moved, done) = oneshot::channel();
        let joined = app
            .writer
            .join(request, announce_join(socket, user, app, moved))
            .await??;
        // The answer says the user's sockets are in the room: on other nodes too.
        until_moved(done).await;
        Ok(Joined {
            room: joined.room.name,
            members: joined.members,
            member_count: joined.member_count,
            missed: joined.missed,
        })
    }
}

fn in_room<A: Adapter>(socket: &SocketRef<A>, room: &RoomName) -> bool {
    socket.rooms().iter().any(|r| r == room.as_str())
}

/// After the commit: on a first join the user's sockets enter the room, on every node, and the
/// room hears of it; a repeated join (a client that joins its rooms again on every connect)
/// only puts this socket back in the room if it is not there, and tells no one.
fn announce_join<A: Adapter>(
    socket: &SocketRef<A>,
    user: User,
    app: &AppState,
    moved: oneshot::Sender<()>,
) -> Announce<Result<store::Joined, Refusal>> {
    let (socket, app) = (socket.clone(), app.clone());
    Box::new(move |joined| {
        let joined = joined.as_ref().ok()?;
        let room = joined.room.name.clone();
        if !joined.newly {
            if !socket.rooms().iter().any(|r| *r == room) {
                socket.join(room);
            }
            return None;
        }
        let change = RoomChange::new(socket, app, user, room, joined.member_count);
        Some(change.run(Move::Join, moved))
    })
}

impl<A: Adapter> Handler<A> for protocol::Leave {
    const COMMAND: Command = Command::Leave;
    type Answer = Left;

    async fn run(self, socket: &SocketRef<A>, app: &AppState) -> Result<Left, ChatError> {
        let cmd = self;
        let user = user_of(socket)?;
        let name = RoomName::parse(&cmd.room)?;
        let not_a_member = || ChatError::not_a_member(name.as_str());
        let room = app.store.room(&name).await?.ok_or_else(not_a_member)?;
        let request = LeaveRequest {
            room,
            user_id: user.id.clone(),
        };
        let (moved, done) = oneshot::channel();
        let left = app
            .writer
            .leave(request, announce_leave(socket, user, app, moved))
            .await?
            .ok_or_else(not_a_member)?;
        until_moved(done).await;
        Ok(Left {
            room: left.room.name,
        })
    }
}

/// After the commit: the user's sockets leave the room (this node's at once, the others' in
/// commit order), then the room hears of it.
fn announce_leave<A: Adapter>(
    socket: &SocketRef<A>,
    user: User,
    app: &AppState,
    moved: oneshot::Sender<()>,
) -> Announce<Option<store::Left>> {
    let (socket, app) = (socket.clone(), app.clone());
    Box::new(move |left| {
        let left = left.as_ref()?;
        let room = left.room.name.clone();
        // This node's sockets of the user leave before the answer goes out (this runs first):
        // a command sent on any of them after the answer finds them out of the room.
        for tab in socket.within(user.personal_room()).local().sockets() {
            tab.leave(room.clone());
        }
        let change = RoomChange::new(socket, app, user, room, left.member_count);
        Some(change.run(Move::Leave, moved))
    })
}

/// How long an answer to a join or leave waits for the user's sockets on other nodes to be
/// moved (a Redis publish, after the broadcasts committed before it); past it the answer goes
/// out anyway: the change has committed, and the move follows.
const MOVE_PATIENCE: Duration = Duration::from_secs(2);

/// Waits until the change's sockets have moved on every node, at most [`MOVE_PATIENCE`]; at once
/// when it moves none.
async fn until_moved(moved: oneshot::Receiver<()>) {
    let _ = tokio::time::timeout(MOVE_PATIENCE, moved).await;
}

/// A committed membership change, as its broadcast carries it.
struct RoomChange<A: Adapter> {
    socket: SocketRef<A>,
    app: AppState,
    user: User,
    room: String,
    member_count: u64,
}

impl<A: Adapter> RoomChange<A> {
    fn new(
        socket: SocketRef<A>,
        app: AppState,
        user: User,
        room: String,
        member_count: u64,
    ) -> Self {
        Self {
            socket,
            app,
            user,
            room,
            member_count,
        }
    }

    /// The user's sockets enter or leave the room on every node, `moved` is told (the
    /// command's answer waits for it), then the room hears of it.
    fn run(self, change: Move, moved: oneshot::Sender<()>) -> Broadcast {
        Box::pin(async move {
            let Self {
                socket,
                app,
                user,
                room,
                member_count,
            } = self;
            match change {
                // Every socket of the user enters, on every node, but those whose token limits
                // its rooms: on this node they enter where their token allows; on others, at
                // their next connect (a node cannot read another's tokens).
                Move::Join => {
                    let unlimited = || {
                        socket
                            .within(user.personal_room())
                            .except(user.limited_room())
                    };
                    // `except` leaves out the sender too (it makes a broadcast): it enters here.
                    socket.join(room.clone());
                    delivery::enroll(unlimited, &room, change).await;
                    for tab in socket.within(user.limited_room()).local().sockets() {
                        if grant_of(&tab).is_ok_and(|grant| grant.allows(&room)) {
                            tab.join(room.clone());
                        }
                    }
                }
                Move::Leave => {
                    delivery::enroll(|| socket.within(user.personal_room()), &room, change).await;
                }
            }
            let _ = moved.send(());
            let event = match change {
                Move::Join => event::USER_JOINED,
                Move::Leave => event::USER_LEFT,
            };
            tell(&socket, &app, event, &room, &user, member_count).await;
        })
    }
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

impl<A: Adapter> Handler<A> for protocol::MemberList {
    const COMMAND: Command = Command::Members;
    type Answer = Members;

    async fn run(self, socket: &SocketRef<A>, app: &AppState) -> Result<Members, ChatError> {
        let cmd = self;
        let user = user_of(socket)?;
        let query = MemberQuery::members(cmd.after.as_deref(), cmd.limit)?;
        let room = member_room(app, socket, &RoomName::parse(&cmd.room)?, &user).await?;
        Ok(app.store.members(room.id, &query).await?)
    }
}

impl<A: Adapter> Handler<A> for protocol::Presence {
    const COMMAND: Command = Command::Presence;
    type Answer = Online;

    async fn run(self, socket: &SocketRef<A>, app: &AppState) -> Result<Online, ChatError> {
        let cmd = self;
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
