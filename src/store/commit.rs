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
use super::change::Broadcast;
use super::change::{Change, Job};
use super::membership_changes::{
    add_members, mark_read, member_counts, remove_members, within_room_limits,
};
use super::memberships::members_page;
use super::messages::{delete, edit, history_page};
use super::outbox;
use super::sorted::{Outcomes, Sorted};
use super::writer_config::WriterConfig;
use super::{JoinRequest, Joined, Left, Marked, Refusal, RoomRef, Store, StoreError};
use crate::chat::{HistoryQuery, MemberQuery, Message, RoomEvent, User};
use crate::telemetry::names;
use sea_orm::{DatabaseTransaction, DbBackend, DbErr};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Commits a batch and answers every change in it; returns the broadcasts of what changed.
pub(super) async fn commit(
    store: &Store,
    batch: Vec<Job>,
    config: &WriterConfig,
) -> Vec<Broadcast> {
    let live = in_time(batch, config.queue_deadline, Instant::now());
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

/// The changes of `batch` still worth making, in order. A change whose sender stopped waiting
/// was told the outcome is unknown: not making it keeps that true and spares the work. One
/// that waited in the queue longer than `deadline` (as of `now`) is refused as `Overloaded`:
/// nothing was stored.
fn in_time(batch: Vec<Job>, deadline: Duration, now: Instant) -> Vec<Change> {
    let mut live = Vec::with_capacity(batch.len());
    for job in batch {
        if job.change.abandoned() {
            continue;
        }
        if now.saturating_duration_since(job.enqueued) <= deadline {
            live.push(job.change);
        } else {
            job.change.fail(StoreError::Overloaded);
        }
    }
    live
}

/// Whether a batch that failed with `err` before its COMMIT is tried again one change at a
/// time: not when the database is away (each would fail the same way), only for an error that
/// may be one bad change's, and only when there is more than one change to tell apart.
fn one_by_one(err: &StoreError, changes: usize) -> bool {
    matches!(err, StoreError::Internal(_)) && changes > 1
}

async fn commit_sorted(store: &Store, sorted: Sorted) -> Vec<Broadcast> {
    match transact(store, &sorted).await {
        Ok(outcomes) => {
            // Before any answer: a read asked for after the answer is not one begun before it.
            store.flights.commits.one_more();
            sorted.settle(store, outcomes).await
        }
        Err(Failure::Before(err)) => {
            let err = StoreError::from(err);
            if one_by_one(&err, sorted.len()) {
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
    if store.keeps_outbox() {
        store.wrote_outbox();
    }
    Ok(outcomes)
}

/// The room events of a batch's changes, in the order they are broadcast: the messages stored
/// (not a retry's, stored before), the edits made, the deletes that changed something.
fn outbox_events(
    stored: &[Option<Message>],
    edits: &[Result<Message, Refusal>],
    deletes: &[Result<super::Removal, Refusal>],
) -> Result<Vec<RoomEvent>, DbErr> {
    let messages = stored.iter().flatten().map(RoomEvent::stored);
    let edited = edits.iter().flatten().map(RoomEvent::edited);
    let deleted = deletes
        .iter()
        .flatten()
        .filter(|r| r.changed)
        .map(|r| RoomEvent::deleted(&r.room, &r.message_id));
    messages
        .chain(edited)
        .chain(deleted)
        .collect::<Result<_, _>>()
        .map_err(|err| DbErr::Custom(format!("an outbox event: {err}")))
}

/// A failed COMMIT. SQLite runs in this process: its answer is the truth. A PostgreSQL
/// connection that broke during the COMMIT leaves its outcome unknown.
fn at_commit(err: DbErr, backend: DbBackend) -> StoreError {
    match StoreError::from(err) {
        StoreError::Unavailable(_) if backend == DbBackend::Postgres => StoreError::Stalled,
        other => other,
    }
}

/// Applies a batch in its transaction, phase by phase (see the module header).
async fn apply(store: &Store, txn: &DatabaseTransaction, s: &Sorted) -> Result<Outcomes, DbErr> {
    let rooms = store.ensure_rooms(txn, s.room_names()).await?;
    let opened = named(&rooms, s.rooms.iter().map(|p| p.request.as_str()))?;
    let joins = Joins::apply(txn, s, &rooms).await?;
    let stored = append(txn, &s.drafts()).await?;
    let left = remove_members(txn, &s.leavers()).await?;
    let found = mark_read(txn, &s.marks()).await?;
    let mut edits = Vec::with_capacity(s.edits.len());
    for p in &s.edits {
        edits.push(edit(txn, &p.request).await?);
    }
    let mut deletes = Vec::with_capacity(s.deletes.len());
    for p in &s.deletes {
        deletes.push(delete(txn, &p.request).await?);
    }
    if store.keeps_outbox() {
        outbox::record(txn, &outbox_events(&stored, &edits, &deletes)?).await?;
    }
    let heads = Heads::read(txn, s, &joins.rooms).await?;
    Ok(Outcomes {
        rooms: opened,
        joins: joins.outcomes(s, &heads),
        messages: stored,
        leaves: heads.leaves(s, left),
        reads: heads.reads(s, found),
        edits,
        deletes,
        known: rooms.into_values().collect(),
    })
}

/// The rooms called `names`, from the rooms the batch made sure of.
fn named<'a>(
    rooms: &HashMap<String, RoomRef>,
    names: impl Iterator<Item = &'a str>,
) -> Result<Vec<RoomRef>, DbErr> {
    names
        .map(|name| {
            rooms
                .get(name)
                .cloned()
                .ok_or_else(|| DbErr::RecordNotFound(format!("room {name}")))
        })
        .collect()
}

/// The joins phase: which joins stay within their user's rooms, which made a new member, and
/// each `missed` page, read before the batch's messages (those reach the joiner live).
struct Joins {
    rooms: Vec<RoomRef>,
    allowed: Vec<bool>,
    newly: Vec<bool>,
    missed: Vec<Option<Vec<Message>>>,
}

impl Joins {
    async fn apply(
        txn: &DatabaseTransaction,
        s: &Sorted,
        rooms: &HashMap<String, RoomRef>,
    ) -> Result<Self, DbErr> {
        let joined = named(rooms, s.joins.iter().map(|p| p.request.room.as_str()))?;
        let requests: Vec<&JoinRequest> = s.joins.iter().map(|p| &p.request).collect();
        let limits: Vec<(i64, &str, Option<u64>)> = requests
            .iter()
            .zip(&joined)
            .map(|(r, room)| (room.id, r.user.id.as_str(), r.max_rooms))
            .collect();
        let allowed = within_room_limits(txn, &limits).await?;
        let admitted = |i: &usize| allowed[*i];
        let members: Vec<(i64, &User)> = (0..requests.len())
            .filter(admitted)
            .map(|i| (joined[i].id, &requests[i].user))
            .collect();
        let mut added = add_members(txn, &members).await?.into_iter();
        let newly = (0..requests.len())
            .map(|i| admitted(&i) && added.next().unwrap_or(false))
            .collect();
        let mut missed = Vec::with_capacity(requests.len());
        for (i, request) in requests.iter().enumerate() {
            missed.push(match request.since {
                Some(since) if admitted(&i) => {
                    let page = history_page(txn, &joined[i], HistoryQuery::since(since)).await?;
                    Some(page.messages)
                }
                _ => None,
            });
        }
        Ok(Self {
            rooms: joined,
            allowed,
            newly,
            missed,
        })
    }

    /// Each join's answer: refused past the user's rooms, or the join with what it carries.
    fn outcomes(self, s: &Sorted, heads: &Heads) -> Vec<Result<Joined, Refusal>> {
        let Self {
            rooms,
            allowed,
            newly,
            missed,
        } = self;
        s.joins
            .iter()
            .zip(rooms)
            .zip(allowed.into_iter().zip(newly))
            .zip(missed)
            .map(|(((p, room), (allowed, newly)), missed)| {
                if !allowed {
                    return Err(Refusal::TooManyRooms(
                        p.request.max_rooms.unwrap_or_default(),
                    ));
                }
                Ok(Joined {
                    members: heads.first_members(room.id),
                    member_count: heads.count(room.id),
                    newly,
                    room,
                    missed,
                })
            })
            .collect()
    }
}

/// What the answers carry, read last, as of this commit: the member counts of every room whose
/// members or marks changed, and the first members of every joined room (one read per room,
/// shared by the room's joins).
struct Heads {
    counts: HashMap<i64, u64>,
    firsts: HashMap<i64, Arc<[User]>>,
}

impl Heads {
    async fn read(
        txn: &DatabaseTransaction,
        s: &Sorted,
        joined: &[RoomRef],
    ) -> Result<Self, DbErr> {
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
        let mut firsts = HashMap::new();
        for room in joined.iter().map(|r| r.id).collect::<BTreeSet<_>>() {
            let page = members_page(txn, room, &MemberQuery::first()).await?;
            firsts.insert(room, Arc::from(page.members));
        }
        Ok(Self { counts, firsts })
    }

    fn count(&self, room_id: i64) -> u64 {
        self.counts.get(&room_id).copied().unwrap_or_default()
    }

    fn first_members(&self, room_id: i64) -> Arc<[User]> {
        self.firsts
            .get(&room_id)
            .cloned()
            .unwrap_or_else(|| Arc::from([]))
    }

    fn leaves(&self, s: &Sorted, left: Vec<bool>) -> Vec<Option<Left>> {
        s.leaves
            .iter()
            .zip(left)
            .map(|(p, gone)| {
                gone.then(|| Left {
                    room: p.request.room.clone(),
                    member_count: self.count(p.request.room.id),
                })
            })
            .collect()
    }

    fn reads(&self, s: &Sorted, found: Vec<bool>) -> Vec<Option<Marked>> {
        s.reads
            .iter()
            .zip(found)
            .map(|(p, found)| {
                found.then(|| Marked {
                    member_count: self.count(p.request.room.id),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::{answered, job, job_at, label, message, open, room};
    use sea_orm::EntityTrait;
    use tokio::sync::oneshot::error::TryRecvError;

    #[test]
    fn a_change_that_waited_past_the_queue_deadline_is_refused_and_not_made() {
        let lobby = room(1, "lobby");
        let start = Instant::now();
        let (late, mut late_reply) = message(&lobby, "ann", "late", None);
        let (fresh, mut fresh_reply) = message(&lobby, "bob", "fresh", None);
        let batch = vec![
            job_at(late, start),
            job_at(fresh, start + Duration::from_secs(4)),
        ];

        // Five seconds after the first was queued, with a deadline of two.
        let live = in_time(
            batch,
            Duration::from_secs(2),
            start + Duration::from_secs(5),
        );

        assert_eq!(
            live.iter().map(label).collect::<Vec<_>>(),
            ["message lobby bob -"]
        );
        assert!(matches!(
            late_reply.try_recv(),
            Ok(Err(StoreError::Overloaded))
        ));
        assert!(
            matches!(fresh_reply.try_recv(), Err(TryRecvError::Empty)),
            "a change in time is answered by its commit, not before"
        );
    }

    #[test]
    fn a_change_exactly_at_its_deadline_is_still_made() {
        let lobby = room(1, "lobby");
        let start = Instant::now();
        let (change, mut reply) = message(&lobby, "ann", "just in time", None);

        let live = in_time(
            vec![job_at(change, start)],
            Duration::from_secs(2),
            start + Duration::from_secs(2),
        );

        assert_eq!(live.len(), 1);
        assert!(matches!(reply.try_recv(), Err(TryRecvError::Empty)));
    }

    #[test]
    fn a_change_whose_sender_gave_up_is_left_out_and_the_others_keep_their_order() {
        let lobby = room(1, "lobby");
        let start = Instant::now();
        let (first, _first_reply) = message(&lobby, "ann", "one", None);
        let (gone, gone_reply) = message(&lobby, "bob", "two", None);
        let (last, _last_reply) = message(&lobby, "cat", "three", None);
        drop(gone_reply);
        let batch = [first, gone, last].map(|c| job_at(c, start)).into();

        let live = in_time(batch, Duration::from_secs(2), start);

        assert_eq!(
            live.iter().map(label).collect::<Vec<_>>(),
            ["message lobby ann -", "message lobby cat -"]
        );
    }

    #[test]
    fn only_an_error_that_may_be_one_changes_own_splits_a_batch() {
        let internal = || StoreError::from(DbErr::Custom("a bad row".into()));
        let away = StoreError::Unavailable(DbErr::Custom("connection refused".into()));

        assert!(one_by_one(&internal(), 2));
        assert!(
            !one_by_one(&internal(), 1),
            "a single change has nothing to tell apart"
        );
        assert!(
            !one_by_one(&away, 50),
            "the database away fails every change alike"
        );
        assert!(!one_by_one(&StoreError::Overloaded, 50));
    }

    async fn opened(store: &Store, name: &str) -> Result<RoomRef, StoreError> {
        let (change, reply) = open(name);
        commit(store, vec![job(change)], &WriterConfig::default()).await;
        answered(reply).await
    }

    async fn stored_texts(store: &Store) -> Result<Vec<String>, StoreError> {
        let rows = entity::message::Entity::find().all(&store.db).await?;
        let mut texts: Vec<String> = rows.into_iter().filter_map(|m| m.text).collect();
        texts.sort();
        Ok(texts)
    }

    #[tokio::test]
    async fn a_bad_change_fails_alone_the_rest_of_its_batch_is_committed() -> Result<(), StoreError>
    {
        let store = Store::open("sqlite::memory:", None).await?;
        let lobby = opened(&store, "lobby").await?;
        let ghost = room(999, "ghost"); // no such room: its message cannot take a number
        let (good, good_reply) = message(&lobby, "ann", "kept", Some("k1"));
        let (bad, bad_reply) = message(&ghost, "bob", "lost", None);
        let (also_good, also_good_reply) = message(&lobby, "cat", "kept too", None);

        commit(
            &store,
            vec![job(good), job(bad), job(also_good)],
            &WriterConfig::default(),
        )
        .await;

        let good = answered(good_reply).await?;
        assert!(good.created);
        assert_eq!(good.message.text.as_deref(), Some("kept"));
        let bad = answered(bad_reply).await;
        assert!(matches!(bad, Err(StoreError::Internal(_))), "{bad:?}");
        assert!(answered(also_good_reply).await?.created);
        assert_eq!(stored_texts(&store).await?, ["kept", "kept too"]);
        Ok(())
    }

    #[tokio::test]
    async fn a_batch_of_good_changes_is_stored_in_arrival_order() -> Result<(), StoreError> {
        let store = Store::open("sqlite::memory:", None).await?;
        let lobby = opened(&store, "lobby").await?;
        let (first, first_reply) = message(&lobby, "ann", "first", None);
        let (second, second_reply) = message(&lobby, "bob", "second", None);

        commit(
            &store,
            vec![job(first), job(second)],
            &WriterConfig::default(),
        )
        .await;

        let first = answered(first_reply).await?.message;
        let second = answered(second_reply).await?.message;
        assert!(first.id < second.id, "{} then {}", first.id, second.id);
        Ok(())
    }

    #[tokio::test]
    async fn a_change_whose_sender_gave_up_is_not_stored() -> Result<(), StoreError> {
        let store = Store::open("sqlite::memory:", None).await?;
        let lobby = opened(&store, "lobby").await?;
        let (abandoned, reply) = message(&lobby, "ann", "nobody waits", None);
        let (wanted, wanted_reply) = message(&lobby, "bob", "wanted", None);
        drop(reply);

        commit(
            &store,
            vec![job(abandoned), job(wanted)],
            &WriterConfig::default(),
        )
        .await;

        assert!(answered(wanted_reply).await?.created);
        assert_eq!(stored_texts(&store).await?, ["wanted"]);
        Ok(())
    }
}
