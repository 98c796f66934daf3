//! The feeds of replaying rules: every socket of a rule's namespace gets the messages stored in
//! the rule's room once each, in store order: first what it missed, read from the store after
//! the offset its handshake gave, then live, with no gap and no duplicate at the seam.
//!
//! A replaying rule's messages are not broadcast by the node that stores them. Each node runs
//! one task per such rule that, told that something was stored in the room (by this node's
//! writer, or by another node through Redis), reads what the store holds after its cursor and
//! sends it to this node's live sockets, in sequence order. A connecting socket first catches
//! up on its own ([`catch_up`]: pages read after its offset); then the task, in one turn, brings
//! its cursor up to date, sends the socket what lies between the two, and counts it live. So a
//! message is sent to a socket either by its catch-up or by the task, never both, and none is
//! skipped; on a cluster every node delivers the room's messages in the order they were stored.

mod offset;
mod task;

pub use offset::{Offset, Offsets};
use task::FeedTask;

use super::args::Args;
use super::layout;
use super::socket_user::{grant_of, user_label};
use crate::chat::{HistoryQuery, Message, MessageId, RoomName};
use crate::cluster::Link;
use crate::rules::{Rule, Rules};
use crate::store::{RoomRef, Store, StoreError};
use crate::telemetry::names;
use futures_util::StreamExt;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError};
use socketioxide_redis::drivers::Driver;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Messages read from the store at a time.
const PAGE: u64 = 500;
/// How long a catch-up waits, all told, for a socket whose buffer is full to read.
const SLOW_READER: Duration = Duration::from_secs(30);

/// A socket a feed sends to.
trait Receiver: Send + Sync {
    fn send(&self, event: &str, args: &Args) -> Sent;
    fn connected(&self) -> bool;
    fn label(&self) -> String;
    /// Ends the session of a socket too slow for live delivery: it catches up when it comes
    /// back, from the last message it received.
    fn cut(&self);
}

enum Sent {
    Yes,
    Full,
    Gone,
}

impl<A: Adapter> Receiver for SocketRef<A> {
    fn send(&self, event: &str, args: &Args) -> Sent {
        match self.emit(event, args) {
            Ok(()) => Sent::Yes,
            Err(SendError::Socket(SocketError::InternalChannelFull)) => Sent::Full,
            Err(_) => Sent::Gone,
        }
    }

    fn connected(&self) -> bool {
        socketioxide::socket::Socket::connected(self)
    }

    fn label(&self) -> String {
        format!("{} ({})", self.id, user_label(self))
    }

    fn cut(&self) {
        let _ = self.clone().disconnect();
    }
}

/// What a feed's task is asked to do.
enum Request {
    /// Something was stored in the room: deliver what is new.
    Stored,
    /// A socket caught up to `after`: send it the rest and count it live.
    Live {
        receiver: Box<dyn Receiver>,
        after: i64,
    },
}

/// One replaying rule's feed on this node.
#[derive(Clone)]
struct Feed {
    rule: Arc<Rule>,
    room: RoomName,
    store: Store,
    tasks: mpsc::UnboundedSender<Request>,
}

impl Feed {
    /// Replays to `receiver` what was stored after `offset`, then hands it to the feed's task
    /// to go live. A receiver that cannot be caught up is cut: live delivery without what it
    /// missed would leave a hole it cannot see, so it reconnects and tries again instead.
    async fn catch_up(&self, receiver: Box<dyn Receiver>, offset: Offset) {
        match replay(&self.store, receiver.as_ref(), self, offset).await {
            Ok(after) => {
                let _ = self.tasks.send(Request::Live { receiver, after });
            }
            Err(err) => {
                tracing::warn!(socket = %receiver.label(), error = %err, "could not replay: disconnecting");
                metrics::counter!(names::REPLAY_FAILURES).increment(1);
                receiver.cut();
            }
        }
    }

    fn event(&self) -> &str {
        self.rule.emit.as_deref().unwrap_or(&self.rule.on)
    }
}

/// Every replaying rule's feed on this node. Cheap to clone.
#[derive(Clone, Default)]
pub struct Feeds {
    feeds: Arc<[Feed]>,
    /// Where the other nodes of a cluster are told of what was stored.
    cluster: Option<(Link, String)>,
}

impl Feeds {
    /// Starts a task for each replaying rule; on a cluster node, listens to the other nodes'
    /// notices on `link`'s channel `<prefix>-feeds#`.
    pub async fn start(
        rules: &Rules,
        store: &Store,
        cluster: Option<(Link, &str)>,
    ) -> anyhow::Result<Self> {
        let mut feeds = Vec::new();
        for rule in rules.iter() {
            let Some(replay) = &rule.replay else { continue };
            let (tasks, requests) = mpsc::unbounded_channel();
            let feed = Feed {
                rule: rule.clone(),
                room: replay.room.clone(),
                store: store.clone(),
                tasks,
            };
            tokio::spawn(FeedTask::new(feed.clone()).run(requests));
            feeds.push(feed);
        }
        let cluster = cluster.map(|(link, prefix)| (link, format!("{prefix}-feeds#")));
        let feeds = Self {
            feeds: feeds.into(),
            cluster,
        };
        if !feeds.feeds.is_empty() {
            let wake = feeds.clone();
            if !store.watch_stored(move |room| wake.stored_in(room)) {
                anyhow::bail!("the store is watched already");
            }
        }
        if let Some((link, channel)) = &feeds.cluster
            && !feeds.feeds.is_empty()
        {
            let mut notices = link
                .subscribe(channel.clone(), 1024)
                .await
                .map_err(|e| anyhow::anyhow!("subscribing to {channel}: {e}"))?;
            let here = feeds.clone();
            tokio::spawn(async move {
                while let Some((_, room)) = notices.next().await {
                    if let Ok(room) = std::str::from_utf8(&room) {
                        here.wake(room);
                    }
                }
            });
        }
        Ok(feeds)
    }

    /// Something was stored in `room` by this node: its feeds deliver it here, and the other
    /// nodes are told to deliver it there.
    pub fn stored_in(&self, room: &str) {
        if !self.wake(room) {
            return;
        }
        if let Some((link, channel)) = &self.cluster {
            let (link, channel, room) = (link.clone(), channel.clone(), room.to_owned());
            tokio::spawn(async move {
                // Lost, the other nodes still find it at their next look in the store.
                if let Err(err) = link.publish(channel, room.into_bytes()).await {
                    tracing::debug!(error = %err, "could not tell the other nodes of a stored message");
                }
            });
        }
    }

    /// Wakes the feeds of `room`; false when it has none.
    fn wake(&self, room: &str) -> bool {
        let mut any = false;
        for feed in self.feeds.iter().filter(|f| f.room.as_str() == room) {
            any = true;
            let _ = feed.tasks.send(Request::Stored);
        }
        any
    }

    /// Sends `socket` what each replaying rule of its namespace stored after the socket's
    /// offset, then delivers to it live. Runs once the socket is connected.
    pub async fn catch_up<A: Adapter>(&self, socket: SocketRef<A>, offsets: Offsets) {
        for (rule, offset) in offsets.0 {
            let Some(feed) = self.feeds.iter().find(|f| Arc::ptr_eq(&f.rule, &rule)) else {
                continue;
            };
            // A token that does not allow the room reads none of it, replayed or live.
            if !grant_of(&socket).is_ok_and(|grant| grant.allows(feed.room.as_str())) {
                continue;
            }
            feed.catch_up(Box::new(socket.clone()), offset).await;
        }
    }
}

/// Why a socket's replay stopped short.
#[derive(Debug, thiserror::Error)]
enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the client did not read its replay for {}s", SLOW_READER.as_secs())]
    SlowReader,
}

/// Sends `receiver` the room's messages after `offset`, page by page; returns the sequence
/// number it caught up to.
async fn replay(
    store: &Store,
    receiver: &dyn Receiver,
    feed: &Feed,
    offset: Offset,
) -> Result<i64, ReplayError> {
    let Some(room) = store.room(&feed.room).await? else {
        return Ok(0);
    };
    let mut after = offset.after(&room);
    let event = feed.event();
    let mut patience = SLOW_READER;
    loop {
        let page = store.history(&room, page_after(&room, after)).await?;
        for message in &page.messages {
            if let Some(args) = layout::rebuilt(&feed.rule.layout, message) {
                loop {
                    match receiver.send(event, &args) {
                        Sent::Yes => break,
                        Sent::Gone => return Ok(after),
                        // A long history fills the socket's buffer: wait for the client to read.
                        Sent::Full if !patience.is_zero() => {
                            let nap = Duration::from_millis(10);
                            tokio::time::sleep(nap).await;
                            patience = patience.saturating_sub(nap);
                        }
                        Sent::Full => return Err(ReplayError::SlowReader),
                    }
                }
            }
            after = seq_of(message).unwrap_or(after);
        }
        metrics::counter!(names::REPLAYED).increment(page.messages.len() as u64);
        if !page.has_more {
            return Ok(after);
        }
    }
}

fn page_after(room: &RoomRef, after: i64) -> HistoryQuery {
    HistoryQuery {
        before: None,
        after: Some(MessageId::new(room.id, after)),
        limit: PAGE,
    }
}

fn seq_of(message: &Message) -> Option<i64> {
    MessageId::parse(&message.id).ok().map(|id| id.seq)
}
