//! The group-commit writer: one task per process takes every change (messages, joins, leaves,
//! read marks, edits, deletes, new rooms) from one bounded queue and commits them in batches,
//! one transaction per batch (store/commit.rs), then answers each sender and hands the
//! broadcasts of what changed, in commit order, to the announcer.
//!
//! So a burst of N changes costs a few transactions, not N; SQLite never sees two writers from
//! this process, and PostgreSQL one connection. Invariants:
//! - an answer of `Ok` means the change's transaction has committed, and what was decided in it
//!   (a join's members, a refused edit) is what the answer says;
//! - an error means nothing took effect, except `Stalled`: the outcome is unknown (a commit
//!   that did not answer in time, or whose answer was lost), and a retry finds out;
//! - every queued change gets an answer, also one dropped by a bug (`Stalled`);
//! - a commit is never cancelled half way: a COMMIT that was sent may succeed, and what it
//!   stored must then be announced;
//! - broadcasts run after their commit, in commit order: a `user_joined`, an edit or a delete
//!   never overtakes what was committed before it.

use super::change::{Announce, Answer, Broadcast, Change, Job, Pending};
use super::commit::commit;
use super::writer_config::WriterConfig;
use super::{
    Appended, DeleteRequest, EditRequest, JoinRequest, Joined, LeaveRequest, Left, Marked,
    ReadMark, Refusal, Removal, RoomRef, Store, StoreError,
};
use crate::chat::{Message, RoomName};
use crate::store::Draft;
use crate::telemetry::names;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Commits whose broadcasts may wait for the announcer before the writer waits for it.
const ANNOUNCE_BACKLOG: usize = 64;

/// The handle commands use to change what is stored. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
    /// How long a sender waits for its answer: the queue deadline plus the commit timeout.
    patience: Duration,
}

/// The running writer; [`WriterTask::finish`] commits what is queued and stops it.
pub struct WriterTask {
    stop: CancellationToken,
    writer: JoinHandle<()>,
    /// Cancelled once the writer has handed over its last announcements.
    stop_announcer: CancellationToken,
    announcer: JoinHandle<()>,
}

impl Writer {
    pub fn start(store: Store, config: WriterConfig) -> (Self, WriterTask) {
        let (queue, jobs) = mpsc::channel(config.queue.max(1));
        // Bounded: a writer that gets this many commits ahead of their broadcasts (a slow
        // adapter) waits for them rather than holding ever more in memory.
        let (announcements, to_announce) = mpsc::channel(ANNOUNCE_BACKLOG);
        let (stop, stop_announcer) = (CancellationToken::new(), CancellationToken::new());
        let writer = tokio::spawn(run(store, jobs, announcements, config, stop.clone()));
        let announcer = tokio::spawn(announce_in_order(to_announce, stop_announcer.clone()));
        let patience = config.queue_deadline + config.commit_timeout;
        (
            Self { queue, patience },
            WriterTask {
                stop,
                writer,
                stop_announcer,
                announcer,
            },
        )
    }

    /// Stores a message; resolves when it is committed (or found stored by an earlier try with
    /// the same `client_id`), or refused. `announce` runs for a message stored by this call.
    pub async fn append(
        &self,
        draft: Draft,
        announce: Option<Announce<Appended>>,
    ) -> Result<Appended, StoreError> {
        self.make(draft, announce, Change::Message).await
    }

    /// Makes `user` a member of the room (created on first use), unless that would take the
    /// user past its rooms.
    pub async fn join(
        &self,
        join: JoinRequest,
        announce: Announce<Result<Joined, Refusal>>,
    ) -> Result<Result<Joined, Refusal>, StoreError> {
        self.make(join, Some(announce), Change::Join).await
    }

    /// Ends a membership; `None` when the user was not a member.
    pub async fn leave(
        &self,
        leave: LeaveRequest,
        announce: Announce<Option<Left>>,
    ) -> Result<Option<Left>, StoreError> {
        self.make(leave, Some(announce), Change::Leave).await
    }

    /// Moves a read mark forward; `None` when the message does not exist.
    pub async fn mark_read(
        &self,
        mark: ReadMark,
        announce: Announce<Option<Marked>>,
    ) -> Result<Option<Marked>, StoreError> {
        self.make(mark, Some(announce), Change::Read).await
    }

    /// Replaces a message's text, if the requester wrote it and it is not deleted.
    pub async fn edit(
        &self,
        edit: EditRequest,
        announce: Announce<Result<Message, Refusal>>,
    ) -> Result<Result<Message, Refusal>, StoreError> {
        self.make(edit, Some(announce), Change::Edit).await
    }

    /// Turns a message into a tombstone, if the requester wrote it.
    pub async fn delete(
        &self,
        delete: DeleteRequest,
        announce: Announce<Result<Removal, Refusal>>,
    ) -> Result<Result<Removal, Refusal>, StoreError> {
        self.make(delete, Some(announce), Change::Delete).await
    }

    /// The room, created if need be (a trusted publisher's first message).
    pub async fn open_room(&self, name: RoomName) -> Result<RoomRef, StoreError> {
        self.make(name, None, Change::Room).await
    }

    /// Queues a change and waits for its answer.
    async fn make<R, T>(
        &self,
        request: R,
        announce: Option<Announce<T>>,
        kind: fn(Pending<R, T>) -> Change,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            change: kind(Pending {
                request,
                announce,
                answer: Answer(Some(reply)),
            }),
            enqueued: Instant::now(),
        };
        if let Err(refused) = self.queue.try_send(job) {
            let (job, err) = match refused {
                mpsc::error::TrySendError::Full(job) => (job, StoreError::Overloaded),
                mpsc::error::TrySendError::Closed(job) => (job, StoreError::Stopped),
            };
            // Answered now, so that the drop of its answer does not say "unknown".
            job.change.fail(err.clone());
            return Err(err);
        }
        self.record_depth();
        match tokio::time::timeout(self.patience, answer).await {
            Ok(answer) => answer.map_err(|_| StoreError::Stopped)?,
            // The commit is still running (a database that stopped answering): its outcome is
            // unknown; if it commits, the change is announced as usual.
            Err(_) => Err(StoreError::Stalled),
        }
    }

    fn record_depth(&self) {
        let depth = self.queue.max_capacity() - self.queue.capacity();
        metrics::gauge!(names::WRITE_QUEUE).set(depth as f64);
    }
}

impl WriterTask {
    /// Refuses new changes, commits the queued ones, broadcasts them, and returns.
    pub async fn finish(self) {
        self.stop.cancel();
        if let Err(err) = self.writer.await {
            tracing::error!(error = %err, "the writer task failed");
        }
        self.stop_announcer.cancel();
        if let Err(err) = self.announcer.await {
            tracing::error!(error = %err, "the announcer task failed");
        }
    }
}

async fn run(
    store: Store,
    mut jobs: mpsc::Receiver<Job>,
    announcements: mpsc::Sender<Vec<Broadcast>>,
    config: WriterConfig,
    stop: CancellationToken,
) {
    // A change that could not share the previous batch: it opens the next.
    let mut held: Option<Job> = None;
    loop {
        let first = match held.take() {
            Some(job) => Some(job),
            None => tokio::select! {
                job = jobs.recv() => job,
                () = stop.cancelled() => {
                    // Refuse new work, then commit everything already accepted.
                    jobs.close();
                    jobs.recv().await
                }
            },
        };
        let Some(first) = first else { break };
        let (batch, next) = gather(first, &mut jobs, &config).await;
        held = next;
        metrics::gauge!(names::WRITE_QUEUE).set((jobs.len() + usize::from(held.is_some())) as f64);
        let announced = commit(&store, batch, &config).await;
        if !announced.is_empty() && announcements.send(announced).await.is_err() {
            tracing::error!("the announcer has stopped; committed changes were not broadcast");
        }
    }
    metrics::gauge!(names::WRITE_QUEUE).set(0.0);
}

/// `first` and whatever else is queued, up to `max_batch`, waiting at most `max_wait` for more;
/// and the change that stopped the gathering because it must come after one of the batch.
async fn gather(
    first: Job,
    jobs: &mut mpsc::Receiver<Job>,
    config: &WriterConfig,
) -> (Vec<Job>, Option<Job>) {
    let mut turns = std::collections::HashSet::new();
    turns.extend(first.change.turn());
    let mut batch = vec![first];
    let deadline = tokio::time::Instant::now() + config.max_wait;
    while batch.len() < config.max_batch {
        let job = match jobs.try_recv() {
            Ok(job) => job,
            Err(mpsc::error::TryRecvError::Empty) if !config.max_wait.is_zero() => {
                match tokio::time::timeout_at(deadline, jobs.recv()).await {
                    Ok(Some(job)) => job,
                    _ => break,
                }
            }
            Err(_) => break,
        };
        if let Some(turn) = job.change.turn()
            && !turns.insert(turn)
        {
            return (batch, Some(job));
        }
        batch.push(job);
    }
    (batch, None)
}

/// Runs broadcasts in the order they were handed over (commit order), apart from the writer,
/// so that a slow broadcast (a remote adapter) never holds up the next commit. Stops, once
/// told to, after running everything already handed over.
async fn announce_in_order(mut batches: mpsc::Receiver<Vec<Broadcast>>, stop: CancellationToken) {
    loop {
        let batch = tokio::select! {
            batch = batches.recv() => batch,
            () = stop.cancelled() => batches.try_recv().ok(),
        };
        let Some(batch) = batch else { break };
        for broadcast in batch {
            broadcast.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::{
        delete, edit, job, join, label, labels, leave, message, open, read, room,
    };

    /// Queues `changes`, gathers a batch from the first as the writer does, and says which went
    /// in the batch, which was held for the next one, and which are still queued.
    async fn gathered(
        changes: Vec<Change>,
        config: WriterConfig,
    ) -> (Vec<String>, Option<String>, Vec<String>) {
        let (queue, mut jobs) = mpsc::channel(64);
        let mut changes = changes.into_iter().map(job);
        let Some(first) = changes.next() else {
            panic!("gathering needs a first change")
        };
        for job in changes {
            assert!(queue.try_send(job).is_ok(), "queued");
        }
        let (batch, held) = gather(first, &mut jobs, &config).await;
        let mut queued = Vec::new();
        while let Ok(job) = jobs.try_recv() {
            queued.push(label(&job.change));
        }
        (labels(&batch), held.map(|j| label(&j.change)), queued)
    }

    fn owned(labels: &[&str]) -> Vec<String> {
        labels.iter().map(|l| (*l).to_owned()).collect()
    }

    #[tokio::test]
    async fn a_join_and_a_leave_of_one_user_and_room_never_share_a_batch() {
        let lobby = room(1, "lobby");
        let changes = vec![
            join("lobby", "ann").0,
            message(&lobby, "bob", "hi", None).0,
            leave(&lobby, "ann").0,
            join("lobby", "cat").0,
        ];

        let (batch, held, queued) = gathered(changes, WriterConfig::default()).await;

        assert_eq!(batch, owned(&["join lobby ann", "message lobby bob -"]));
        assert_eq!(
            held.as_deref(),
            Some("leave lobby ann"),
            "the leave opens the next batch"
        );
        assert_eq!(
            queued,
            owned(&["join lobby cat"]),
            "nothing after the cut is taken"
        );
    }

    #[tokio::test]
    async fn joins_and_leaves_of_other_users_or_other_rooms_share_a_batch() {
        let hall = room(2, "hall");
        let changes = vec![
            join("lobby", "ann").0,
            join("lobby", "bob").0,
            join("hall", "ann").0,
            leave(&hall, "bob").0,
        ];

        let (batch, held, queued) = gathered(changes, WriterConfig::default()).await;

        assert_eq!(
            batch,
            owned(&[
                "join lobby ann",
                "join lobby bob",
                "join hall ann",
                "leave hall bob"
            ])
        );
        assert_eq!(held, None);
        assert!(queued.is_empty());
    }

    #[tokio::test]
    async fn two_changes_of_one_message_never_share_a_batch() {
        let changes = vec![edit(1, 7).0, edit(1, 8).0, edit(2, 7).0, delete(1, 7).0];

        let (batch, held, queued) = gathered(changes, WriterConfig::default()).await;

        assert_eq!(batch, owned(&["edit 1/7", "edit 1/8", "edit 2/7"]));
        assert_eq!(held.as_deref(), Some("delete 1/7"));
        assert!(queued.is_empty());

        let (batch, held, _) =
            gathered(vec![edit(1, 7).0, edit(1, 7).0], WriterConfig::default()).await;
        assert_eq!(batch, owned(&["edit 1/7"]));
        assert_eq!(held.as_deref(), Some("edit 1/7"));
    }

    #[tokio::test]
    async fn messages_reads_and_new_rooms_never_cut_a_batch() {
        let lobby = room(1, "lobby");
        let changes = vec![
            message(&lobby, "ann", "one", Some("k1")).0,
            message(&lobby, "ann", "one again", Some("k1")).0,
            read(&lobby, "ann", 1).0,
            read(&lobby, "ann", 2).0,
            open("lobby").0,
            open("lobby").0,
        ];

        let (batch, held, _) = gathered(changes, WriterConfig::default()).await;

        assert_eq!(batch.len(), 6, "{batch:?}");
        assert_eq!(held, None);
    }

    #[tokio::test]
    async fn a_join_leave_join_of_one_user_takes_three_batches_in_order() {
        let lobby = room(1, "lobby");
        let (queue, mut jobs) = mpsc::channel(8);
        for change in [leave(&lobby, "ann").0, join("lobby", "ann").0] {
            assert!(queue.try_send(job(change)).is_ok());
        }
        let config = WriterConfig::default();

        let (first, held) = gather(job(join("lobby", "ann").0), &mut jobs, &config).await;
        let Some(leave) = held else {
            panic!("the leave is held for the next batch")
        };
        let (second, held) = gather(leave, &mut jobs, &config).await;
        let Some(join_again) = held else {
            panic!("the second join is held for the next batch")
        };
        let (third, held) = gather(join_again, &mut jobs, &config).await;

        assert_eq!(labels(&first), owned(&["join lobby ann"]));
        assert_eq!(labels(&second), owned(&["leave lobby ann"]));
        assert_eq!(labels(&third), owned(&["join lobby ann"]));
        assert!(held.is_none());
    }

    #[tokio::test]
    async fn a_batch_holds_at_most_max_batch_changes_and_leaves_the_rest_queued() {
        let lobby = room(1, "lobby");
        let changes = (0..5)
            .map(|i| message(&lobby, "ann", &format!("m{i}"), Some(&format!("k{i}"))).0)
            .collect();
        let config = WriterConfig {
            max_batch: 3,
            ..WriterConfig::default()
        };

        let (batch, held, queued) = gathered(changes, config).await;

        assert_eq!(
            batch,
            owned(&[
                "message lobby ann k0",
                "message lobby ann k1",
                "message lobby ann k2"
            ])
        );
        assert_eq!(held, None);
        assert_eq!(
            queued,
            owned(&["message lobby ann k3", "message lobby ann k4"])
        );
    }
}
