//! A socket's life: the handshake decides who it is and puts it in its rooms; connect wires the
//! commands; disconnect updates presence.

use super::command::{self, UNKNOWN};
use super::feed::{Feeds, Offsets};
use super::protocol::event;
use super::recovered::{self, Return};
use super::relay;
use super::reply::Reply;
use super::socket_user::user_label;
use crate::chat::{ChatError, ErrorCode, Grant, User};
use crate::handshakes;
use crate::identity::{Credentials, Identity};
use crate::limits::RateLimits;
use crate::presence::Connection;
use crate::recovery::Recovering;
use crate::rules::{CHAT_NAMESPACE, Rules};
use crate::state::AppState;
use crate::telemetry::names;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::extract::{Event, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::DisconnectReason;
use socketioxide_core::adapter::DefinedAdapter;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::AbortHandle;

/// The adapter of a single node: the local one, journaling for connection state recovery.
pub type Local = Recovering<LocalAdapter>;

/// Serves the chat on namespace `/` of a single-node `io`, and the namespaces relay rules open.
pub fn attach(io: &SocketIo<Local>, rules: &Rules) {
    io.ns(CHAT_NAMESPACE, on_connect::<Local>.with(handshake::<Local>));
    for ns in rules.extra_namespaces() {
        io.ns(
            ns.to_owned(),
            on_connect::<Local>.with(relay_handshake::<Local>),
        );
    }
}

/// Serves the chat on namespace `/` of a cluster node's `io`, and the namespaces relay rules
/// open, once their channels are subscribed in Redis.
pub async fn attach_cluster<A, E>(io: &SocketIo<A>, rules: &Rules) -> anyhow::Result<()>
where
    A: Adapter + DefinedAdapter,
    A::InitRes: Future<Output = Result<(), E>>,
    E: fmt::Display,
{
    io.ns(CHAT_NAMESPACE, on_connect::<A>.with(handshake::<A>))
        .await
        .map_err(|e| anyhow::anyhow!("subscribing to the cluster's channels: {e}"))?;
    for ns in rules.extra_namespaces() {
        io.ns(ns.to_owned(), on_connect::<A>.with(relay_handshake::<A>))
            .await
            .map_err(|e| anyhow::anyhow!("subscribing to the channels of namespace {ns}: {e}"))?;
    }
    Ok(())
}

/// A refused handshake: its `connect_error` message is the bare error code.
#[derive(Debug)]
struct Refused(ChatError);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.code.as_str())
    }
}

impl std::error::Error for Refused {}

/// Runs before the client learns it is connected: identity, the user's rooms, and the command
/// handlers. Everything a command needs is in place before `connect` reaches the client: the
/// connect handler proper is spawned by socketioxide *after* the `connect` packet is sent, so a
/// command sent at once could beat handlers registered there, and would be dropped.
async fn handshake<A: Adapter>(
    socket: SocketRef<A>,
    TryData(auth): TryData<Value>,
    State(app): State<AppState>,
) -> Result<(), Refused> {
    let kept = auth_kept(&socket, &auth, &app);
    let back = Return::from_auth(&socket, &app, &auth);
    let guest = returning_guest(&socket, &app, back.as_ref()).await;
    let (Identity { user, grant }, connection) = admit(&socket, auth, guest, &app)
        .await
        .map_err(refused(&socket))?;
    after_admission(&socket, &app, kept.as_ref(), &user).map_err(refused(&socket))?;
    // Shared, so that the clones `extensions.get` hands out do not count as connections.
    socket.extensions.insert(Arc::new(connection));
    settle(&socket, &app, user.clone(), grant);
    wire(&socket);
    relay::wire(&socket, &app);
    recovered::begin(&socket, &app, back, &user).await;
    Ok(())
}

/// The handshake of a namespace opened by relay rules: the same identity and limits as the
/// chat's, without the chat's memberships or presence.
async fn relay_handshake<A: Adapter>(
    socket: SocketRef<A>,
    TryData(auth): TryData<Value>,
    State(app): State<AppState>,
) -> Result<(), Refused> {
    let kept = auth_kept(&socket, &auth, &app);
    let back = Return::from_auth(&socket, &app, &auth);
    let guest = returning_guest(&socket, &app, back.as_ref()).await;
    let Identity { user, grant } =
        identify(&socket, auth, guest, &app).map_err(refused(&socket))?;
    after_admission(&socket, &app, kept.as_ref(), &user).map_err(refused(&socket))?;
    socket.join(user.personal_room());
    settle(&socket, &app, user.clone(), grant);
    relay::wire(&socket, &app);
    socket.on_fallback(ignored::<A>);
    socket.on_disconnect(on_disconnect::<A>);
    recovered::begin(&socket, &app, back, &user).await;
    Ok(())
}

/// The handshake's `auth`, kept when something after admission reads it: a replaying rule of
/// the socket's namespace (its offset), or the handshakes kept for a mixed cluster's fetches.
fn auth_kept<A: Adapter>(
    socket: &SocketRef<A>,
    auth: &Result<Value, impl fmt::Display>,
    app: &AppState,
) -> Option<Value> {
    let replays = app.rules.of(socket.ns()).any(|r| r.replay.is_some());
    (replays || app.handshakes.are_kept()).then(|| auth.as_ref().ok().cloned().unwrap_or_default())
}

/// What admission leaves for later: the offsets the socket's replays start from (read before it
/// connects, so that one it cannot use is refused with the handshake), and its handshake as
/// Node describes it, when kept.
fn after_admission<A: Adapter>(
    socket: &SocketRef<A>,
    app: &AppState,
    auth: Option<&Value>,
    user: &User,
) -> Result<(), ChatError> {
    let Some(auth) = auth else { return Ok(()) };
    let offsets = Offsets::from_auth(&app.rules, socket.ns(), auth)?;
    if !offsets.is_empty() {
        socket.extensions.insert(offsets);
    }
    if app.handshakes.are_kept() {
        let parts = socket.req_parts();
        let address = app.limits.client_address(&parts.headers, &parts.extensions);
        let request = handshakes::Request {
            parts,
            address,
            auth: Some(auth),
        };
        app.handshakes.keep(&socket.id.to_string(), request, user);
    }
    Ok(())
}

fn refused<A: Adapter>(socket: &SocketRef<A>) -> impl FnOnce(ChatError) -> Refused + '_ {
    move |e| {
        metrics::counter!(names::HANDSHAKE_REJECTIONS, "code" => e.code.as_str()).increment(1);
        tracing::debug!(sid = %socket.id, ns = socket.ns(), code = %e.code, reason = %e.message, "handshake refused");
        Refused(e)
    }
}

/// What every admitted socket carries: who it is, what it may do, when its session ends.
fn settle<A: Adapter>(socket: &SocketRef<A>, app: &AppState, user: User, grant: Grant) {
    // As Node does, every socket is in a room named by its id: `io.to(id)` from any node (a
    // Node socket.io one included, in a mixed cluster) reaches it.
    socket.join(socket.id);
    RateLimits::connected(socket.req_parts());
    if let Some(limit) = app.auth.session_limit(&grant) {
        socket.extensions.insert(end_at_expiry(socket, limit));
    }
    if let Some(strikes) = app.limits.strikes() {
        socket.extensions.insert(strikes);
    }
    socket.extensions.insert(user);
    socket.extensions.insert(grant);
    metrics::counter!(names::CONNECTS, "namespace" => socket.ns().to_owned()).increment(1);
}

/// The guest a returning client without a name was (see [`recovered::Return::guest`]).
async fn returning_guest<A: Adapter>(
    socket: &SocketRef<A>,
    app: &AppState,
    back: Option<&Return>,
) -> Option<String> {
    back?.guest(socket.ns(), app).await
}

/// Who the socket is, if its address has handshakes left and its credentials hold; a client
/// that gives no name in open mode is `guest`, when it comes back as one.
fn identify<A: Adapter>(
    socket: &SocketRef<A>,
    auth: Result<Value, impl fmt::Display>,
    guest: Option<String>,
    app: &AppState,
) -> Result<Identity, ChatError> {
    app.ensure_serving()?;
    let request = socket.req_parts();
    app.limits.handshake(request)?;
    let auth = auth.map_err(|e| ChatError::bad_request(format!("unreadable auth payload: {e}")))?;
    let mut credentials = Credentials::from_handshake(&auth, request.uri.query())?;
    if credentials.username.is_none() {
        credentials.username = guest;
    }
    app.auth.authenticate(credentials)
}

/// Who the socket is, counted among its user's sockets (within their limit, checked and
/// counted at once, so that a burst of handshakes cannot pass it), and in its rooms.
async fn admit<A: Adapter>(
    socket: &SocketRef<A>,
    auth: Result<Value, impl fmt::Display>,
    guest: Option<String>,
    app: &AppState,
) -> Result<(Identity, Connection), ChatError> {
    let identity = identify(socket, auth, guest, app)?;
    let max = app.limits.sockets_per_user();
    let connection = app
        .presence
        .connect_within(&identity.user.id, max)
        .map_err(|held| app.limits.too_many_sockets(held))?;
    // The personal room first: a join made on another tab while the memberships are read
    // reaches this socket through it. A token that limits its rooms puts the socket in the
    // user's limited room too, at the same time, so that such joins reach it only where the
    // token allows (see `rooms::RoomChange`).
    let mut own = vec![identity.user.personal_room()];
    if identity.grant.rooms.is_some() {
        own.insert(0, identity.user.limited_room());
    }
    socket.join(own);
    let mut rooms = app.store.rooms_of(&identity.user.id).await?;
    // Memberships this token does not allow stay stored, unused by this socket.
    rooms.retain(|room| identity.grant.allows(room));
    socket.join(rooms);
    Ok((identity, connection))
}

/// Ends the session when its token expires: an `error` event (`unauthorized`), then the
/// disconnect. Aborted when the socket goes first.
fn end_at_expiry<A: Adapter>(socket: &SocketRef<A>, after: Duration) -> SessionTimer {
    let socket = socket.clone();
    let timer = tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let expired = ChatError::new(
            ErrorCode::Unauthorized,
            "the token has expired: reconnect with a new one",
        );
        if let Err(err) = socket.emit(event::ERROR, &expired) {
            tracing::debug!(sid = %socket.id, user = %user_label(&socket), error = %err, "could not tell the socket its token expired");
        }
        let (sid, user) = (socket.id, user_label(&socket));
        tracing::debug!(%sid, %user, "token expired: disconnecting");
        if let Err(err) = socket.disconnect() {
            tracing::debug!(%sid, %user, error = %err, "disconnecting an expired session");
        }
    });
    SessionTimer(timer.abort_handle())
}

/// The task that ends a session at its token's expiry.
#[derive(Clone)]
struct SessionTimer(AbortHandle);

fn wire<A: Adapter>(socket: &SocketRef<A>) {
    command::wire(socket);
    socket.on_disconnect(on_disconnect::<A>);
}

/// Runs once the client knows it is connected: the replays of the namespace's rules, then live
/// delivery of what they store.
async fn on_connect<A: Adapter>(
    socket: SocketRef<A>,
    State(feeds): State<Feeds>,
    State(app): State<AppState>,
) {
    recovered::live(&socket, &app);
    tracing::debug!(sid = %socket.id, user = %user_label(&socket), ns = socket.ns(), "connected");
    if let Some(offsets) = socket.extensions.remove::<Offsets>() {
        feeds.catch_up(socket, offsets).await;
    }
}

/// Events no rule serves, on a namespace opened by rules: ignored, as a Node server ignores
/// events it has no handler for, but answered when the client waits for an answer.
async fn ignored<A: Adapter>(Event(name): Event, reply: Reply<A>) {
    if reply.wants_ack() {
        reply.send::<()>(
            UNKNOWN,
            Err(ChatError::bad_request(format!(
                "no rule serves event '{name}'"
            ))),
        );
    }
}

async fn on_disconnect<A: Adapter>(
    socket: SocketRef<A>,
    reason: DisconnectReason,
    State(app): State<AppState>,
) {
    recovered::leave(&socket, reason, &app).await;
    app.handshakes.forget(&socket.id.to_string());
    // Out of presence now rather than when the last handle on the socket goes.
    socket.extensions.remove::<Arc<Connection>>();
    if let Some(SessionTimer(timer)) = socket.extensions.remove::<SessionTimer>() {
        timer.abort();
    }
    tracing::debug!(sid = %socket.id, user = %user_label(&socket), ns = socket.ns(), reason = reason_name(reason), "disconnected");
    metrics::counter!(names::DISCONNECTS, "reason" => reason_name(reason)).increment(1);
}

/// Every reason a socket may go, for the disconnect metrics.
pub const DISCONNECT_REASONS: [DisconnectReason; 8] = [
    DisconnectReason::TransportClose,
    DisconnectReason::MultipleHttpPollingError,
    DisconnectReason::PacketParsingError,
    DisconnectReason::TransportError,
    DisconnectReason::HeartbeatTimeout,
    DisconnectReason::ClientNSDisconnect,
    DisconnectReason::ServerNSDisconnect,
    DisconnectReason::ClosingServer,
];

/// Node's names for why a socket went (the reasons socket.io clients and the admin UI show).
pub fn reason_name(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::TransportClose => "transport close",
        DisconnectReason::MultipleHttpPollingError => "multiple polling requests",
        DisconnectReason::PacketParsingError => "parse error",
        DisconnectReason::TransportError => "transport error",
        DisconnectReason::HeartbeatTimeout => "ping timeout",
        DisconnectReason::ClientNSDisconnect => "client namespace disconnect",
        DisconnectReason::ServerNSDisconnect => "server namespace disconnect",
        DisconnectReason::ClosingServer => "server shutting down",
    }
}
