//! Broadcasting from outside a socket handler (the HTTP publish route), whatever the adapter.

use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use std::future::Future;
use std::pin::Pin;

/// Emits an event to every socket in a room, on every node.
pub trait Fanout: Send + Sync {
    fn emit_to_room(
        &self,
        room: String,
        event: &'static str,
        payload: Value,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

impl<A: Adapter> Fanout for SocketIo<A> {
    fn emit_to_room(
        &self,
        room: String,
        event: &'static str,
        payload: Value,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if let Err(err) = self.to(room).emit(event, &payload).await {
                tracing::warn!(error = %err, event, "broadcast failed");
            }
        })
    }
}
