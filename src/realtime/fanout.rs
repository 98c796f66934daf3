//! The Socket.IO server seen from outside a socket handler (the HTTP publish route, shutdown),
//! whatever its adapter.

use super::delivery;
use super::protocol::{MemberCount, event};
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::{SocketIo, TransportType};
use std::future::Future;
use std::pin::Pin;

type Done<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

pub trait Fanout: Send + Sync {
    /// Emits an event to every socket in a room, on every node.
    fn emit_to_room(&self, room: String, event: &'static str, payload: Value) -> Done<'_>;

    /// Tells a large room its member count (`member_count`), on every node.
    fn tell_member_count(&self, room: String, member_count: u64) -> Done<'_>;

    /// Disconnects every socket of this node.
    fn close(&self) -> Done<'_>;

    /// This node's sockets now, by namespace and transport.
    fn census(&self) -> Vec<Census>;
}

/// How many sockets of one namespace use one transport, on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Census {
    pub namespace: String,
    pub transport: &'static str,
    pub sockets: usize,
}

impl<A: Adapter> Fanout for SocketIo<A> {
    fn emit_to_room(&self, room: String, event: &'static str, payload: Value) -> Done<'_> {
        Box::pin(async move {
            delivery::emit(|| self.to(room.clone()), event, &payload).await;
        })
    }

    fn tell_member_count(&self, room: String, member_count: u64) -> Done<'_> {
        Box::pin(async move {
            let payload = MemberCount {
                room: &room,
                member_count,
            };
            // A hint: a client too slow to take it misses it, and learns the count later.
            let to_room = || self.to(room.clone()).volatile();
            delivery::emit(to_room, event::MEMBER_COUNT, &payload).await;
        })
    }

    fn close(&self) -> Done<'_> {
        Box::pin(SocketIo::close(self))
    }

    fn census(&self) -> Vec<Census> {
        let mut census = Vec::new();
        for ns in self.nsps() {
            let namespace = ns.ns_path().to_owned();
            let (mut polling, mut websocket) = (0, 0);
            for socket in ns.sockets() {
                match socket.transport_type() {
                    TransportType::Polling => polling += 1,
                    TransportType::Websocket => websocket += 1,
                }
            }
            for (transport, sockets) in [("polling", polling), ("websocket", websocket)] {
                census.push(Census {
                    namespace: namespace.clone(),
                    transport,
                    sockets,
                });
            }
        }
        census
    }
}
