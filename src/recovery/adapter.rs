//! The adapter layer of recovery: any adapter (the local one, socketioxide-redis's) wrapped so
//! that a recovering namespace's broadcasts are journaled and carry their offset, as Node's
//! session-aware adapters do. Everything else passes through untouched.

use super::{Recovery, Sent};
use crate::telemetry::names;
use socketioxide::BroadcastError;
use socketioxide::adapter::Emitter;
use socketioxide_core::adapter::{
    BroadcastFlags, BroadcastOptions, CoreAdapter, CoreLocalAdapter, DefinedAdapter,
    RemoteSocketData, Room, RoomParam,
};
use socketioxide_core::packet::{Packet, PacketData};
use socketioxide_core::{Str, Value};
use std::sync::Arc;
use std::time::Duration;

/// The state of a [`Recovering`] adapter: the wrapped adapter's, and recovery's.
pub struct RecoveringCtr<S> {
    pub inner: S,
    pub recovery: Recovery,
}

/// Adapter `A`, journaling the broadcasts of a recovering namespace.
pub struct Recovering<A> {
    inner: Arc<A>,
    /// Set on a recovering namespace: its path and recovery.
    journal: Option<(String, Recovery)>,
}

impl<A> Recovering<A> {
    /// `packet` as the journal keeps it, when it is one Node journals: an event (no binary
    /// attachments) that waits for no acknowledgement and is not volatile.
    fn journaled(packet: &Packet, opts: &BroadcastOptions) -> Option<Sent> {
        let PacketData::Event(Value::Str(data, None), None) = &packet.inner else {
            return None;
        };
        if opts.has_flag(BroadcastFlags::Volatile) {
            return None;
        }
        let mut except: Vec<String> = opts.except.iter().map(|r| r.to_string()).collect();
        let mut rooms: Vec<String> = opts.rooms.iter().map(|r| r.to_string()).collect();
        // Every socket is in its id's room: a broadcast that skips its sender skips that
        // room, and one to a single socket goes to it.
        match opts.sid {
            Some(sid) if opts.has_flag(BroadcastFlags::Broadcast) => except.push(sid.to_string()),
            Some(sid) if rooms.is_empty() => rooms.push(sid.to_string()),
            _ if rooms.is_empty() && !opts.has_flag(BroadcastFlags::Broadcast) => return None,
            _ => {}
        }
        Some(Sent {
            rooms,
            except,
            data: data.to_string(),
        })
    }
}

impl<A: CoreAdapter<Emitter>> CoreAdapter<Emitter> for Recovering<A> {
    type Error = A::Error;
    type State = RecoveringCtr<A::State>;
    type AckStream = A::AckStream;
    type InitRes = A::InitRes;

    fn new(state: &Self::State, local: CoreLocalAdapter<Emitter>) -> Self {
        let path = local.path().to_string();
        let journal = state
            .recovery
            .covers(&path)
            .then(|| (path, state.recovery.clone()));
        Self {
            inner: Arc::new(A::new(&state.inner, local)),
            journal,
        }
    }

    fn init(self: Arc<Self>, on_success: impl FnOnce() + Send + 'static) -> Self::InitRes {
        self.inner.clone().init(on_success)
    }

    async fn close(&self) -> Result<(), Self::Error> {
        self.inner.close().await
    }

    async fn server_count(&self) -> Result<u16, Self::Error> {
        self.inner.server_count().await
    }

    async fn broadcast(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> Result<(), BroadcastError> {
        let Some((ns, recovery)) = &self.journal else {
            return self.inner.broadcast(packet, opts).await;
        };
        let Some(sent) = Self::journaled(&packet, &opts) else {
            return self.inner.broadcast(packet, opts).await;
        };
        // Journaled and delivered in one turn: a restore on this node sees a broadcast either
        // in the journal or live, never both, never neither.
        let _turn = recovery.turn(ns).await;
        let data = sent.data.clone();
        let packet = match recovery.record(ns, sent).await {
            Ok(offset) => match super::with_offset(&data, &offset) {
                Some(data) => Packet {
                    ns: packet.ns,
                    inner: PacketData::Event(Value::Str(Str::from(data), None), None),
                },
                None => packet,
            },
            Err(err) => {
                // Sent without an offset: its receivers keep their last one, and a recovery
                // from it misses this broadcast, as the journal does.
                tracing::warn!(ns = %ns, error = %err, "could not journal a broadcast: sent without an offset");
                metrics::counter!(names::RECOVERY_FAILURES, "why" => "journal").increment(1);
                packet
            }
        };
        self.inner.broadcast(packet, opts).await
    }

    async fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        timeout: Option<Duration>,
    ) -> Result<Self::AckStream, Self::Error> {
        self.inner.broadcast_with_ack(packet, opts, timeout).await
    }

    async fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl RoomParam,
    ) -> Result<(), Self::Error> {
        self.inner.add_sockets(opts, rooms).await
    }

    async fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl RoomParam,
    ) -> Result<(), Self::Error> {
        self.inner.del_sockets(opts, rooms).await
    }

    async fn disconnect_socket(&self, opts: BroadcastOptions) -> Result<(), BroadcastError> {
        self.inner.disconnect_socket(opts).await
    }

    async fn rooms(&self, opts: BroadcastOptions) -> Result<Vec<Room>, Self::Error> {
        self.inner.rooms(opts).await
    }

    async fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> Result<Vec<RemoteSocketData>, Self::Error> {
        self.inner.fetch_sockets(opts).await
    }

    fn get_local(&self) -> &CoreLocalAdapter<Emitter> {
        self.inner.get_local()
    }
}

impl<A: DefinedAdapter> DefinedAdapter for Recovering<A> {}
