//! What a node does with the other nodes' messages on its namespace's channels: broadcasts
//! delivered to its sockets, requests carried out and answered, answers handed to the request
//! that waits for them. A message that is not Node's is logged and dropped, never a panic;
//! a node's own broadcasts and requests, which Redis hands back, are skipped by `uid`.

use super::adapter::NodeAdapter;
use super::envelope::{Envelope, NodePacket, Opts};
use super::request::{FetchedSocket, Incoming, Request, Response, Target};
use futures_util::StreamExt;
use rmpv::Value;
use socketioxide_core::Sid;
use socketioxide_core::adapter::{BroadcastOptions, Room};
use socketioxide_redis::drivers::{ChanItem, Driver};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The longest this node's sockets are asked to ack for another node's broadcast.
const LONGEST_ACK_WAIT: Duration = Duration::from_secs(600);

impl NodeAdapter {
    /// Reads the namespace's messages, in the order Redis delivered them, until the link
    /// stops delivering (the adapter closed).
    pub(super) async fn listen(self: Arc<Self>, mut messages: mpsc::Receiver<ChanItem>) {
        while let Some((chan, payload)) = messages.recv().await {
            self.on_message(&chan, &payload);
        }
    }

    fn on_message(&self, chan: &str, payload: &[u8]) {
        let outcome = if self.channels.is_response(chan) {
            Response::decode(payload).map(|r| {
                self.pending.answer(r);
            })
        } else if chan == self.channels.request {
            Incoming::decode(payload).map(|r| self.on_request(r))
        } else if self.channels.is_broadcast(chan) {
            Envelope::decode(payload).map(|e| self.on_broadcast(e))
        } else {
            Ok(())
        };
        if let Err(err) = outcome {
            tracing::debug!(chan, error = %err, "a message from another node could not be read");
        }
    }

    fn on_broadcast(&self, envelope: Envelope) {
        if envelope.uid == self.uid || envelope.packet.nsp != self.local.path().as_str() {
            return;
        }
        let opts = envelope.opts.to_broadcast_options();
        if let Err(errs) = self.local.broadcast(envelope.packet.to_packet(), opts) {
            tracing::debug!(
                ?errs,
                "a broadcast from another node did not reach every socket"
            );
        }
    }

    fn on_request(&self, Incoming { uid, request }: Incoming) {
        if uid.as_deref() == Some(self.uid.as_str()) {
            return;
        }
        match request {
            Request::Sockets { request_id, rooms } => {
                let opts = Opts {
                    rooms,
                    ..Opts::default()
                }
                .to_broadcast_options();
                let sockets = self
                    .local
                    .sockets(opts)
                    .iter()
                    .map(Sid::to_string)
                    .collect();
                self.respond(Response::Sockets {
                    request_id,
                    sockets,
                });
            }
            Request::AllRooms { request_id } => {
                let opts = Opts::default().to_broadcast_options();
                let rooms = self
                    .local
                    .rooms(opts)
                    .into_iter()
                    .map(|r| r.to_string())
                    .collect();
                self.respond(Response::Rooms { request_id, rooms });
            }
            Request::Join { target, rooms } => self.on_move(target, rooms, true),
            Request::Leave { target, rooms } => self.on_move(target, rooms, false),
            Request::Disconnect { target, .. } => {
                let Some((opts, request_id)) = self.targeted(target) else {
                    return;
                };
                if let Err(errs) = self.local.disconnect_socket(opts) {
                    tracing::debug!(?errs, "disconnecting sockets for another node");
                }
                self.done(request_id);
            }
            Request::Fetch { request_id, opts } => {
                let sockets = self.describe(&opts);
                self.respond(Response::Fetched {
                    request_id,
                    sockets,
                });
            }
            Request::ServerSideEmit { data, .. } => {
                // chatoxide has no server-side event handlers: like a Node server without a
                // listener for the event, it neither acts nor answers.
                let event = json_event(&data);
                tracing::debug!(
                    event,
                    "a server-side emit from another node (no handler here)"
                );
            }
            Request::Broadcast {
                request_id,
                packet,
                opts,
            } => {
                self.on_broadcast_with_ack(request_id, packet, opts);
            }
        }
    }

    fn on_move(&self, target: Target, rooms: Vec<String>, join: bool) {
        let Some((opts, request_id)) = self.targeted(target) else {
            return;
        };
        let rooms: Vec<Room> = rooms.into_iter().map(Room::Owned).collect();
        if join {
            self.local.add_sockets(opts, rooms);
        } else {
            self.local.del_sockets(opts, rooms);
        }
        self.done(request_id);
    }

    /// The local selection of a request's target; for one socket by id, only when it is here
    /// (the node that holds it answers).
    fn targeted(&self, target: Target) -> Option<(BroadcastOptions, Option<String>)> {
        match target {
            Target::Select(opts) => Some((opts.to_broadcast_options(), None)),
            Target::Socket { request_id, sid } => {
                let opts = Opts {
                    rooms: vec![sid],
                    ..Opts::default()
                }
                .to_broadcast_options();
                (!self.local.sockets(opts.clone()).is_empty()).then_some((opts, Some(request_id)))
            }
        }
    }

    fn done(&self, request_id: Option<String>) {
        if let Some(request_id) = request_id {
            self.respond(Response::Done { request_id });
        }
    }

    /// This node's sockets as a fetch answers them: their handshakes as Node's (src/handshakes.rs),
    /// and chatoxide's identity of each as its `data`; Node's fields with empty values for a
    /// socket whose handshake is not kept.
    fn describe(&self, opts: &Opts) -> Vec<FetchedSocket> {
        let sids = self.local.sockets(opts.to_broadcast_options());
        sids.into_iter()
            .map(|sid| {
                let id = sid.to_string();
                let described = self.handshakes.of(&id);
                let (handshake, data) = match described.and_then(|d| {
                    Some((
                        rmpv::ext::to_value(d.handshake).ok()?,
                        rmpv::ext::to_value(d.data).ok()?,
                    ))
                }) {
                    Some(found) => found,
                    None => (empty_handshake(), Value::Map(Vec::new())),
                };
                FetchedSocket {
                    id,
                    handshake,
                    rooms: self
                        .local
                        .socket_rooms(sid)
                        .into_iter()
                        .map(|r| r.to_string())
                        .collect(),
                    data,
                }
            })
            .collect()
    }

    /// Asks this node's sockets for acks, tells the asking node how many were asked, then
    /// passes each ack on as it comes.
    fn on_broadcast_with_ack(&self, request_id: String, packet: NodePacket, opts: Opts) {
        if packet.nsp != self.local.path().as_str() {
            return;
        }
        // A peer's timeout is its word: bounded, so that no number can overflow a deadline.
        let timeout =
            (opts.flags.timeout).map(|ms| Duration::from_millis(ms).min(LONGEST_ACK_WAIT));
        let (acks, count) =
            self.local
                .broadcast_with_ack(packet.to_packet(), opts.to_broadcast_options(), timeout);
        let (link, chan) = (self.link.clone(), self.channels.response.clone());
        tokio::spawn(async move {
            let count = Response::ClientCount {
                request_id: request_id.clone(),
                client_count: count.into(),
            };
            if link.publish(chan.clone(), count.encode()).await.is_err() {
                return;
            }
            let mut acks = std::pin::pin!(acks);
            while let Some((_, ack)) = acks.next().await {
                let Ok(value) = ack else { continue };
                let packet = first_argument(value);
                let ack = Response::Ack {
                    request_id: request_id.clone(),
                    packet,
                };
                if let Err(err) = link.publish(chan.clone(), ack.encode()).await {
                    tracing::debug!(error = %err, "an ack for another node was not passed on");
                }
            }
        });
    }

    fn respond(&self, response: Response) {
        let (link, chan) = (self.link.clone(), self.channels.response.clone());
        tokio::spawn(async move {
            if let Err(err) = link.publish(chan, response.encode()).await {
                tracing::debug!(error = %err, "an answer to another node was not sent");
            }
        });
    }
}

/// The first argument of a client's ack, as Node passes it on (`None`: there was none).
fn first_argument(value: socketioxide_core::Value) -> Option<Value> {
    let socketioxide_core::Value::Str(text, bins) = value else {
        return None;
    };
    let args = super::json::reconstruct(text.as_str(), &bins.unwrap_or_default()).ok()?;
    match args {
        Value::Array(items) => items.into_iter().next(),
        other => Some(other),
    }
}

fn json_event(data: &Value) -> String {
    match data {
        Value::Array(items) => items
            .first()
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        _ => String::new(),
    }
}

/// A handshake with Node's fields and nothing in them.
fn empty_handshake() -> Value {
    let empty = || Value::Map(Vec::new());
    Value::Map(vec![
        ("headers".into(), empty()),
        ("time".into(), "".into()),
        ("address".into(), "".into()),
        ("xdomain".into(), false.into()),
        ("secure".into(), false.into()),
        ("issued".into(), 0.into()),
        ("url".into(), "".into()),
        ("query".into(), empty()),
        ("auth".into(), empty()),
    ])
}
