//! What the admin UI sees: this node's sockets and rooms, looked at every second (and at once
//! after a command) and told as the UI's events (`socket_connected`, `room_joined`, …), and
//! `server_stats` every two seconds. Looking rather than hooking: every way a socket enters or
//! leaves a room (the chat's commands, another node's broadcast, relay rules, the admin UI
//! itself) shows, with no code on the chat's paths. On a cluster, every node tells its own
//! through the adapter, so every admin socket sees every node.

use super::NAMESPACE;
use super::describe::{Seen, describe, rooms_of, transport_name};
use crate::limits::RateLimits;
use serde::Serialize;
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;
use socketioxide::socket::Sid;
use socketioxide::{SocketIo, TransportType};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How often the sockets are looked at.
const SCAN_EVERY: Duration = Duration::from_secs(1);
/// How often `server_stats` goes out (the UI marks a server unhealthy after 10 s without).
const STATS_EVERY: Duration = Duration::from_secs(2);
/// Connections and disconnections per second since the last `server_stats`.
#[derive(Default)]
struct Tally(BTreeMap<(i64, &'static str), u64>);

impl Tally {
    fn add(&mut self, kind: &'static str) {
        let second = chrono::Utc::now().timestamp() * 1000;
        *self.0.entry((second, kind)).or_default() += 1;
    }

    fn take(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.0)
            .into_iter()
            .map(|((timestamp, kind), count)| {
                json!({ "timestamp": timestamp, "type": kind, "count": count })
            })
            .collect()
    }
}

/// What admin sockets ask of this node's watcher.
pub(super) enum Ask {
    /// A command may have changed something: look now.
    Look,
    /// Look now, then describe this node's sockets as the admin sockets were just told them.
    Describe(oneshot::Sender<Vec<Value>>),
}

/// The way to the watcher task.
#[derive(Clone)]
pub(super) struct Watch(mpsc::Sender<Ask>);

impl Watch {
    /// A watch, and the receiving end its watcher starts with.
    pub(super) fn new() -> (Self, mpsc::Receiver<Ask>) {
        let (tx, rx) = mpsc::channel(64);
        (Self(tx), rx)
    }

    /// Asks for a look soon; a full queue already holds one.
    pub(super) fn look(&self) {
        let _ = self.0.try_send(Ask::Look);
    }

    /// This node's sockets, consistent with the events sent so far: what changes after this
    /// comes as events.
    pub(super) async fn describe(&self) -> Vec<Value> {
        let (tx, rx) = oneshot::channel();
        if self.0.send(Ask::Describe(tx)).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }
}

/// The task that watches this node's sockets for the admin UI.
pub struct Watcher<A: Adapter> {
    io: SocketIo<A>,
    limits: RateLimits,
    server_id: String,
    hostname: String,
    started: Instant,
    seen: HashMap<(String, Sid), Seen>,
    tally: Tally,
}

impl<A: Adapter> Watcher<A> {
    /// `server_id`: the node's name in the UI (`telemetry::node_name`).
    pub fn start(
        io: SocketIo<A>,
        limits: RateLimits,
        server_id: String,
        asks: mpsc::Receiver<Ask>,
    ) {
        let watcher = Self {
            io,
            limits,
            server_id,
            hostname: crate::telemetry::hostname(),
            started: Instant::now(),
            seen: HashMap::new(),
            tally: Tally::default(),
        };
        tokio::spawn(watcher.run(asks));
    }

    async fn run(mut self, mut asks: mpsc::Receiver<Ask>) {
        let mut scan = tokio::time::interval(SCAN_EVERY);
        scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stats_due = Instant::now();
        loop {
            let mut reply = None;
            tokio::select! {
                _ = scan.tick() => {}
                ask = asks.recv() => match ask {
                    Some(Ask::Look) => {
                        // A command's effect on another node takes a moment to arrive.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Some(Ask::Describe(to)) => reply = Some(to),
                    // The namespace is gone with its server.
                    None => return,
                }
            }
            self.scan().await;
            if let Some(to) = reply {
                let _ = to.send(self.describe_all());
            }
            if stats_due <= Instant::now() {
                self.stats().await;
                stats_due = Instant::now() + STATS_EVERY;
            }
        }
    }

    /// Compares this node's sockets with what was seen last and tells the difference.
    async fn scan(&mut self) {
        let mut now_seen = HashMap::with_capacity(self.seen.len());
        let mut events: Vec<(&'static str, Value)> = Vec::new();
        let ts = timestamp();
        for ns in self.io.nsps() {
            let nsp = ns.ns_path().to_owned();
            for socket in ns.sockets() {
                let key = (nsp.clone(), socket.id);
                let seen = Seen {
                    rooms: rooms_of(&socket),
                    transport: transport_name(socket.transport_type()),
                };
                match self.seen.remove(&key) {
                    None => {
                        if nsp != NAMESPACE {
                            self.tally.add("rawConnection");
                        }
                        let described = describe(&socket, &self.limits, &seen);
                        events.push(("socket_connected", json!([described, ts])));
                    }
                    Some(before) => {
                        for room in seen.rooms.difference(&before.rooms) {
                            events.push(("room_joined", json!([nsp, room, socket.id, ts])));
                        }
                        for room in before.rooms.difference(&seen.rooms) {
                            events.push(("room_left", json!([nsp, room, socket.id, ts])));
                        }
                        if before.transport != seen.transport {
                            let update =
                                json!({ "id": socket.id, "nsp": nsp, "transport": seen.transport });
                            events.push(("socket_updated", json!([update])));
                        }
                    }
                }
                now_seen.insert(key, seen);
            }
        }
        // Gone: disconnected, then out of every room it was in (the UI keeps rooms otherwise).
        for ((nsp, id), before) in std::mem::replace(&mut self.seen, now_seen) {
            if nsp != NAMESPACE {
                self.tally.add("rawDisconnection");
            }
            events.push((
                "socket_disconnected",
                json!([nsp, id, "transport close", ts]),
            ));
            for room in before.rooms {
                events.push(("room_left", json!([nsp, room, id, ts])));
            }
        }
        for (name, args) in events {
            self.tell(name, &Spread(args)).await;
        }
    }

    /// This node's sockets as the last look saw them.
    fn describe_all(&self) -> Vec<Value> {
        let mut all = Vec::with_capacity(self.seen.len());
        for ns in self.io.nsps() {
            let nsp = ns.ns_path().to_owned();
            for socket in ns.sockets() {
                if let Some(seen) = self.seen.get(&(nsp.clone(), socket.id)) {
                    all.push(describe(&socket, &self.limits, seen));
                }
            }
        }
        all
    }

    async fn stats(&mut self) {
        let mut namespaces = Vec::new();
        let (mut clients, mut polling) = (0, 0);
        for ns in self.io.nsps() {
            let sockets = ns.clone().sockets();
            if ns.ns_path() != NAMESPACE {
                clients += sockets.len();
                polling += sockets
                    .iter()
                    .filter(|s| s.transport_type() == TransportType::Polling)
                    .count();
            }
            namespaces.push(json!({ "name": ns.ns_path(), "socketsCount": sockets.len() }));
        }
        let stats = json!({
            "serverId": self.server_id,
            "hostname": self.hostname,
            "pid": std::process::id(),
            "uptime": self.started.elapsed().as_secs_f64(),
            "clientsCount": clients,
            "pollingClientsCount": polling,
            "aggregatedEvents": self.tally.take(),
            "namespaces": namespaces,
        });
        self.tell("server_stats", &stats).await;
    }

    /// To every admin socket, on every node.
    async fn tell<T: Serialize + ?Sized>(&self, event: &str, payload: &T) {
        let Some(admins) = self.io.of(NAMESPACE) else {
            return;
        };
        if let Err(err) = admins.emit(event, payload).await {
            tracing::debug!(event, error = %err, "admin UI event not delivered everywhere");
        }
    }
}

/// A JSON array sent as separate arguments, as the UI's events take them.
struct Spread(Value);

impl Serialize for Spread {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let args = self.0.as_array().map(Vec::as_slice).unwrap_or_default();
        let mut tuple = serializer.serialize_tuple(args.len())?;
        for arg in args {
            tuple.serialize_element(arg)?;
        }
        tuple.end()
    }
}

fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
