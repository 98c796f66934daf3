//! The official Socket.IO admin UI (npm `@socket.io/admin-ui`) on namespace `/admin`: its login,
//! its view of every socket and room (src/admin/watch.rs), and its commands (join, leave,
//! disconnect, emit). Served only when credentials are configured; on a cluster, every node
//! reports its own sockets to every admin socket through the adapter, and commands reach
//! sockets on any node.

mod describe;
mod watch;

use crate::config::AdminCredentials;
use crate::limits::RateLimits;
use crate::realtime::Args;
use crate::realtime::Local;
use crate::state::AppState;
use dashmap::DashMap;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{Event, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::operators::BroadcastOperators;
use socketioxide::socket::{RemoteSocket, Sid};
use socketioxide_core::adapter::DefinedAdapter;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;

use watch::{Ask, Watch, Watcher};

/// The namespace the admin UI connects to by default.
pub const NAMESPACE: &str = "/admin";

/// How long a login session (the UI's `session_id`, used on reload) is accepted.
const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);

/// What the server supports, as the UI reads it. `ALL_EVENTS` is advertised although the event
/// log is not kept (copying every event of every socket to the admin namespace would cost what
/// the chat itself costs): @socket.io/admin-ui 0.5.1 shows its Sockets, Rooms and Clients pages
/// only in "development mode", which it derives from `ALL_EVENTS` (or from the absence of
/// `AGGREGATED_EVENTS`, which would hide the dashboard's charts instead). Its Events page stays
/// empty.
const FEATURES: [&str; 9] = [
    "EMIT",
    "JOIN",
    "LEAVE",
    "DISCONNECT",
    "MJOIN",
    "MLEAVE",
    "MDISCONNECT",
    "AGGREGATED_EVENTS",
    "ALL_EVENTS",
];

/// The admin namespace's state, shared by its handlers (a Socket.IO state of its own).
#[derive(Clone)]
pub struct Admin {
    credentials: Arc<AdminCredentials>,
    /// Login sessions of this node, with when they were made.
    sessions: Arc<DashMap<String, Instant>>,
    /// This node's watcher: asked to look after a command, and for the sockets it told.
    watch: Watch,
    /// The watcher's end, until it starts.
    asks: Arc<std::sync::Mutex<Option<mpsc::Receiver<Ask>>>>,
}

/// Serves `/admin` on a single-node `io` (built with `admin` as a state).
pub fn attach(io: &SocketIo<Local>, admin: &Admin, server_id: String, limits: RateLimits) {
    io.ns(NAMESPACE, welcome::<Local>.with(login::<Local>));
    if let Some(asks) = admin.take_asks() {
        Watcher::start(io.clone(), limits, server_id, asks);
    }
}

/// Serves `/admin` on a cluster node's `io`, once its channels are subscribed in Redis.
pub async fn attach_cluster<A, E>(
    io: &SocketIo<A>,
    admin: &Admin,
    server_id: String,
    limits: RateLimits,
) -> anyhow::Result<()>
where
    A: Adapter + DefinedAdapter,
    A::InitRes: std::future::Future<Output = Result<(), E>>,
    E: fmt::Display,
{
    io.ns(NAMESPACE, welcome::<A>.with(login::<A>))
        .await
        .map_err(|e| anyhow::anyhow!("subscribing to the admin namespace's channels: {e}"))?;
    if let Some(asks) = admin.take_asks() {
        Watcher::start(io.clone(), limits, server_id, asks);
    }
    Ok(())
}

/// The UI's login: `{ username, password }`, or `{ sessionId }` on reload.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Login {
    username: Option<String>,
    password: Option<String>,
    session_id: Option<String>,
}

/// A refused admin login; the UI shows "Invalid credentials" for exactly this message.
#[derive(Debug)]
struct Refused(&'static str);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Refused {}

/// A login by password, which earns a session for the next reload.
#[derive(Clone)]
struct NewSession;

impl Admin {
    pub fn new(credentials: AdminCredentials) -> Self {
        let (watch, asks) = Watch::new();
        Self {
            credentials: Arc::new(credentials),
            sessions: Arc::new(DashMap::new()),
            watch,
            asks: Arc::new(std::sync::Mutex::new(Some(asks))),
        }
    }

    fn take_asks(&self) -> Option<mpsc::Receiver<Ask>> {
        self.asks.lock().ok().and_then(|mut asks| asks.take())
    }

    fn knows(&self, session: &str) -> bool {
        self.sessions.retain(|_, made| made.elapsed() < SESSION_TTL);
        self.sessions.contains_key(session)
    }

    /// Both compared in full, in constant time, as digests of one length: neither an early
    /// exit nor a length tells which one was wrong, or how long it is.
    fn accepts(&self, username: &str, password: &str) -> bool {
        let digest = |text: &str| Sha256::digest(text.as_bytes());
        let user_ok = digest(username).ct_eq(&digest(&self.credentials.username));
        let password_ok = digest(password).ct_eq(&digest(self.credentials.password.expose()));
        bool::from(user_ok & password_ok)
    }
}

/// Checks the login; a password login earns a session id, sent once connected.
async fn login<A: Adapter>(
    socket: SocketRef<A>,
    TryData(auth): TryData<Value>,
    State(app): State<AppState>,
    State(admin): State<Admin>,
) -> Result<(), Refused> {
    app.ensure_serving()
        .map_err(|_| Refused("the server is shutting down"))?;
    let address = app
        .limits
        .handshake(socket.req_parts())
        .map_err(|_| Refused("rate_limited"))?;
    // Password guesses have an allowance of their own, far below the handshakes'.
    app.limits
        .admin_login(&address)
        .map_err(|_| Refused("rate_limited"))?;
    let login: Login = auth
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    if let Some(session) = login.session_id.as_deref()
        && admin.knows(session)
    {
        RateLimits::connected(socket.req_parts());
        wire(&socket);
        return Ok(());
    }
    let (Some(username), Some(password)) = (&login.username, &login.password) else {
        return Err(Refused("invalid credentials"));
    };
    if !admin.accepts(username, password) {
        // Not the name typed: a password typed in the wrong field must not reach the logs.
        tracing::warn!(sid = %socket.id, %address, "admin UI login refused");
        return Err(Refused("invalid credentials"));
    }
    tracing::info!(sid = %socket.id, user = %username, %address, "admin UI login");
    RateLimits::connected(socket.req_parts());
    socket.extensions.insert(NewSession);
    wire(&socket);
    Ok(())
}

/// Once connected (so that the UI, which listens from `connect` on, gets them): the session id,
/// the features, and every socket of the cluster.
async fn welcome<A: Adapter>(socket: SocketRef<A>, io: SocketIo<A>, State(admin): State<Admin>) {
    if socket.extensions.remove::<NewSession>().is_some() {
        let session = uuid::Uuid::new_v4().simple().to_string();
        admin.sessions.insert(session.clone(), Instant::now());
        let _ = socket.emit("session", &session);
    }
    let _ = socket.emit(
        "config",
        &serde_json::json!({ "supportedFeatures": FEATURES }),
    );
    let here = admin.watch.describe().await;
    let sockets = describe::all_sockets(&io, here).await;
    let _ = socket.emit("all_sockets", &sockets);
}

/// The UI's commands. None is acknowledged; their effects come back as socket and room events.
fn wire<A: Adapter>(socket: &SocketRef<A>) {
    for name in ["join", "leave", "_disconnect", "emit"] {
        socket.on(name, on_command::<A>);
    }
}

async fn on_command<A: Adapter>(
    socket: SocketRef<A>,
    io: SocketIo<A>,
    Event(name): Event,
    TryData(args): TryData<Args>,
    State(admin): State<Admin>,
) {
    match args {
        Ok(args) => command(&socket, &io, &name, args).await,
        Err(err) => {
            tracing::debug!(sid = %socket.id, user = "admin", command = name, error = %err, "unreadable admin command");
        }
    }
    admin.watch.look();
}

async fn command<A: Adapter>(socket: &SocketRef<A>, io: &SocketIo<A>, name: &str, args: Args) {
    let values = args.into_values();
    let text = |i: usize| values.get(i).and_then(rmpv::Value::as_str);
    let Some(nsp) = text(0) else {
        return;
    };
    tracing::info!(sid = %socket.id, user = "admin", command = name, nsp, "admin UI command");
    let outcome = match name {
        // join(nsp, room, filter?) and leave(nsp, room, filter?)
        "join" | "leave" => {
            let Some(room) = text(1).map(str::to_owned) else {
                return;
            };
            let join = name == "join";
            match Selection::of(io, nsp, text(2)).await {
                Selection::Many(ops) if join => ops.join(room).await.map_err(|e| e.to_string()),
                Selection::Many(ops) => ops.leave(room).await.map_err(|e| e.to_string()),
                Selection::Here(s) if join => {
                    s.join(room);
                    Ok(())
                }
                Selection::Here(s) => {
                    s.leave(room);
                    Ok(())
                }
                Selection::There(s) if join => s.join(room).await.map_err(|e| e.to_string()),
                Selection::There(s) => s.leave(room).await.map_err(|e| e.to_string()),
                Selection::Nobody => Ok(()),
            }
        }
        // _disconnect(nsp, close, filter?): a namespace socket is disconnected either way.
        "_disconnect" => match Selection::of(io, nsp, text(2)).await {
            Selection::Many(ops) => ops.disconnect().await.map_err(|e| e.to_string()),
            Selection::Here(s) => s.disconnect().map_err(|e| e.to_string()),
            Selection::There(s) => s.disconnect().await.map_err(|e| e.to_string()),
            Selection::Nobody => Ok(()),
        },
        // emit(nsp, filter?, event, ...args)
        _ => {
            let Some(event) = text(2).map(str::to_owned) else {
                return;
            };
            let payload = Args::from_values(values.iter().skip(3).cloned().collect());
            match Selection::of(io, nsp, text(1).filter(|f| !f.is_empty())).await {
                Selection::Many(ops) => ops.emit(event, &payload).await.map_err(|e| e.to_string()),
                Selection::Here(s) => s.emit(event, &payload).map_err(|e| e.to_string()),
                Selection::There(s) => s.emit(event, &payload).await.map_err(|e| e.to_string()),
                Selection::Nobody => Ok(()),
            }
        }
    };
    if let Err(err) = outcome {
        tracing::warn!(sid = %socket.id, user = "admin", command = name, nsp, error = %err, "admin UI command failed");
    }
}

/// The sockets a command applies to: a namespace, or those of its sockets in a room, or one
/// socket (the UI names sockets by id, which Node keeps as a room of its own).
enum Selection<A: Adapter> {
    Many(BroadcastOperators<A>),
    Here(SocketRef<A>),
    There(RemoteSocket<A>),
    Nobody,
}

impl<A: Adapter> Selection<A> {
    async fn of(io: &SocketIo<A>, nsp: &str, filter: Option<&str>) -> Self {
        let Some(ns) = io.of(nsp) else {
            return Self::Nobody;
        };
        let Some(filter) = filter else {
            return Self::Many(ns);
        };
        if let Ok(sid) = Sid::from_str(filter) {
            if let Some(socket) = ns.get_socket(sid) {
                return Self::Here(socket);
            }
            if let Ok(remote) = ns.clone().fetch_sockets().await
                && let Some(socket) = remote.into_iter().find(|s| s.data().id == sid)
            {
                return Self::There(socket);
            }
        }
        Self::Many(ns.within(filter.to_owned()))
    }
}
