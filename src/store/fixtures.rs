//! Changes for the writer's unit tests: real requests, each with the receiver its answer goes
//! to, and a short label per change so that a test can say which changes went where.

use super::change::{Answer, Change, Job, Pending};
use super::{
    Appended, DeleteRequest, Draft, EditRequest, JoinRequest, Joined, LeaveRequest, Left, Marked,
    ReadMark, Refusal, RoomRef, StoreError,
};
use crate::chat::{ClientId, MessageId, MessageText, RoomName, TextLimit, User, UserId, UserName};
use std::time::Instant;
use tokio::sync::oneshot;

/// Where a change's answer arrives.
pub(super) type Reply<T> = oneshot::Receiver<Result<T, StoreError>>;

/// The answer a change got (every change is answered, also one dropped: `Stalled`).
pub(super) async fn answered<T>(reply: Reply<T>) -> Result<T, StoreError> {
    match reply.await {
        Ok(answer) => answer,
        Err(_) => panic!("a change was never answered"),
    }
}

/// The answer a change already got, outside a runtime.
pub(super) fn answered_now<T>(reply: Reply<T>) -> Result<T, StoreError> {
    match reply.blocking_recv() {
        Ok(answer) => answer,
        Err(_) => panic!("a change was never answered"),
    }
}

/// A fixture's literal, parsed: fixtures are valid by construction.
fn valid<T, E: std::fmt::Display>(parsed: Result<T, E>) -> T {
    match parsed {
        Ok(value) => value,
        Err(err) => panic!("an invalid fixture: {err}"),
    }
}

fn pending<R, T>(request: R) -> (Pending<R, T>, Reply<T>) {
    let (reply, answer) = oneshot::channel();
    let pending = Pending {
        request,
        announce: None,
        answer: Answer(Some(reply)),
    };
    (pending, answer)
}

pub(super) fn user(id: &str) -> User {
    User::new(valid(UserId::parse(id)), valid(UserName::parse(id)))
}

pub(super) fn room(id: i64, name: &str) -> RoomRef {
    RoomRef {
        id,
        name: name.to_owned(),
    }
}

pub(super) fn open(name: &str) -> (Change, Reply<RoomRef>) {
    let (p, reply) = pending(valid(RoomName::parse(name)));
    (Change::Room(p), reply)
}

pub(super) fn join(room: &str, user_id: &str) -> (Change, Reply<Result<Joined, Refusal>>) {
    let (p, reply) = pending(JoinRequest {
        room: valid(RoomName::parse(room)),
        user: user(user_id),
        since: None,
        max_rooms: None,
    });
    (Change::Join(p), reply)
}

pub(super) fn leave(room: &RoomRef, user_id: &str) -> (Change, Reply<Option<Left>>) {
    let (p, reply) = pending(LeaveRequest {
        room: room.clone(),
        user_id: user_id.to_owned(),
    });
    (Change::Leave(p), reply)
}

pub(super) fn message(
    room: &RoomRef,
    author: &str,
    text: &str,
    client_id: Option<&str>,
) -> (Change, Reply<Appended>) {
    let (p, reply) = pending(Draft {
        room: room.clone(),
        author: user(author),
        text: valid(MessageText::parse(text, TextLimit::default())),
        client_id: client_id.map(|c| valid(ClientId::parse(c))),
        room_key: None,
    });
    (Change::Message(p), reply)
}

pub(super) fn read(room: &RoomRef, user_id: &str, seq: i64) -> (Change, Reply<Option<Marked>>) {
    let (p, reply) = pending(ReadMark {
        room: room.clone(),
        user_id: user_id.to_owned(),
        message: MessageId::new(room.id, seq),
    });
    (Change::Read(p), reply)
}

pub(super) fn edit(
    room_id: i64,
    seq: i64,
) -> (Change, Reply<Result<crate::chat::Message, Refusal>>) {
    let (p, reply) = pending(EditRequest {
        id: MessageId::new(room_id, seq),
        text: valid(MessageText::parse("edited", TextLimit::default())),
        author: "ann".to_owned(),
    });
    (Change::Edit(p), reply)
}

pub(super) fn delete(room_id: i64, seq: i64) -> (Change, Reply<Result<super::Removal, Refusal>>) {
    let (p, reply) = pending(DeleteRequest {
        id: MessageId::new(room_id, seq),
        author: "ann".to_owned(),
    });
    (Change::Delete(p), reply)
}

/// A job queued at `enqueued`.
pub(super) fn job_at(change: Change, enqueued: Instant) -> Job {
    Job { change, enqueued }
}

/// A job queued now.
pub(super) fn job(change: Change) -> Job {
    job_at(change, Instant::now())
}

/// What a change is, in a few words: `join lobby ann`, `edit 1/7`, `message lobby ann k1`.
pub(super) fn label(change: &Change) -> String {
    match change {
        Change::Room(p) => format!("open {}", p.request.as_str()),
        Change::Join(p) => format!("join {} {}", p.request.room.as_str(), p.request.user.id),
        Change::Leave(p) => format!("leave {} {}", p.request.room.name, p.request.user_id),
        Change::Message(p) => {
            let key = p.request.client_id.as_ref().map_or("-", ClientId::as_str);
            format!(
                "message {} {} {key}",
                p.request.room.name, p.request.author.id
            )
        }
        Change::Read(p) => format!("read {} {}", p.request.room.name, p.request.user_id),
        Change::Edit(p) => format!("edit {}/{}", p.request.id.room_id, p.request.id.seq),
        Change::Delete(p) => format!("delete {}/{}", p.request.id.room_id, p.request.id.seq),
    }
}

/// The labels of `jobs`, in order.
pub(super) fn labels<'a>(jobs: impl IntoIterator<Item = &'a Job>) -> Vec<String> {
    jobs.into_iter().map(|j| label(&j.change)).collect()
}
