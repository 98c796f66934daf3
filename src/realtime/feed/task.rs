//! One replaying rule's deliveries on this node: a task that reads what was stored after its
//! cursor and sends it to the live sockets in sequence order, and that lets a socket that caught
//! up go live in the same turn, with what lies between.

use super::offset::Offset;
use super::{Feed, Receiver, Request, Sent, page_after, seq_of};
use crate::chat::HistoryQuery;
use crate::realtime::args::Args;
use crate::realtime::layout;
use crate::store::{RoomRef, StoreError};
use crate::telemetry::names;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::mpsc;

/// Messages the task keeps after delivering them, so that a socket going live a moment after
/// its catch-up is sent the few between from memory.
const RECENT: usize = 1024;
/// How often a task with live sockets looks in the store without being told: a notice lost
/// while Redis was out of reach, or a read that failed, delays a message by at most this much.
const LOOK_EVERY: Duration = Duration::from_secs(2);

/// One replaying rule's deliveries on this node.
pub(super) struct FeedTask {
    feed: Feed,
    room: Option<RoomRef>,
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
    pub(super) fn new(feed: Feed) -> Self {
        Self {
            feed,
            room: None,
            cursor: None,
            recent: VecDeque::new(),
            recent_from: 0,
            live: Vec::new(),
            swept_at: 0,
        }
    }

    pub(super) async fn run(mut self, mut requests: mpsc::UnboundedReceiver<Request>) {
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
                tracing::warn!(error = %err, room = %self.feed.room, "could not read the feed's new messages; looking again in a moment");
                // What lies between cannot be told now: they catch up again, from the store.
                for (receiver, after) in joining {
                    self.catch_up_again(receiver, after);
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
            let last = self.feed.store.history(&room, latest()).await?;
            let cursor = last.messages.last().and_then(seq_of).unwrap_or(0);
            self.cursor = Some(cursor);
            self.recent_from = cursor;
            return Ok(());
        };
        loop {
            let page = self
                .feed
                .store
                .history(&room, page_after(&room, cursor))
                .await?;
            for message in &page.messages {
                let Some(seq) = seq_of(message) else { continue };
                if let Some(args) = layout::rebuilt(&self.feed.rule.layout, message) {
                    self.send_live(&args, cursor);
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

    /// Sends one message to every live socket; one whose buffer is full (it has everything up
    /// to `before`) leaves the live ones to catch up from the store.
    fn send_live(&mut self, args: &Args, before: i64) {
        let mut i = 0;
        while i < self.live.len() {
            match self.live[i].send(self.feed.event(), args) {
                Sent::Yes => i += 1,
                Sent::Gone => {
                    self.live.swap_remove(i);
                }
                Sent::Full => {
                    let receiver = self.live.swap_remove(i);
                    self.catch_up_again(receiver, before);
                }
            }
        }
    }

    /// A socket too slow for live delivery (its buffer is full) catches up from the store, at
    /// its own pace, from `after`, the last message it was sent; then it goes live again. The
    /// store is its buffer: nothing is lost, nothing held in memory for it.
    fn catch_up_again(&self, receiver: Box<dyn Receiver>, after: i64) {
        tracing::debug!(socket = %receiver.label(), after, "socket buffer full: catching up from the store");
        metrics::counter!(names::FEED_CATCH_UPS).increment(1);
        let feed = self.feed.clone();
        tokio::spawn(async move { feed.catch_up(receiver, Offset::Seq(after)).await });
    }

    /// Sends a socket that caught up to `after` what was delivered since, and counts it live.
    async fn go_live(&mut self, receiver: Box<dyn Receiver>, after: i64) {
        let cursor = self.cursor.unwrap_or(0);
        let between: Vec<(i64, Args)> = if after >= self.recent_from {
            self.recent
                .iter()
                .filter(|(seq, _)| *seq > after)
                .cloned()
                .collect()
        } else {
            match self.read_between(after, cursor).await {
                Ok(between) => between,
                Err(err) => {
                    tracing::debug!(socket = %receiver.label(), error = %err, "could not read what a socket missed");
                    self.catch_up_again(receiver, after);
                    return;
                }
            }
        };
        let mut sent = after;
        for (seq, args) in &between {
            match receiver.send(self.feed.event(), args) {
                Sent::Yes => sent = *seq,
                Sent::Gone => return,
                Sent::Full => {
                    self.catch_up_again(receiver, sent);
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

    /// The rebuilt messages stored after `after` up to `cursor`, with their sequence numbers.
    async fn read_between(
        &mut self,
        mut after: i64,
        cursor: i64,
    ) -> Result<Vec<(i64, Args)>, StoreError> {
        let Some(room) = self.room().await? else {
            return Ok(Vec::new());
        };
        let mut between = Vec::new();
        while after < cursor {
            let page = self
                .feed
                .store
                .history(&room, page_after(&room, after))
                .await?;
            for message in &page.messages {
                let Some(seq) = seq_of(message) else { continue };
                if seq > cursor {
                    return Ok(between);
                }
                if let Some(args) = layout::rebuilt(&self.feed.rule.layout, message) {
                    between.push((seq, args));
                }
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
            self.room = self.feed.store.room(&self.feed.room).await?;
        }
        Ok(self.room.clone())
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
