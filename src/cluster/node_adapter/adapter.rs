//! The Socket.IO adapter of a node in a cluster shared with Node socket.io servers: what
//! socketioxide asks of an adapter, done the way `@socket.io/redis-adapter` 8.x does it.
//!
//! Model: each namespace's adapter has an id (`uid`, this node's socketioxide server id) and
//! listens, on the node's one Redis link and in the order Redis delivers, to the namespace's
//! broadcasts, requests and responses. A broadcast from this node is published for the others,
//! then delivered to this node's sockets by socketioxide's local adapter; one from another node
//! is delivered to this node's sockets (its own come back and are skipped by `uid`). Joins,
//! leaves and disconnects are applied here and published for the others, as Node publishes
//! them. Fetches and broadcasts with acks wait for the other nodes, counted as Node counts
//! them: the subscribers of the request channel, this node included.

use super::acks::{AckStream, Pending};
use super::channels::Channels;
use super::envelope::{Envelope, NodePacket, Opts};
use super::request::{FetchedSocket, Request, Response, Target};
use crate::cluster::{Link, LinkError};
use crate::handshakes::Handshakes;
use socketioxide::BroadcastError;
use socketioxide::adapter::{AdapterError, Emitter};
use socketioxide_core::adapter::{
    BroadcastFlags, BroadcastOptions, CoreAdapter, CoreLocalAdapter, DefinedAdapter,
    RemoteSocketData, Room, RoomParam, Spawnable,
};
use socketioxide_core::packet::Packet;
use socketioxide_core::{Sid, Uid};
use socketioxide_redis::drivers::Driver;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// How long a request waits for the other nodes (Node's `requestsTimeout` default).
const REQUESTS_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum NodeAdapterError {
    #[error("the cluster's Redis: {0}")]
    Link(#[from] LinkError),
}

impl From<NodeAdapterError> for AdapterError {
    fn from(err: NodeAdapterError) -> Self {
        AdapterError(Box::new(err))
    }
}

/// What every namespace's adapter shares: the link, the Node adapter's `key`, the buffer.
#[derive(Clone)]
pub struct NodeAdapterCtr {
    link: Link,
    key: String,
    buffer: usize,
    handshakes: Handshakes,
}

impl NodeAdapterCtr {
    /// `handshakes` describe this node's sockets to the other nodes' fetches.
    pub fn new(link: Link, key: String, buffer: usize, handshakes: Handshakes) -> Self {
        Self {
            link,
            key,
            buffer,
            handshakes,
        }
    }
}

/// A namespace's adapter in a cluster that speaks Node's format.
pub struct NodeAdapter {
    pub(super) local: CoreLocalAdapter<Emitter>,
    pub(super) link: Link,
    pub(super) uid: String,
    pub(super) channels: Channels,
    buffer: usize,
    pub(super) pending: Pending,
    pub(super) handshakes: Handshakes,
}

/// The subscription of a namespace's channels, awaited before the namespace serves.
pub struct Subscribed(Pin<Box<dyn Future<Output = Result<(), NodeAdapterError>> + Send>>);

impl Future for Subscribed {
    type Output = Result<(), NodeAdapterError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl Spawnable for Subscribed {
    fn spawn(self) {
        tokio::spawn(async move {
            if let Err(err) = self.await {
                tracing::error!(error = %err, "subscribing a namespace's channels");
            }
        });
    }
}

impl DefinedAdapter for NodeAdapter {}

impl CoreAdapter<Emitter> for NodeAdapter {
    type Error = NodeAdapterError;
    type State = NodeAdapterCtr;
    type AckStream = AckStream;
    type InitRes = Subscribed;

    fn new(state: &NodeAdapterCtr, local: CoreLocalAdapter<Emitter>) -> Self {
        let uid = local.server_id().to_string();
        Self {
            channels: Channels::new(&state.key, local.path(), &uid),
            local,
            link: state.link.clone(),
            uid,
            buffer: state.buffer,
            handshakes: state.handshakes.clone(),
            pending: Pending::default(),
        }
    }

    fn init(self: Arc<Self>, on_success: impl FnOnce() + Send + 'static) -> Subscribed {
        Subscribed(Box::pin(async move {
            let c = &self.channels;
            let channels = vec![
                c.request.clone(),
                c.response.clone(),
                c.own_response.clone(),
            ];
            let messages = (self.link)
                .subscribe_in_order(channels, vec![c.broadcasts()], self.buffer)
                .await?;
            tokio::spawn(self.clone().listen(messages));
            on_success();
            Ok(())
        }))
    }

    async fn close(&self) -> Result<(), NodeAdapterError> {
        let c = &self.channels;
        let channels = vec![
            c.request.clone(),
            c.response.clone(),
            c.own_response.clone(),
        ];
        Ok(self
            .link
            .unsubscribe_all(channels, vec![c.broadcasts()])
            .await?)
    }

    async fn server_count(&self) -> Result<u16, NodeAdapterError> {
        Ok(self.link.num_serv(&self.channels.request).await?)
    }

    async fn broadcast(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> Result<(), BroadcastError> {
        if let Some((node_opts, node_packet)) = self.outgoing(&packet, &opts) {
            let chan = self.channels.broadcast(&node_opts.rooms);
            let envelope = Envelope {
                uid: self.uid.clone(),
                packet: node_packet,
                opts: node_opts,
            };
            (self.link.publish(chan, envelope.encode()).await)
                .map_err(|e| AdapterError::from(NodeAdapterError::from(e)))?;
        }
        Ok(self.local.broadcast(packet, opts)?)
    }

    async fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        timeout: Option<Duration>,
    ) -> Result<AckStream, NodeAdapterError> {
        let Some((mut node_opts, node_packet)) = self.outgoing(&packet, &opts) else {
            let (local, _) = self.local.broadcast_with_ack(packet, opts, timeout);
            return Ok(AckStream::local(local));
        };
        let timeout = timeout.unwrap_or_else(|| self.local.ack_timeout());
        node_opts.flags.timeout = Some(timeout.as_millis().try_into().unwrap_or(u64::MAX));
        let others = self.server_count().await?.saturating_sub(1);
        let waiting = self.pending.open();
        let request = Request::Broadcast {
            request_id: waiting.id.clone(),
            packet: node_packet,
            opts: node_opts,
        };
        self.publish_request(&request).await?;
        let (local, _) = self.local.broadcast_with_ack(packet, opts, Some(timeout));
        let deadline = Instant::now() + timeout;
        Ok(AckStream::cluster(local, waiting, others, deadline))
    }

    async fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl RoomParam,
    ) -> Result<(), NodeAdapterError> {
        let rooms: Vec<Room> = rooms.into_room_iter().collect();
        self.tell_others(&opts, &rooms, |target, rooms| Request::Join {
            target,
            rooms,
        })
        .await?;
        self.local.add_sockets(opts, rooms);
        Ok(())
    }

    async fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl RoomParam,
    ) -> Result<(), NodeAdapterError> {
        let rooms: Vec<Room> = rooms.into_room_iter().collect();
        self.tell_others(&opts, &rooms, |target, rooms| Request::Leave {
            target,
            rooms,
        })
        .await?;
        self.local.del_sockets(opts, rooms);
        Ok(())
    }

    async fn disconnect_socket(&self, opts: BroadcastOptions) -> Result<(), BroadcastError> {
        if let Some(target) = self.selection(&opts) {
            let request = Request::Disconnect {
                target,
                close: false,
            };
            (self.publish_request(&request).await).map_err(AdapterError::from)?;
        }
        self.local
            .disconnect_socket(opts)
            .map_err(BroadcastError::Socket)
    }

    async fn rooms(&self, opts: BroadcastOptions) -> Result<Vec<Room>, NodeAdapterError> {
        let mut rooms = self.local.rooms(opts.clone());
        for socket in self.fetch_remote(&opts).await? {
            rooms.extend(socket.rooms.into_iter().map(Room::Owned));
        }
        Ok(rooms.into_iter().collect())
    }

    async fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> Result<Vec<RemoteSocketData>, NodeAdapterError> {
        let mut sockets = self.local.fetch_sockets(opts.clone());
        let ns = self.local.path().clone();
        // socketioxide names sockets by 16-character ids; a Node socket's (20 characters)
        // has no such name, so it is left out here (Node's own fetch lists it).
        let remote = self.fetch_remote(&opts).await?.into_iter();
        sockets.extend(remote.filter_map(|s| {
            Some(RemoteSocketData {
                id: Sid::from_str(&s.id).ok()?,
                server_id: Uid::ZERO,
                ns: ns.clone(),
            })
        }));
        Ok(sockets)
    }

    fn get_local(&self) -> &CoreLocalAdapter<Emitter> {
        &self.local
    }
}

impl NodeAdapter {
    /// What to publish for a broadcast: `None` when it stays on this node (the local flag, or
    /// one of this node's sockets) or is not an event.
    fn outgoing(&self, packet: &Packet, opts: &BroadcastOptions) -> Option<(Opts, NodePacket)> {
        if opts.is_local(self.local.server_id()) {
            return None;
        }
        Some((
            Opts::from_broadcast_options(opts)?,
            NodePacket::from_packet(packet)?,
        ))
    }

    /// The sockets of a join, leave or disconnect, as Node names them; `None` when the
    /// selection stays on this node.
    /// Publishes a room change of the sockets `opts` selects for the other nodes, when the
    /// selection reaches beyond this node.
    async fn tell_others(
        &self,
        opts: &BroadcastOptions,
        rooms: &[Room],
        request: impl FnOnce(Target, Vec<String>) -> Request,
    ) -> Result<(), NodeAdapterError> {
        if let Some(target) = self.selection(opts) {
            let names = rooms.iter().map(|r| r.to_string()).collect();
            self.publish_request(&request(target, names)).await?;
        }
        Ok(())
    }

    fn selection(&self, opts: &BroadcastOptions) -> Option<Target> {
        if opts.is_local(self.local.server_id()) {
            return None;
        }
        Opts::from_broadcast_options(opts).map(Target::Select)
    }

    async fn publish_request(&self, request: &Request) -> Result<(), NodeAdapterError> {
        let bytes = request.encode(&self.uid);
        Ok(self
            .link
            .publish(self.channels.request.clone(), bytes)
            .await?)
    }

    /// The other nodes' sockets that `opts` selects.
    async fn fetch_remote(
        &self,
        opts: &BroadcastOptions,
    ) -> Result<Vec<FetchedSocket>, NodeAdapterError> {
        if opts.has_flag(BroadcastFlags::Local) {
            return Ok(Vec::new());
        }
        let Some(opts) = Opts::from_broadcast_options(opts) else {
            return Ok(Vec::new());
        };
        let others = self.server_count().await?.saturating_sub(1);
        if others == 0 {
            return Ok(Vec::new());
        }
        let waiting = self.pending.open();
        let request = Request::Fetch {
            request_id: waiting.id.clone(),
            opts,
        };
        self.publish_request(&request).await?;
        let answers = waiting
            .collect(others.into(), Instant::now() + REQUESTS_TIMEOUT)
            .await;
        Ok(answers
            .into_iter()
            .flat_map(|a| match a {
                Response::Fetched { sockets, .. } => sockets,
                _ => Vec::new(),
            })
            .collect())
    }
}
