//! Changes waiting for the writer: what to do, what to broadcast once it is done, and whom to
//! answer; and which two changes must not share a batch.

use super::{
    Appended, DeleteRequest, Draft, EditRequest, JoinRequest, Joined, LeaveRequest, Left, Marked,
    ReadMark, Refusal, Removal, RoomRef, StoreError,
};
use crate::chat::{Message, RoomName};
use std::pin::Pin;
use std::time::Instant;
use tokio::sync::oneshot;

/// A broadcast, run by the announcer in the order it was handed over.
pub type Broadcast = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Makes the broadcast of a committed change from its outcome (`None`: nothing to tell). It is
/// called after the commit and before the sender's answer; the broadcast it returns runs in
/// commit order.
pub type Announce<T> = Box<dyn FnOnce(&T) -> Option<Broadcast> + Send + Sync>;

/// Where a change's outcome goes: its sender, once.
pub(super) struct Answer<T>(pub(super) Option<oneshot::Sender<Result<T, StoreError>>>);

impl<T> Answer<T> {
    /// Whether nobody waits for the answer any more: the sender gave up (and was told the
    /// outcome is unknown).
    pub(super) fn abandoned(&self) -> bool {
        self.0.as_ref().is_none_or(oneshot::Sender::is_closed)
    }

    pub(super) fn send(mut self, result: Result<T, StoreError>) {
        if let Some(reply) = self.0.take() {
            let _ = reply.send(result);
        }
    }
}

impl<T> Drop for Answer<T> {
    /// A change dropped unanswered (a bug or a panic in the writer) may or may not have been
    /// made: its sender is told so, never left waiting.
    fn drop(&mut self) {
        if let Some(reply) = self.0.take() {
            let _ = reply.send(Err(StoreError::Stalled));
        }
    }
}

/// A change waiting for the writer: what to do, what to broadcast once done, whom to answer.
pub(super) struct Pending<R, T> {
    pub request: R,
    pub announce: Option<Announce<T>>,
    pub answer: Answer<T>,
}

impl<R, T> Pending<R, T> {
    /// Answers the sender; returns the broadcast of a change that was made. `announce` runs
    /// before the answer is sent: what it does at once is done when the sender hears back.
    pub(super) fn settle(mut self, outcome: T) -> Option<Broadcast> {
        let broadcast = self.announce.take().and_then(|announce| announce(&outcome));
        self.answer.send(Ok(outcome));
        broadcast
    }

    pub(super) fn fail(self, err: StoreError) {
        self.answer.send(Err(err));
    }
}

/// Every kind of change the writer makes.
pub(super) enum Change {
    Room(Pending<RoomName, RoomRef>),
    Join(Pending<JoinRequest, Result<Joined, Refusal>>),
    Message(Pending<Draft, Appended>),
    Leave(Pending<LeaveRequest, Option<Left>>),
    Read(Pending<ReadMark, Option<Marked>>),
    Edit(Pending<EditRequest, Result<Message, Refusal>>),
    Delete(Pending<DeleteRequest, Result<Removal, Refusal>>),
}

/// What two changes of one batch must not share: their order would be lost in it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Turn {
    /// A join or leave of this room by this user.
    Membership(String, String),
    /// An edit or delete of this message.
    Message(i64, i64),
}

impl Change {
    pub(super) fn turn(&self) -> Option<Turn> {
        match self {
            Self::Join(p) => Some(Turn::Membership(
                p.request.room.as_str().to_owned(),
                p.request.user.id.clone(),
            )),
            Self::Leave(p) => Some(Turn::Membership(
                p.request.room.name.clone(),
                p.request.user_id.clone(),
            )),
            Self::Edit(p) => Some(Turn::Message(p.request.id.room_id, p.request.id.seq)),
            Self::Delete(p) => Some(Turn::Message(p.request.id.room_id, p.request.id.seq)),
            Self::Room(_) | Self::Message(_) | Self::Read(_) => None,
        }
    }

    /// Whether the sender gave up waiting: making the change now would tell no one.
    pub(super) fn abandoned(&self) -> bool {
        match self {
            Self::Room(p) => p.answer.abandoned(),
            Self::Join(p) => p.answer.abandoned(),
            Self::Message(p) => p.answer.abandoned(),
            Self::Leave(p) => p.answer.abandoned(),
            Self::Read(p) => p.answer.abandoned(),
            Self::Edit(p) => p.answer.abandoned(),
            Self::Delete(p) => p.answer.abandoned(),
        }
    }

    pub(super) fn fail(self, err: StoreError) {
        match self {
            Self::Room(p) => p.fail(err),
            Self::Join(p) => p.fail(err),
            Self::Message(p) => p.fail(err),
            Self::Leave(p) => p.fail(err),
            Self::Read(p) => p.fail(err),
            Self::Edit(p) => p.fail(err),
            Self::Delete(p) => p.fail(err),
        }
    }
}

pub(super) struct Job {
    pub change: Change,
    pub enqueued: Instant,
}
