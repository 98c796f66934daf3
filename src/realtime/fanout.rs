//! The Socket.IO server seen from outside a socket handler (the HTTP publish route, shutdown),
//! whatever its adapter.

use super::delivery;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use std::future::Future;
use std::pin::Pin;

type Done<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

pub trait Fanout: Send + Sync {
    /// Emits an event to every socket in a room, on every node.
    fn emit_to_room(&self, room: String, event: &'static str, payload: Value) -> Done<'_>;

    /// Disconnects every socket of this node.
    fn close(&self) -> Done<'_>;
}

impl<A: Adapter> Fanout for SocketIo<A> {
    fn emit_to_room(&self, room: String, event: &'static str, payload: Value) -> Done<'_> {
        Box::pin(async move {
            delivery::emit(|| self.to(room.clone()), event, &payload).await;
        })
    }

    fn close(&self) -> Done<'_> {
        Box::pin(SocketIo::close(self))
    }
}
