//! A socket's side of connection state recovery (src/recovery/): its session started or
//! restored at the end of its handshake, made live once it is connected, and kept when it goes
//! for a reason its client may come back from.

use super::socket_user::{grant_of, user_of};
use crate::chat::User;
use crate::recovery::{Recovery, Restored, Session, Stale, Turn};
use crate::rules::CHAT_NAMESPACE;
use crate::state::AppState;
use serde_json::Value;
use socketioxide::ProtocolVersion;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::socket::{ConnectSession, DisconnectReason};
use socketioxide_core::Value as Payload;
use std::time::Instant;

/// What a returning client's handshake names: its session and the last offset it received.
pub(super) struct Return {
    pid: Option<String>,
    offset: Option<String>,
    arrived: Arrived,
}

/// When a socket's handshake began: of two sockets of one session, the later is its client's.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Arrived(Instant);

impl Return {
    /// Read from the handshake's `auth` on a recovering namespace (socket.io-client 4.x puts
    /// `pid` and `offset` there, beside the app's own fields).
    pub(super) fn from_auth<A: Adapter>(
        socket: &SocketRef<A>,
        app: &AppState,
        auth: &Result<Value, impl std::fmt::Display>,
    ) -> Option<Self> {
        if !app.recovery.covers(socket.ns()) || socket.protocol() != ProtocolVersion::V5 {
            return None;
        }
        let field = |name: &str| {
            let auth = auth.as_ref().ok()?;
            auth.get(name)?.as_str().map(str::to_owned)
        };
        Some(Self {
            pid: field("pid"),
            offset: field("offset"),
            arrived: Arrived(Instant::now()),
        })
    }

    /// The guest a client that gives no name was, in open mode: it comes back as that guest
    /// (a Node app's clients often send no credentials; their session must still be theirs).
    pub(super) async fn guest(&self, socket_ns: &str, app: &AppState) -> Option<String> {
        if app.auth.takes_tokens() {
            return None;
        }
        app.recovery
            .returning_guest(socket_ns, self.pid.as_deref()?)
            .await
    }
}

/// The socket's session: its private id, the id its client knows, and the ids whose rooms it is
/// in (that one, and its own).
#[derive(Clone)]
struct Ids {
    pid: String,
    id: String,
    ids: Vec<String>,
}

/// Last in a recovering namespace's handshake, once the socket is admitted: the session named
/// by the client restored (its rooms joined, what it missed queued to follow the CONNECT answer,
/// the namespace's turn held until it is live), or a new one started.
pub(super) async fn begin<A: Adapter>(
    socket: &SocketRef<A>,
    app: &AppState,
    back: Option<Return>,
    user: &User,
) {
    let Some(back) = back else { return };
    socket.extensions.insert(back.arrived);
    let restored = match (&back.pid, &back.offset) {
        (Some(pid), Some(offset)) => {
            let stale = |sid: &str| {
                let stale = take_over(socket, sid, pid, back.arrived);
                if matches!(stale, Stale::Gone) {
                    // The registry named a socket this node no longer has, or one now holding
                    // another session: the entry is stale.
                    app.recovery.unregister(socket.ns(), pid, sid);
                }
                stale
            };
            (app.recovery)
                .restore(socket.ns(), pid, offset, &user.id, stale)
                .await
        }
        _ => None,
    };
    let own = socket.id.to_string();
    let Some(Restored {
        session,
        missed,
        turn,
    }) = restored
    else {
        let pid = Recovery::new_pid();
        socket.set_connect_session(ConnectSession {
            pid: pid.clone(),
            id: None,
            missed: vec![],
        });
        socket.extensions.insert(Ids {
            pid,
            id: own.clone(),
            ids: vec![own],
        });
        return;
    };
    rejoin(socket, &session);
    socket.set_connect_session(ConnectSession {
        pid: session.pid.clone(),
        id: Some(session.id.clone()),
        missed: missed
            .into_iter()
            .map(|data| Payload::Str(data.into(), None))
            .collect(),
    });
    // The id its client knows, and this socket's own: an id it had between them is nobody's.
    let mut ids = vec![session.id.clone(), own];
    ids.dedup();
    socket.extensions.insert(Resumed {
        pid: session.pid.clone(),
        turn,
    });
    socket.extensions.insert(Ids {
        pid: session.pid,
        id: session.id,
        ids,
    });
    tracing::debug!(sid = %socket.id, ns = socket.ns(), "session recovered");
}

/// The session socket `sid` of this node holds, taken from it: its client came back before the
/// socket noticed it went (a polling client's dropped request is seen at its next missed ping).
/// The socket is disconnected without keeping the session itself (the restore keeps it until
/// the new socket is live). Not from a socket that arrived after `arrived`: that is the
/// client's, which gave up on this connection.
fn take_over<A: Adapter>(socket: &SocketRef<A>, sid: &str, pid: &str, arrived: Arrived) -> Stale {
    let found = (socket.within(sid.to_owned()).local().sockets().into_iter())
        .find(|s| s.id.as_str() == sid);
    let Some(stale) = found else {
        return Stale::Gone;
    };
    if stale.extensions.get::<Arrived>() > Some(arrived) {
        return Stale::Newer;
    }
    // Its disconnect handler has it: the session is about to be kept.
    let Some(ids) = stale.extensions.remove::<Ids>() else {
        return Stale::Leaving;
    };
    if ids.pid != pid {
        stale.extensions.insert(ids);
        return Stale::Gone;
    }
    let Some(session) = session_of(&stale, ids) else {
        return Stale::Gone;
    };
    if let Err(err) = stale.clone().disconnect() {
        tracing::debug!(%sid, error = %err, "disconnecting a socket whose session was taken over");
    }
    tracing::debug!(%sid, ns = socket.ns(), "session taken over from a socket that had not seen its client go");
    Stale::Taken(session)
}

/// The session of a socket, as it is now.
fn session_of<A: Adapter>(socket: &SocketRef<A>, ids: Ids) -> Option<Session> {
    let rooms: Vec<String> = (socket.rooms().into_iter())
        .map(|room| room.into_owned())
        .filter(|room| !ids.ids.contains(room))
        .collect();
    let user = user_of(socket).ok()?;
    Some(Session {
        pid: ids.pid,
        id: ids.id,
        user: user.id.as_str().to_owned(),
        ids: ids.ids,
        rooms,
    })
}

/// Puts a restored socket back in its rooms: the rooms of its former ids, and on a namespace of
/// relay rules its other rooms its credentials still allow. On `/` the chat's rooms are the
/// user's memberships, which the handshake joined: a room left meanwhile stays left.
fn rejoin<A: Adapter>(socket: &SocketRef<A>, session: &Session) {
    socket.join(session.ids.clone());
    if socket.ns() == CHAT_NAMESPACE {
        return;
    }
    let Ok(grant) = grant_of(socket) else { return };
    let rooms: Vec<String> = (session.rooms.iter())
        .filter(|room| grant.allows(room))
        .cloned()
        .collect();
    socket.join(rooms);
}

/// A restored session until its socket is live: its pid, and the namespace's turn it holds.
#[derive(Clone)]
struct Resumed {
    pid: String,
    turn: Turn,
}

/// Once the client knows it is connected: the socket holds its session (a client that comes
/// back before the socket noticed it went takes it over), broadcasts of the namespace may reach
/// it again, and the session it came back to is forgotten (it is kept anew when the socket goes).
/// Until then the session stays kept: a handshake that fails leaves it for the client's next try.
pub(super) fn live<A: Adapter>(socket: &SocketRef<A>, app: &AppState) {
    if let (Some(ids), Ok(user)) = (socket.extensions.get::<Ids>(), user_of(socket)) {
        (app.recovery).register(socket.ns(), &ids.pid, socket.id.as_str(), &user.id);
    }
    let Some(Resumed { pid, turn }) = socket.extensions.remove::<Resumed>() else {
        return;
    };
    turn.release();
    let (recovery, ns) = (app.recovery.clone(), socket.ns().to_owned());
    tokio::spawn(async move { recovery.forget(&ns, &pid).await });
}

/// Why a socket went, as Node's `RECOVERABLE_DISCONNECT_REASONS` has it: its client may come
/// back (a lost or closed transport, a missed ping, a server that stops), not a disconnect
/// either side asked for.
fn recoverable(reason: DisconnectReason) -> bool {
    matches!(
        reason,
        DisconnectReason::TransportClose
            | DisconnectReason::TransportError
            | DisconnectReason::HeartbeatTimeout
            | DisconnectReason::ClosingServer
    )
}

/// When the socket goes: its session kept, if its client may come back.
pub(super) async fn leave<A: Adapter>(
    socket: &SocketRef<A>,
    reason: DisconnectReason,
    app: &AppState,
) {
    // A socket that goes before it was live gives its turn back; its session stays kept.
    if let Some(Resumed { turn, .. }) = socket.extensions.remove::<Resumed>() {
        turn.release();
    }
    // Gone already when its session was taken over.
    let Some(ids) = socket.extensions.remove::<Ids>() else {
        return;
    };
    let (ns, pid, sid) = (socket.ns(), ids.pid.clone(), socket.id.as_str());
    // Read at once: the socket leaves its rooms once its disconnect handlers are done.
    if let Some(session) = recoverable(reason)
        .then(|| session_of(socket, ids))
        .flatten()
    {
        app.recovery.keep(ns, session).await;
    }
    // Last: until its session is kept, a restore finds this socket going and waits for it.
    app.recovery.unregister(ns, &pid, sid);
}
