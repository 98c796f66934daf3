//! One batch of the writer's changes, one transaction.
//!
//! The changes of a batch are applied in a fixed order of phases: new rooms, joins, messages,
//! leaves, read marks, edits, deletes; then what the answers carry is read (member counts, a
//! join's first members). Broadcasts are handed over in the same order, so the order in which
//! clients hear of a batch is one in which it could have happened one change at a time: a
//! joiner receives the batch's messages live, and its `missed` (read before them) does not
//! hold them. Two changes whose order matters (a join and a leave of one user and room, two
//! edits of one message) never share a batch (see `gather` in writer.rs).

use super::batch::append;
use super::memberships::{
    add_members, mark_read, member_counts, members_page, remove_members, within_room_limits,
};
use super::messages::{delete, edit, history_page};
use super::writer::{Broadcast, Change, Job, Pending, WriterConfig};
use super::{
    Appended, DeleteRequest, Draft, EditRequest, JoinRequest, Joined, LeaveRequest, Left, Marked,
    ReadMark, Refusal, Removal, RoomRef, Store, StoreError,
};
use crate::chat::{HistoryQuery, MemberQuery, Message, RoomName, User};
use crate::telemetry::names;
use sea_orm::{DatabaseTransaction, DbBackend, DbErr};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

/// Commits a batch and answers every change in it; returns the broadcasts of what changed.
pub(super) async fn commit(
    store: &Store,
    batch: Vec<Job>,
    config: &WriterConfig,
) -> Vec<Broadcast> {
    let mut live = Vec::with_capacity(batch.len());
    for job in batch {
        if job.change.abandoned() {
            // Its sender stopped waiting and was told the outcome is unknown: not making it
            // keeps that true and spares the work.
            continue;
        }
        if job.enqueued.elapsed() <= config.queue_deadline {
            live.push(job.change);
        } else {
            job.change.fail(StoreError::Overloaded);
        }
    }
    if live.is_empty() {
        return Vec::new();
    }
    let sorted = Sorted::new(live);
    metrics::histogram!(names::BATCH_SIZE).record(sorted.len() as f64);
    let started = Instant::now();
    // Never cancelled half way: a COMMIT that was sent may succeed, and what it stored must then
    // be announced. Senders stop waiting at their own deadline instead (`Writer::make`).
    let announced = commit_sorted(store, sorted).await;
    metrics::histogram!(names::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
    announced
}

async fn commit_sorted(store: &Store, sorted: Sorted) -> Vec<Broadcast> {
    match transact(store, &sorted).await {
        Ok(outcomes) => sorted.settle(store, outcomes).await,
        Err(Failure::Before(err)) => {
            let err = StoreError::from(err);
            if matches!(err, StoreError::Internal(_)) && sorted.len() > 1 {
                // Not the database being away: maybe one bad change. Each is made alone, so
                // that it fails alone.
                let mut announced = Vec::new();
                for single in sorted.into_singles() {
                    announced.extend(Box::pin(commit_sorted(store, single)).await);
                }
                return announced;
            }
            sorted.fail(err);
            Vec::new()
        }
        Err(Failure::AtCommit(err)) => {
            sorted.fail(err);
            Vec::new()
        }
    }
}

/// Where a transaction failed: before its COMMIT nothing took effect; at its COMMIT the
/// outcome may be unknown.
enum Failure {
    Before(DbErr),
    AtCommit(StoreError),
}

async fn transact(store: &Store, sorted: &Sorted) -> Result<Outcomes, Failure> {
    let txn = store.begin_write().await.map_err(Failure::Before)?;
    let outcomes = match apply(store, &txn, sorted).await {
        Ok(outcomes) => outcomes,
        Err(err) => {
            // Also rolled back when dropped; said here so that the connection is clean at once.
            let _ = txn.rollback().await;
            return Err(Failure::Before(err));
        }
    };
    let backend = store.backend();
    txn.commit()
        .await
        .map_err(|err| Failure::AtCommit(at_commit(err, backend)))?;
    Ok(outcomes)
}

/// A failed COMMIT. SQLite runs in this process: its answer is the truth. A PostgreSQL
/// connection that broke during the COMMIT leaves its outcome unknown.
fn at_commit(err: DbErr, backend: DbBackend) -> StoreError {
    match StoreError::from(err) {
        StoreError::Unavailable(_) if backend == DbBackend::Postgres => StoreError::Stalled,
        other => other,
    }
}

/// Messages that share an idempotency key: the first is stored, the others get its message.
pub(super) struct Group {
    leader: Pending<Draft, Appended>,
    followers: Vec<Pending<Draft, Appended>>,
}

impl Group {
    fn answer(self, result: Result<Appended, StoreError>) {
        let repeat = result.clone().map(|a| Appended {
            created: false,
            ..a
        });
        for follower in self.followers {
            follower.answer.send(repeat.clone());
        }
        self.leader.answer.send(result);
    }

    /// Answers the group with its newly stored message; returns its broadcast.
    fn stored(self, message: Message) -> Option<Broadcast> {
        let stored = Appended {
            message,
            created: true,
        };
        for follower in self.followers {
            follower.answer.send(Ok(Appended {
                created: false,
                ..stored.clone()
            }));
        }
        self.leader.settle(stored)
    }

    fn len(&self) -> usize {
        1 + self.followers.len()
    }
}

/// A batch's changes by kind, each kind in arrival order.
#[derive(Default)]
struct Sorted {
    rooms: Vec<Pending<RoomName, RoomRef>>,
    joins: Vec<Pending<JoinRequest, Result<Joined, Refusal>>>,
    messages: Vec<Group>,
    leaves: Vec<Pending<LeaveRequest, Option<Left>>>,
    reads: Vec<Pending<ReadMark, Option<Marked>>>,
    edits: Vec<Pending<EditRequest, Result<Message, Refusal>>>,
    deletes: Vec<Pending<DeleteRequest, Result<Removal, Refusal>>>,
}

/// What the transaction decided, in the order of [`Sorted`]'s lists.
struct Outcomes {
    rooms: Vec<RoomRef>,
    joins: Vec<Result<Joined, Refusal>>,
    /// Per message group: its new message, `None` for a key stored before (a retry).
    messages: Vec<Option<Message>>,
    leaves: Vec<Option<Left>>,
    reads: Vec<Option<Marked>>,
    edits: Vec<Result<Message, Refusal>>,
    deletes: Vec<Result<Removal, Refusal>>,
    /// Rooms the batch named, to remember once committed.
    known: Vec<RoomRef>,
}

impl Sorted {
    fn new(changes: Vec<Change>) -> Self {
        let mut sorted = Self::default();
        let mut by_key: HashMap<(String, String), usize> = HashMap::new();
        for change in changes {
            match change {
                Change::Room(p) => sorted.rooms.push(p),
                Change::Join(p) => sorted.joins.push(p),
                Change::Leave(p) => sorted.leaves.push(p),
                Change::Read(p) => sorted.reads.push(p),
                Change::Edit(p) => sorted.edits.push(p),
                Change::Delete(p) => sorted.deletes.push(p),
                Change::Message(p) => {
                    let key = p.request.key().map(|(u, c)| (u.to_owned(), c.to_owned()));
                    match key.as_ref().and_then(|k| by_key.get(k)) {
                        Some(&i) => sorted.messages[i].followers.push(p),
                        None => {
                            if let Some(k) = key {
                                by_key.insert(k, sorted.messages.len());
                            }
                            sorted.messages.push(Group {
                                leader: p,
                                followers: Vec::new(),
                            });
                        }
                    }
                }
            }
        }
        sorted
    }

    fn len(&self) -> usize {
        self.rooms.len()
            + self.joins.len()
            + self.messages.iter().map(Group::len).sum::<usize>()
            + self.leaves.len()
            + self.reads.len()
            + self.edits.len()
            + self.deletes.len()
    }

    fn fail(self, err: StoreError) {
        self.rooms.into_iter().for_each(|p| p.fail(err.clone()));
        self.joins.into_iter().for_each(|p| p.fail(err.clone()));
        self.messages
            .into_iter()
            .for_each(|g| g.answer(Err(err.clone())));
        self.leaves.into_iter().for_each(|p| p.fail(err.clone()));
        self.reads.into_iter().for_each(|p| p.fail(err.clone()));
        self.edits.into_iter().for_each(|p| p.fail(err.clone()));
        self.deletes.into_iter().for_each(|p| p.fail(err.clone()));
    }

    /// One batch per change (a message group counts as one).
    fn into_singles(self) -> Vec<Self> {
        let mut singles = Vec::with_capacity(self.len());
        singles.extend(self.rooms.into_iter().map(|p| Self {
            rooms: vec![p],
            ..Self::default()
        }));
        singles.extend(self.joins.into_iter().map(|p| Self {
            joins: vec![p],
            ..Self::default()
        }));
        singles.extend(self.messages.into_iter().map(|g| Self {
            messages: vec![g],
            ..Self::default()
        }));
        singles.extend(self.leaves.into_iter().map(|p| Self {
            leaves: vec![p],
            ..Self::default()
        }));
        singles.extend(self.reads.into_iter().map(|p| Self {
            reads: vec![p],
            ..Self::default()
        }));
        singles.extend(self.edits.into_iter().map(|p| Self {
            edits: vec![p],
            ..Self::default()
        }));
        singles.extend(self.deletes.into_iter().map(|p| Self {
            deletes: vec![p],
            ..Self::default()
        }));
        singles
    }

    /// Answers every change with what its committed transaction decided; returns the
    /// broadcasts, in phase order.
    async fn settle(self, store: &Store, o: Outcomes) -> Vec<Broadcast> {
        for room in &o.known {
            store.remember(room);
        }
        let mut announced = Vec::new();
        announced.extend(zip_settle(self.rooms, o.rooms));
        announced.extend(zip_settle(self.joins, o.joins));
        let mut retries = Vec::new();
        for (group, stored) in self.messages.into_iter().zip(o.messages) {
            match stored {
                Some(message) => announced.extend(group.stored(message)),
                None => retries.push(group),
            }
        }
        announced.extend(zip_settle(self.leaves, o.leaves));
        announced.extend(zip_settle(self.reads, o.reads));
        announced.extend(zip_settle(self.edits, o.edits));
        announced.extend(zip_settle(self.deletes, o.deletes));
        if !retries.is_empty() {
            answer_retries(store, retries).await;
        }
        announced
    }
}

fn zip_settle<R, T>(pending: Vec<Pending<R, T>>, outcomes: Vec<T>) -> Vec<Broadcast> {
    pending
        .into_iter()
        .zip(outcomes)
        .filter_map(|(p, outcome)| p.settle(outcome))
        .collect()
}

/// Applies a batch in its transaction, phase by phase (see the module header).
async fn apply(store: &Store, txn: &DatabaseTransaction, s: &Sorted) -> Result<Outcomes, DbErr> {
    let names: BTreeSet<&str> = s
        .rooms
        .iter()
        .map(|p| p.request.as_str())
        .chain(s.joins.iter().map(|p| p.request.room.as_str()))
        .collect();
    let rooms = store.ensure_rooms(txn, names).await?;
    let room_of = |name: &str| {
        rooms
            .get(name)
            .cloned()
            .ok_or_else(|| DbErr::RecordNotFound(format!("room {name}")))
    };
    let opened = s
        .rooms
        .iter()
        .map(|p| room_of(p.request.as_str()))
        .collect::<Result<Vec<_>, _>>()?;
    let joined = s
        .joins
        .iter()
        .map(|p| room_of(p.request.room.as_str()))
        .collect::<Result<Vec<_>, _>>()?;
    let limits: Vec<(i64, &str, Option<u64>)> = s
        .joins
        .iter()
        .zip(&joined)
        .map(|(p, room)| (room.id, p.request.user.id.as_str(), p.request.max_rooms))
        .collect();
    let allowed = within_room_limits(txn, &limits).await?;
    let members: Vec<(i64, &User)> = s
        .joins
        .iter()
        .zip(&joined)
        .zip(&allowed)
        .filter(|(_, allowed)| **allowed)
        .map(|((p, room), _)| (room.id, &p.request.user))
        .collect();
    let mut newly = add_members(txn, &members).await?.into_iter();
    let mut missed = Vec::with_capacity(s.joins.len());
    for ((p, room), allowed) in s.joins.iter().zip(&joined).zip(&allowed) {
        missed.push(match p.request.since {
            Some(since) if *allowed => Some(
                history_page(txn, room, HistoryQuery::since(since))
                    .await?
                    .messages,
            ),
            _ => None,
        });
    }
    let drafts: Vec<&Draft> = s.messages.iter().map(|g| &g.leader.request).collect();
    let stored = append(txn, &drafts).await?;
    let leaving: Vec<(i64, &str)> = s
        .leaves
        .iter()
        .map(|p| (p.request.room.id, p.request.user_id.as_str()))
        .collect();
    let left = remove_members(txn, &leaving).await?;
    let marks: Vec<&ReadMark> = s.reads.iter().map(|p| &p.request).collect();
    let found = mark_read(txn, &marks).await?;
    let mut edits = Vec::with_capacity(s.edits.len());
    for p in &s.edits {
        edits.push(edit(txn, &p.request).await?);
    }
    let mut deletes = Vec::with_capacity(s.deletes.len());
    for p in &s.deletes {
        deletes.push(delete(txn, &p.request).await?);
    }
    // What the answers carry, as of this commit.
    let counted: BTreeSet<i64> = joined
        .iter()
        .map(|r| r.id)
        .chain(s.leaves.iter().map(|p| p.request.room.id))
        .chain(s.reads.iter().map(|p| p.request.room.id))
        .collect();
    let counts = if counted.is_empty() {
        HashMap::new()
    } else {
        member_counts(txn, counted).await?
    };
    let count = |room_id: i64| counts.get(&room_id).copied().unwrap_or_default();
    let mut firsts: HashMap<i64, Arc<[User]>> = HashMap::new();
    for room in joined.iter().map(|r| r.id).collect::<BTreeSet<_>>() {
        let page = members_page(txn, room, &MemberQuery::first()).await?;
        firsts.insert(room, page.members.into());
    }
    let joins = s
        .joins
        .iter()
        .zip(joined)
        .zip(allowed)
        .zip(missed)
        .map(|(((p, room), allowed), missed)| {
            if !allowed {
                let max = p.request.max_rooms.unwrap_or_default();
                return Err(Refusal::TooManyRooms(max));
            }
            Ok(Joined {
                members: firsts
                    .get(&room.id)
                    .cloned()
                    .unwrap_or_else(|| Arc::from([])),
                member_count: count(room.id),
                newly: newly.next().unwrap_or(false),
                room,
                missed,
            })
        })
        .collect();
    let leaves = s
        .leaves
        .iter()
        .zip(left)
        .map(|(p, gone)| {
            gone.then(|| Left {
                room: p.request.room.clone(),
                member_count: count(p.request.room.id),
            })
        })
        .collect();
    let reads = s
        .reads
        .iter()
        .zip(found)
        .map(|(p, found)| {
            found.then(|| Marked {
                member_count: count(p.request.room.id),
            })
        })
        .collect();
    Ok(Outcomes {
        rooms: opened,
        joins,
        messages: stored,
        leaves,
        reads,
        edits,
        deletes,
        known: rooms.into_values().collect(),
    })
}

/// Groups whose key was stored before (by an earlier batch or another node).
async fn answer_retries(store: &Store, retries: Vec<Group>) {
    let keys: Vec<(&str, &str)> = retries
        .iter()
        .filter_map(|g| g.leader.request.key())
        .collect();
    match store.by_keys(&keys).await {
        Ok(stored) => {
            for group in retries {
                let key = group
                    .leader
                    .request
                    .key()
                    .map(|(u, c)| (u.to_owned(), c.to_owned()));
                match key.and_then(|k| stored.get(&k).cloned()) {
                    Some(message) => group.answer(Ok(Appended {
                        message,
                        created: false,
                    })),
                    // Stored a moment ago, yet not found: say so rather than guess.
                    None => group.answer(Err(StoreError::Stalled)),
                }
            }
        }
        Err(err) => retries.into_iter().for_each(|g| g.answer(Err(err.clone()))),
    }
}
