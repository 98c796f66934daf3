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

use super::args::Args;
use super::layout;
use super::socket_user::{grant_of, user_label};
use crate::chat::{ChatError, HistoryQuery, Message, MessageId, RoomName};
use crate::cluster::Link;
use crate::rules::{Rule, Rules};
use crate::store::{RoomRef, Store, StoreError};
use crate::telemetry::names;
use futures_util::StreamExt;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError};
use socketioxide_redis::drivers::Driver;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Messages read from the store at a time.
const PAGE: u64 = 500;
/// Messages the task keeps after delivering them, so that a socket going live a moment after
/// its catch-up is sent the few between from memory.
const RECENT: usize = 1024;
/// How often a task with live sockets looks in the store without being told: a notice lost
/// while Redis was out of reach, or a read that failed, delays a message by at most this much.
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// How long a catch-up waits, all told, for a socket whose buffer is full to read.
const SLOW_READER: Duration = Duration::from_secs(30);

/// Where a socket's replay starts, from its handshake: before everything, after a sequence
/// number of the rule's room, or after a message id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offset {
    Start,
    Seq(i64),
    Id(MessageId),
}

impl Offset {
    /// `auth[field]`: absent, `null`, `0`, `""` or `"0"` is the start; a message id (the one
    /// the client saw last) is after that message; a whole number `n` (a Node app's integer
    /// ids) is after the room's `n`-th. Anything else is a `bad_request`.
    pub fn from_auth(auth: &Value, field: &str) -> Result<Self, ChatError> {
        let invalid = || {
            ChatError::bad_request(format!(
                "auth.{field} must be 0 or the id of the last message received"
            ))
        };
        match auth.get(field) {
            None | Some(Value::Null) => Ok(Self::Start),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(0) => Ok(Self::Start),
                Some(n) if n > 0 => Ok(Self::Seq(n)),
                _ => Err(invalid()),
            },
            Some(Value::String(s)) if s.is_empty() || s == "0" => Ok(Self::Start),
            // An id first: 32 hex digits may well be all decimal ones.
            Some(Value::String(s)) => match (MessageId::parse(s), s.parse::<i64>()) {
                (Ok(id), _) => Ok(Self::Id(id)),
                (Err(_), Ok(n)) if n > 0 => Ok(Self::Seq(n)),
                _ => Err(invalid()),
            },
            Some(_) => Err(invalid()),
        }
    }

    /// The sequence number of `room` after which to replay. An id of another room (the
    /// rule's room was changed, the store replaced) says nothing of this one: everything.
    fn after(self, room: &RoomRef) -> i64 {
        match self {
            Self::Start => 0,
            Self::Seq(n) => n,
            Self::Id(id) if id.room_id == room.id => id.seq,
            Self::Id(_) => 0,
        }
    }
}

/// The offsets a socket's handshake gave, one per replaying rule of its namespace.
#[derive(Clone, Debug, Default)]
pub struct Offsets(Vec<(Arc<Rule>, Offset)>);

impl Offsets {
    /// Reads every replaying rule's offset of `namespace` from `auth`.
    pub fn from_auth(rules: &Rules, namespace: &str, auth: &Value) -> Result<Self, ChatError> {
        let mut offsets = Vec::new();
        for rule in rules.of(namespace) {
            if let Some(replay) = &rule.replay {
                offsets.push((rule.clone(), Offset::from_auth(auth, &replay.auth_field)?));
            }
        }
        Ok(Self(offsets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

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
    tasks: mpsc::UnboundedSender<Request>,
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
            let task = FeedTask {
                rule: rule.clone(),
                room_name: replay.room.clone(),
                room: None,
                store: store.clone(),
                cursor: None,
                recent: VecDeque::new(),
                recent_from: 0,
                live: Vec::new(),
                swept_at: 0,
            };
            tokio::spawn(task.run(requests));
            feeds.push(Feed {
                rule: rule.clone(),
                room: replay.room.clone(),
                tasks,
            });
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
                // Lost, the other nodes still look in the store every LOOK_EVERY.
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
    pub async fn catch_up<A: Adapter>(
        &self,
        store: &Store,
        socket: SocketRef<A>,
        offsets: Offsets,
    ) {
        for (rule, offset) in offsets.0 {
            let Some(feed) = self.feeds.iter().find(|f| Arc::ptr_eq(&f.rule, &rule)) else {
                continue;
            };
            // A token that does not allow the room reads none of it, replayed or live.
            if !grant_of(&socket).is_ok_and(|grant| grant.allows(feed.room.as_str())) {
                continue;
            }
            match replay(store, &socket, feed, offset).await {
                Ok(after) => {
                    let receiver = Box::new(socket.clone());
                    let _ = feed.tasks.send(Request::Live { receiver, after });
                }
                Err(err) => {
                    // Live delivery without the missed messages would leave a hole the
                    // client cannot see: it reconnects and tries again instead.
                    tracing::warn!(sid = %socket.id, user = %user_label(&socket), error = %err, "could not replay: disconnecting");
                    metrics::counter!(names::REPLAY_FAILURES).increment(1);
                    let _ = socket.clone().disconnect();
                    return;
                }
            }
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

/// Sends `socket` the room's messages after `offset`, page by page; returns the sequence
/// number it caught up to.
async fn replay<A: Adapter>(
    store: &Store,
    socket: &SocketRef<A>,
    feed: &Feed,
    offset: Offset,
) -> Result<i64, ReplayError> {
    let Some(room) = store.room(&feed.room).await? else {
        return Ok(0);
    };
    let mut after = offset.after(&room);
    let event = feed.rule.emit.as_deref().unwrap_or(&feed.rule.on);
    let mut patience = SLOW_READER;
    loop {
        let page = store.history(&room, page_after(&room, after)).await?;
        for message in &page.messages {
            if let Some(args) = layout::rebuilt(&feed.rule.layout, message) {
                loop {
                    match socket.send(event, &args) {
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

/// One replaying rule's deliveries on this node.
struct FeedTask {
    rule: Arc<Rule>,
    room_name: RoomName,
    room: Option<RoomRef>,
    store: Store,
    /// The last sequence number delivered live; `None` until first read.
    cursor: Option<i64>,
    /// The messages delivered last, with their sequence numbers, oldest first: every message
    /// stored after `recent_from`, up to the cursor.
    recent: VecDeque<(i64, Args)>,
    recent_from: i64,
    live: Vec<Box<dyn Receiver>>,
    /// How many were live after the last sweep of those gone.
    swept_at: usize,
}

impl FeedTask {
    async fn run(mut self, mut requests: mpsc::UnboundedReceiver<Request>) {
        let mut look = tokio::time::interval(LOOK_EVERY);
        look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let first = tokio::select! {
                request = requests.recv() => match request {
                    Some(request) => Some(request),
                    None => return,
                },
                _ = look.tick() => None,
            };
            let mut joining = Vec::new();
            for request in first
                .into_iter()
                .chain(std::iter::from_fn(|| requests.try_recv().ok()))
            {
                if let Request::Live { receiver, after } = request {
                    joining.push((receiver, after));
                }
            }
            if self.live.is_empty() && joining.is_empty() {
                // Nobody to deliver to: the next look starts from what is stored then.
                self.cursor = None;
                self.recent.clear();
                continue;
            }
            if let Err(err) = self.deliver_new().await {
                tracing::warn!(error = %err, room = %self.room_name, "could not read the feed's new messages; looking again in a moment");
                // The sockets waiting to go live cannot be told what lies between: they
                // reconnect and catch up again.
                for (receiver, _) in joining {
                    receiver.cut();
                }
                continue;
            }
            for (receiver, after) in joining {
                self.go_live(receiver, after).await;
            }
        }
    }

    /// Reads what was stored after the cursor and delivers it to the live sockets.
    async fn deliver_new(&mut self) -> Result<(), StoreError> {
        let Some(room) = self.room().await? else {
            self.cursor = Some(0);
            return Ok(());
        };
        let Some(mut cursor) = self.cursor else {
            // The first look: what is stored already is the past, replayed by catch-ups.
            let last = self.store.history(&room, latest()).await?;
            let cursor = last.messages.last().and_then(seq_of).unwrap_or(0);
            self.cursor = Some(cursor);
            self.recent_from = cursor;
            return Ok(());
        };
        let event = self.event().to_owned();
        loop {
            let page = self.store.history(&room, page_after(&room, cursor)).await?;
            for message in &page.messages {
                let Some(seq) = seq_of(message) else { continue };
                if let Some(args) = layout::rebuilt(&self.rule.layout, message) {
                    self.live.retain(|r| match r.send(&event, &args) {
                        Sent::Yes => true,
                        Sent::Gone => false,
                        Sent::Full => {
                            tracing::warn!(socket = %r.label(), "socket buffer full: disconnecting a client that does not read; it catches up when it comes back");
                            metrics::counter!(names::SLOW_CLIENT_DISCONNECTS).increment(1);
                            r.cut();
                            false
                        }
                    });
                    self.remember(seq, args);
                }
                cursor = seq;
            }
            self.cursor = Some(cursor);
            if !page.has_more {
                return Ok(());
            }
        }
    }

    /// Sends a socket that caught up to `after` what was delivered since, and counts it live.
    async fn go_live(&mut self, receiver: Box<dyn Receiver>, after: i64) {
        let cursor = self.cursor.unwrap_or(0);
        let event = self.event().to_owned();
        let between: Vec<Args> = if after >= self.recent_from {
            self.recent
                .iter()
                .filter(|(seq, _)| *seq > after)
                .map(|(_, args)| args.clone())
                .collect()
        } else {
            match self.read_between(after, cursor).await {
                Ok(between) => between,
                Err(err) => {
                    tracing::warn!(socket = %receiver.label(), error = %err, "could not read what a socket missed: disconnecting it");
                    receiver.cut();
                    return;
                }
            }
        };
        for args in &between {
            match receiver.send(&event, args) {
                Sent::Yes => {}
                Sent::Gone => return,
                Sent::Full => {
                    receiver.cut();
                    return;
                }
            }
        }
        if !receiver.connected() {
            return;
        }
        self.live.push(receiver);
        // Sockets that went away since the last delivery, swept once the list has doubled
        // since the last sweep: a storm of connects costs O(1) each.
        if self.live.len() >= self.swept_at.saturating_mul(2).max(64) {
            self.live.retain(|r| r.connected());
            self.swept_at = self.live.len();
        }
    }

    /// The rebuilt messages stored after `after` up to `cursor`.
    async fn read_between(&mut self, mut after: i64, cursor: i64) -> Result<Vec<Args>, StoreError> {
        let Some(room) = self.room().await? else {
            return Ok(Vec::new());
        };
        let mut between = Vec::new();
        while after < cursor {
            let page = self.store.history(&room, page_after(&room, after)).await?;
            for message in &page.messages {
                let Some(seq) = seq_of(message) else { continue };
                if seq > cursor {
                    return Ok(between);
                }
                between.extend(layout::rebuilt(&self.rule.layout, message));
                after = seq;
            }
            if !page.has_more {
                break;
            }
        }
        Ok(between)
    }

    fn remember(&mut self, seq: i64, args: Args) {
        self.recent.push_back((seq, args));
        while self.recent.len() > RECENT {
            if let Some((dropped, _)) = self.recent.pop_front() {
                self.recent_from = dropped;
            }
        }
    }

    async fn room(&mut self) -> Result<Option<RoomRef>, StoreError> {
        if self.room.is_none() {
            self.room = self.store.room(&self.room_name).await?;
        }
        Ok(self.room.clone())
    }

    fn event(&self) -> &str {
        self.rule.emit.as_deref().unwrap_or(&self.rule.on)
    }
}

/// The room's last message.
fn latest() -> HistoryQuery {
    HistoryQuery {
        before: None,
        after: None,
        limit: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ErrorCode;
    use serde_json::json;

    #[test]
    fn offsets_start_at_zero_and_continue_after_an_id_or_a_number() {
        let at = |auth: Value| Offset::from_auth(&auth, "serverOffset").map_err(|e| e.code);
        assert_eq!(at(json!({})), Ok(Offset::Start));
        assert_eq!(at(json!({ "serverOffset": 0 })), Ok(Offset::Start));
        assert_eq!(at(json!({ "serverOffset": null })), Ok(Offset::Start));
        assert_eq!(at(json!({ "serverOffset": "0" })), Ok(Offset::Start));
        assert_eq!(at(json!({ "serverOffset": "" })), Ok(Offset::Start));
        assert_eq!(at(json!({ "serverOffset": 42 })), Ok(Offset::Seq(42)));
        assert_eq!(at(json!({ "serverOffset": "42" })), Ok(Offset::Seq(42)));
        assert_eq!(
            at(json!({ "serverOffset": "0000000000000003000000000000002a" })),
            Ok(Offset::Id(MessageId::new(3, 42)))
        );
        assert_eq!(
            at(json!({ "serverOffset": "00000000000000030000000000000042" })),
            Ok(Offset::Id(MessageId::new(3, 0x42)))
        );
        for bad in [json!(-1), json!(1.5), json!("x"), json!(true), json!([1])] {
            assert_eq!(
                at(json!({ "serverOffset": bad })),
                Err(ErrorCode::BadRequest),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_id_of_another_room_replays_everything() {
        let room = RoomRef {
            id: 3,
            name: "tutorial".to_owned(),
        };
        assert_eq!(Offset::Id(MessageId::new(3, 42)).after(&room), 42);
        assert_eq!(Offset::Id(MessageId::new(4, 42)).after(&room), 0);
        assert_eq!(Offset::Seq(7).after(&room), 7);
        assert_eq!(Offset::Start.after(&room), 0);
    }
}
