//! Building the app from its configuration, and running it until told to stop.

use crate::cluster::{ClusterAdapter, Node, NodeAdapter};
use crate::config::AdapterKind;
use crate::config::Config;
use crate::handshakes::Handshakes;
use crate::http::{self, HttpState};
use crate::identity::Authenticator;
use crate::limits::RateLimits;
use crate::presence::Presence;
use crate::realtime::{Fanout, Feeds};
use crate::recovery::{Recovering, RecoveringCtr, Recovery};
use crate::room_events::RoomEvents;
use crate::state::AppState;
use crate::store::{Store, Writer, WriterTask};
use crate::{admin, realtime, telemetry};
use anyhow::Context;
use axum::Router;
use axum::http::{HeaderValue, Method};
use axum::serve::ListenerExt;
use socketioxide::adapter::Adapter;
use socketioxide::{ParserConfig, SocketIo};
use socketioxide_core::adapter::DefinedAdapter;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

/// Binary attachments one packet may carry: no command takes any, so a few are plenty to answer
/// `bad_request` and none can be used to pile up buffers.
const MAX_ATTACHMENTS: usize = 4;

/// Adds the Socket.IO service, whichever adapter it was built with, to a router.
type SocketIoLayer = Box<dyn FnOnce(Router) -> Router + Send>;

/// A bound, wired server that has not started serving yet.
pub struct App {
    listener: TcpListener,
    router: Router,
    io: Arc<dyn Fanout>,
    node: Option<Node>,
    state: AppState,
    writer: WriterTask,
    /// Tells large rooms their member counts; stopped with the app.
    headcount: JoinHandle<()>,
    /// Publishes the outbox on its broker (`CHATOXIDE_OUTBOX_URL`); stopped after the writer.
    outbox: Option<(JoinHandle<()>, CancellationToken)>,
    grace: Duration,
    user_timeout: Duration,
}

impl App {
    /// Opens storage (running migrations), wires Socket.IO and HTTP, and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // Before storage is opened: a mistyped folder stops the start at once.
        let files = config.static_dir.as_deref().map(http::StaticDir::open);
        let files = files.transpose()?;
        metrics_from_zero(&config.rules);
        let (state, writer, node, feeds) = chat_state(&config).await?;
        let admin = config.admin.clone().map(admin::Admin::new);
        let engine = engine(&config, &state, feeds, admin.as_ref());
        let (io, socketio) =
            namespaces(engine, node.as_ref(), &config, &state, admin.as_ref()).await?;
        let headcount = tell_headcounts(&state, &io);
        let outbox = config.outbox.as_ref().map(|outbox| {
            // Unique per process, whatever the node's name: two holders never share one.
            let holder = format!("{}-{}", config.node_name(), uuid::Uuid::new_v4().simple());
            crate::outbox::start(state.store.clone(), outbox, holder)
        });
        let router = routes(socketio, &config, &state, &io, node.as_ref(), files);
        let listener = listen(SocketAddr::from((config.host, config.port)))
            .with_context(|| format!("binding {}:{}", config.host, config.port))?;
        Ok(Self {
            listener,
            router,
            io,
            node,
            state,
            writer,
            headcount,
            outbox,
            grace: config.shutdown_grace,
            user_timeout: config.tcp_user_timeout,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then drains: new commands are refused, the ones in
    /// flight commit and are answered, the writer stores what it holds, sockets are closed, and
    /// the database is closed last.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Self {
            listener,
            router,
            io,
            node,
            state,
            writer,
            headcount,
            outbox,
            grace,
            user_timeout,
        } = self;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // Chat frames are small and latency-bound: no Nagle delay behind an unacknowledged one.
        // A peer that stops reading (or dies) holds data unacknowledged; past the user timeout
        // the kernel drops the connection, and with it the session and its queue.
        let listener = listener.tap_io(move |tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "could not set TCP_NODELAY");
            }
            #[cfg(target_os = "linux")]
            if let Err(err) = socket2::SockRef::from(&*tcp).set_tcp_user_timeout(Some(user_timeout))
            {
                tracing::debug!(error = %err, "could not set TCP_USER_TIMEOUT");
            }
        });
        // The peer's address reaches the handshake (per-address limits) through ConnectInfo.
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let serve = axum::serve(listener, service).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        let mut server = tokio::spawn(async move { serve.await });
        tokio::select! {
            () = shutdown => {}
            res = &mut server => return res.context("server task")?.context("serving"),
        }
        tracing::info!("shutting down: finishing commands in flight");
        state.start_draining();
        state.in_flight.close();
        if tokio::time::timeout(grace, state.in_flight.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                ?grace,
                "commands still in flight at the end of the grace period"
            );
        }
        writer.finish().await;
        // Every committed event has been told: the room feeds end.
        state.room_events.close();
        if let Some((relay, stop)) = outbox {
            // What it has not published stays in the outbox for the next start (or node).
            stop.cancel();
            if let Err(err) = relay.await {
                tracing::error!(error = %err, "the outbox relay failed");
            }
        }
        headcount.abort();
        io.close().await;
        if let Some(node) = node {
            node.leave().await;
        }
        let _ = stop.send(());
        match tokio::time::timeout(grace, server).await {
            Ok(res) => res.context("server task")?.context("serving")?,
            Err(_) => tracing::warn!("HTTP connections still open at the end of the grace period"),
        }
        state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The chat's state: storage (migrated), its writer, identity, presence (across the cluster on
/// a cluster node) and the rate limits.
async fn chat_state(
    config: &Config,
) -> anyhow::Result<(AppState, WriterTask, Option<Node>, Feeds)> {
    let store = Store::open(config.database_url.expose(), config.database_pool)
        .await
        .context("opening the database")?;
    if config.outbox.is_some() {
        store.keep_outbox();
    }
    let auth = Authenticator::new(&config.auth, &config.token)?;
    let (writer, writer_task) = Writer::start(store.clone(), config.writer);
    // Past the writer's own bound on a sender's wait, with room to answer.
    let deadline =
        config.writer.queue_deadline + config.writer.commit_timeout + Duration::from_secs(3);
    let mut presence = Presence::default();
    let node = match &config.cluster {
        Some(cluster) => {
            let (node, registry) = Node::join(cluster, presence.counts()).await?;
            presence = presence.with_registry(Arc::new(registry));
            Some(node)
        }
        None => None,
    };
    let room_events = match (&node, &config.cluster) {
        (Some(node), Some(cluster)) => RoomEvents::cluster(
            node.link.clone(),
            &cluster.prefix,
            &cluster.node_id,
            node.leaving(),
        )
        .await
        .context("subscribing to the rooms' events on Redis")?,
        _ => RoomEvents::default(),
    };
    let cluster = node
        .as_ref()
        .zip(config.cluster.as_ref())
        .map(|(node, cluster)| (node.link.clone(), cluster.prefix.as_str()));
    let recovery = Recovery::new(
        config.recovery.clone(),
        cluster
            .clone()
            .map(|(link, prefix)| (link, prefix.to_owned())),
        config.socket_buffer,
    );
    let feeds = Feeds::start(&config.rules, &store, cluster)
        .await
        .context("starting the feeds of replaying rules")?;
    let limits = RateLimits::new(&config.rates);
    tokio::spawn(forget_idle_users(limits.clone()));
    let state = AppState::new(
        store,
        writer,
        auth,
        presence,
        limits,
        config.text_limit,
        deadline,
    )
    .with_rules(config.rules.clone())
    .with_handshakes(handshakes_kept(config))
    .with_recovery(recovery)
    .with_room_events(room_events)
    .with_large_room(config.large_room);
    Ok((state, writer_task, node, feeds))
}

/// Handshakes are kept for the Node nodes of a mixed cluster, who may fetch this node's sockets.
fn handshakes_kept(config: &Config) -> Handshakes {
    match &config.cluster {
        Some(cluster) if cluster.adapter == AdapterKind::Node => Handshakes::kept(),
        _ => Handshakes::default(),
    }
}

/// The Engine.IO and Socket.IO settings, and the states the handlers share.
fn engine(
    config: &Config,
    state: &AppState,
    feeds: Feeds,
    admin: Option<&admin::Admin>,
) -> socketioxide::SocketIoBuilder {
    let builder = SocketIo::builder()
        .max_buffer_size(config.socket_buffer)
        // One bound on what a client may send at once, whatever the transport: a polling
        // request, a WebSocket message or frame, or the binary attachments of a packet.
        .max_payload(config.max_payload as u64)
        .connect_timeout(config.connect_timeout)
        // A client that stops reading misses its pings and is disconnected: its queue
        // (socket_buffer packets) is all it ever holds.
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        .ws_max_message_size(config.max_payload)
        .ws_max_frame_size(config.max_payload)
        .ws_read_buffer_size(config.ws_read_buffer)
        .with_parser(
            ParserConfig::common()
                .max_incoming_binary_buf_size(config.max_payload)
                .max_incoming_binaries(MAX_ATTACHMENTS),
        )
        .with_state(state.clone())
        .with_state(feeds);
    match admin {
        Some(admin) => builder.with_state(admin.clone()),
        None => builder,
    }
}

/// The namespaces (the chat's, the rules', the admin UI's) on the adapter of this process: on a
/// cluster node the Redis adapter (socketioxide-redis, or Node's format), the local one
/// otherwise.
async fn namespaces(
    engine: socketioxide::SocketIoBuilder,
    node: Option<&Node>,
    config: &Config,
    state: &AppState,
    admin: Option<&admin::Admin>,
) -> anyhow::Result<(Arc<dyn Fanout>, SocketIoLayer)> {
    let limits = state.limits.clone();
    Ok(match node {
        Some(node) if node.adapter_kind() == AdapterKind::Node => {
            let engine =
                engine.with_adapter::<NodeAdapter>(node.node_adapter(state.handshakes.clone()));
            on_redis(engine, config, admin, limits).await?
        }
        Some(node) => {
            let engine = engine.with_adapter::<Recovering<ClusterAdapter>>(RecoveringCtr {
                inner: node.adapter(),
                recovery: state.recovery.clone(),
            });
            on_redis(engine, config, admin, limits).await?
        }
        None => {
            let engine = engine.with_adapter::<realtime::Local>(RecoveringCtr {
                inner: (),
                recovery: state.recovery.clone(),
            });
            let (layer, io) = engine.build_layer();
            realtime::attach(&io, &config.rules);
            if let Some(admin) = admin {
                admin::attach(&io, admin, config.node_name(), limits);
            }
            (Arc::new(io), Box::new(move |r: Router| r.layer(layer)))
        }
    })
}

/// The namespaces of a cluster node on the Redis adapter `A` (socketioxide-redis's, or Node's
/// format), once their channels are subscribed.
async fn on_redis<A, E>(
    engine: socketioxide::SocketIoBuilder<A>,
    config: &Config,
    admin: Option<&admin::Admin>,
    limits: RateLimits,
) -> anyhow::Result<(Arc<dyn Fanout>, SocketIoLayer)>
where
    A: Adapter + DefinedAdapter,
    A::InitRes: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let (layer, io) = engine.build_layer();
    realtime::attach_cluster(&io, &config.rules).await?;
    if let Some(admin) = admin {
        admin::attach_cluster(&io, admin, config.node_name(), limits).await?;
    }
    Ok((Arc::new(io), Box::new(move |r: Router| r.layer(layer))))
}

/// Large rooms hear their member counts, once a second, for as long as the app runs.
fn tell_headcounts(state: &AppState, io: &Arc<dyn Fanout>) -> JoinHandle<()> {
    let io = io.clone();
    tokio::spawn(state.headcount.clone().run(move |room, n| {
        let io = io.clone();
        async move { io.tell_member_count(room, n).await }
    }))
}

/// HTTP around Socket.IO: the routes, the door for new sessions, the client bundle, CORS.
fn routes(
    socketio: SocketIoLayer,
    config: &Config,
    state: &AppState,
    io: &Arc<dyn Fanout>,
    node: Option<&Node>,
    static_dir: Option<http::StaticDir>,
) -> Router {
    let http_state = HttpState {
        app: state.clone(),
        fanout: io.clone(),
        redis: node.map(|n| n.link.clone()),
        api_key: config.api_key.as_ref().map(|key| Arc::from(key.expose())),
        metrics: telemetry::metrics(),
        chat_page: config.chat_page,
        static_dir,
    };
    socketio(http::router(http_state))
        .layer(axum::middleware::from_fn_with_state(
            state.limits.clone(),
            http::sessions::admit,
        ))
        // Outside `admit`: fetching the client bundle is not a new session.
        .layer(axum::middleware::from_fn(http::client::serve))
        .layer(cors(&config.cors_origins))
}

/// Every counter and gauge of a node, at zero from the start (the cluster's Redis metrics are
/// started by the cluster link): "no data" on a dashboard never means "nothing happened".
fn metrics_from_zero(rules: &crate::rules::Rules) {
    use crate::chat::ErrorCode;
    use crate::store::StoreError;
    use crate::telemetry::{count_from_zero, counter_from_zero, names};
    // The recorder first: what is recorded before it is installed is lost.
    let _ = telemetry::metrics();
    let codes = ErrorCode::ALL.map(ErrorCode::as_str);
    let outcomes: Vec<&str> = std::iter::once("ok").chain(codes).collect();
    for command in realtime::command_labels() {
        for outcome in &outcomes {
            metrics::counter!(names::COMMANDS, "command" => command, "outcome" => *outcome)
                .increment(0);
        }
    }
    let namespaces = std::iter::once(crate::rules::CHAT_NAMESPACE).chain(rules.extra_namespaces());
    count_from_zero(names::CONNECTS, "namespace", namespaces);
    let reasons = realtime::DISCONNECT_REASONS.map(realtime::reason_name);
    count_from_zero(names::DISCONNECTS, "reason", reasons);
    count_from_zero(names::HANDSHAKE_REJECTIONS, "code", codes);
    count_from_zero(names::STORAGE_ERRORS, "kind", StoreError::KINDS);
    count_from_zero(names::RATE_LIMITED, "limit", crate::limits::limit_labels());
    for family in [
        names::BROADCASTS,
        names::BROADCAST_FAILURES,
        names::FANOUT_FALLBACKS,
    ] {
        count_from_zero(family, "event", realtime::broadcast_labels());
    }
    counter_from_zero(names::SLOW_CLIENT_DISCONNECTS);
    counter_from_zero(names::ABUSE_DISCONNECTS);
    counter_from_zero(names::REPLAYED);
    counter_from_zero(names::REPLAY_FAILURES);
    counter_from_zero(names::FEED_CATCH_UPS);
    counter_from_zero(names::RECOVERY_SESSIONS_KEPT);
    counter_from_zero(names::RECOVERY_RESTORED);
    counter_from_zero(names::RECOVERY_MISSED);
    count_from_zero(
        names::RECOVERY_FAILURES,
        "why",
        crate::recovery::FAILURE_LABELS,
    );
    count_from_zero(
        names::SSE_CUTS,
        "why",
        ["slow", "store", "shutdown", "expired"],
    );
    count_from_zero(names::OUTBOX_FAILURES, "op", crate::outbox::OPERATIONS);
    counter_from_zero(names::OUTBOX_PUBLISHED);
    metrics::gauge!(names::OUTBOX_LAG).set(0.0);
    metrics::gauge!(names::OUTBOX_RELAY).set(0.0);
    counter_from_zero(names::SSE_EVENTS);
    counter_from_zero(names::ROOM_EVENTS_UNPUBLISHED);
    metrics::gauge!(names::SSE_STREAMS).set(0.0);
    metrics::gauge!(names::WRITE_QUEUE).set(0.0);
}

/// Connections the kernel may hold for the server before it accepts them; it takes at most
/// `net.core.somaxconn` (4096 on recent kernels).
const BACKLOG: i32 = 65_535;

/// The listening socket, with a backlog for a crowd: after a restart every client reconnects
/// within a second or two, and a connection the full queue drops is retried by the client's
/// kernel only after 1, 3, 7 s. tokio's `bind` asks for 1024.
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// Keeps the rate limiters from growing with every user ever seen. Ends with the runtime.
async fn forget_idle_users(limits: RateLimits) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        every.tick().await;
        limits.forget_idle();
    }
}

/// Any origin by default; with a list, only those, with credentials.
fn cors(origins: &[String]) -> CorsLayer {
    if origins.is_empty() {
        return CorsLayer::new()
            .allow_origin(Any)
            .allow_methods(Any)
            .allow_headers(Any);
    }
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers(tower_http::cors::AllowHeaders::mirror_request())
        .allow_credentials(true)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
