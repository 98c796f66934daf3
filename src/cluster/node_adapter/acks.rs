//! Waiting for other nodes' answers: the requests this node has out, and the stream of acks of
//! a broadcast that asked for them.
//!
//! A request is pending from the moment it is registered (before it is published, so that no
//! answer can come first) until its [`Waiting`] is dropped; answers to a request that is no
//! longer pending are ignored, as Node ignores them. A broadcast with acks is complete when
//! every other node has said how many of its clients were asked (`clientCount`) and that many
//! acks have come, or at its timeout, whichever is first, the way Node's `emitWithAck`
//! decides.

use super::json;
use super::request::Response;
use futures_util::stream::{self, BoxStream, FusedStream, Stream, StreamExt};
use socketioxide::adapter::Emitter;
use socketioxide_core::adapter::{AckStreamItem, SocketEmitter};
use socketioxide_core::{Sid, Str, Value as SioValue};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Answers that may wait per pending request before more are dropped.
const ANSWERS_BUFFERED: usize = 1024;

/// The requests this node waits on, by request id.
#[derive(Clone, Default)]
pub struct Pending(Arc<Mutex<HashMap<String, mpsc::Sender<Response>>>>);

impl Pending {
    /// Registers a request under a fresh id.
    pub fn open(&self) -> Waiting {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let (tx, rx) = mpsc::channel(ANSWERS_BUFFERED);
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), tx);
        Waiting {
            id,
            answers: rx,
            pending: self.clone(),
        }
    }

    /// Hands an answer to the request it answers; `false` when nothing waits for it.
    pub fn answer(&self, response: Response) -> bool {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(response.request_id()) {
            Some(tx) => tx.try_send(response).is_ok(),
            None => false,
        }
    }
}

/// One pending request: its id and its answers. Dropping it ends the wait.
pub struct Waiting {
    pub id: String,
    answers: mpsc::Receiver<Response>,
    pending: Pending,
}

impl Waiting {
    /// The next answer before `deadline`.
    pub async fn next(&mut self, deadline: Instant) -> Option<Response> {
        tokio::time::timeout_at(deadline, self.answers.recv())
            .await
            .ok()
            .flatten()
    }

    /// Up to `expected` answers, as many as come before `deadline`.
    pub async fn collect(mut self, expected: usize, deadline: Instant) -> Vec<Response> {
        let mut answers = Vec::with_capacity(expected);
        while answers.len() < expected {
            match self.next(deadline).await {
                Some(answer) => answers.push(answer),
                None => break,
            }
        }
        if answers.len() < expected {
            tracing::debug!(
                got = answers.len(),
                expected,
                "not every node answered a request in time"
            );
        }
        answers
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.pending
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

type Item = AckStreamItem<<Emitter as SocketEmitter>::AckError>;

/// The acks of one broadcast: this node's sockets', then other nodes' as they come.
pub struct AckStream {
    inner: BoxStream<'static, Item>,
    done: bool,
}

impl AckStream {
    /// This node's acks only.
    pub fn local(local: <Emitter as SocketEmitter>::AckStream) -> Self {
        Self {
            inner: local.boxed(),
            done: false,
        }
    }

    /// This node's acks and those other nodes send for `waiting`, until `servers` nodes have
    /// told their client counts and every client answered, or `deadline`.
    pub fn cluster(
        local: <Emitter as SocketEmitter>::AckStream,
        waiting: Waiting,
        servers: u16,
        deadline: Instant,
    ) -> Self {
        let remote = Remote {
            waiting,
            servers_left: servers,
            clients: 0,
            acks: 0,
            deadline,
        };
        let remote = stream::unfold(remote, Remote::next).boxed();
        Self {
            inner: stream::select(local, remote).boxed(),
            done: false,
        }
    }
}

impl Stream for AckStream {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let next = self.inner.poll_next_unpin(cx);
        if matches!(next, Poll::Ready(None)) {
            self.done = true;
        }
        next
    }
}

impl FusedStream for AckStream {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

/// Where the other nodes' side of a broadcast with acks stands.
struct Remote {
    waiting: Waiting,
    servers_left: u16,
    clients: u64,
    acks: u64,
    deadline: Instant,
}

impl Remote {
    async fn next(mut self) -> Option<(Item, Self)> {
        loop {
            if self.servers_left == 0 && self.acks >= self.clients {
                return None;
            }
            match self.waiting.next(self.deadline).await? {
                Response::ClientCount { client_count, .. } => {
                    self.servers_left = self.servers_left.saturating_sub(1);
                    self.clients += client_count;
                }
                Response::Ack { packet, .. } => {
                    self.acks += 1;
                    return Some(((Sid::ZERO, Ok(ack_value(packet))), self));
                }
                _ => {}
            }
        }
    }
}

/// An ack from a Node node as socketioxide holds a client's ack: the JSON text of its
/// arguments. Node passes on the first argument only (`undefined` when there was none).
fn ack_value(packet: Option<rmpv::Value>) -> SioValue {
    let args = rmpv::Value::Array(packet.into_iter().collect());
    let (text, bins) = json::deconstruct(&args);
    SioValue::Str(Str::from(text), (!bins.is_empty()).then_some(bins))
}
