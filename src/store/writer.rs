//! The group-commit writer: one task per process takes accepted messages from a bounded queue
//! and stores them in batches, one transaction per batch, then answers each sender and hands the
//! new messages, in commit order, to the announcer that broadcasts them.
//!
//! An answer of `Ok` means the message's transaction has committed. A retry (a
//! `(user, client_id)` already stored) is skipped by the insert and answered with the message
//! stored the first time. Every queued message gets an
//! answer: stored, already stored (a retry), or refused (`Overloaded`, `Stalled`, `Stopped`, or
//! the storage error) with nothing stored, except `Stalled`, whose outcome is unknown and which
//! a retry with the same `client_id` settles.

use super::batch::Draft;
use super::{Appended, Store, StoreError};
use crate::chat::Message;
use crate::telemetry::names;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A broadcast, run by the announcer in the order it was handed over.
pub type Broadcast = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Makes the broadcast of a newly stored message; run after the commit, in commit order.
pub type Announce = Box<dyn FnOnce(Message) -> Broadcast + Send>;

/// How the writer batches and how long a message may wait.
#[derive(Clone, Copy, Debug)]
pub struct WriterConfig {
    /// Most messages in one transaction.
    pub max_batch: usize,
    /// How long to wait for more messages once one is there (0: take what has queued up while
    /// the previous commit ran; tokio's timers are 1 ms coarse).
    pub max_wait: Duration,
    /// Messages that may wait for the writer; past that, sends are refused at once.
    pub queue: usize,
    /// A message that waited longer than this is refused rather than stored late.
    pub queue_deadline: Duration,
    /// A sender whose message is not committed this long after it left the queue is answered
    /// `Stalled` (the commit goes on; a retry with the same `client_id` finds out).
    pub commit_timeout: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_batch: 512,
            max_wait: Duration::ZERO,
            queue: 8192,
            queue_deadline: Duration::from_secs(2),
            commit_timeout: Duration::from_secs(5),
        }
    }
}

struct Job {
    draft: Draft,
    announce: Option<Announce>,
    enqueued: Instant,
    /// Taken when the job is answered.
    reply: Option<oneshot::Sender<Result<Appended, StoreError>>>,
}

impl Job {
    fn answer(mut self, result: Result<Appended, StoreError>) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(result);
        }
    }
}

impl Drop for Job {
    /// A job dropped unanswered (a bug or a panic in the writer) may or may not have been
    /// stored: its sender is told so, never left waiting.
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Err(StoreError::Stalled));
        }
    }
}

/// The handle handlers use to store messages. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
    announcements: mpsc::UnboundedSender<Vec<Broadcast>>,
    /// How long a sender waits for its answer: the queue deadline plus the commit timeout.
    patience: Duration,
}

/// The running writer; [`WriterTask::finish`] stores what is queued and stops it.
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
        let (announcements, to_announce) = mpsc::unbounded_channel();
        let (stop, stop_announcer) = (CancellationToken::new(), CancellationToken::new());
        let writer = tokio::spawn(run(
            store,
            jobs,
            announcements.clone(),
            config,
            stop.clone(),
        ));
        let announcer = tokio::spawn(announce_in_order(to_announce, stop_announcer.clone()));
        let patience = config.queue_deadline + config.commit_timeout;
        (
            Self {
                queue,
                announcements,
                patience,
            },
            WriterTask {
                stop,
                writer,
                stop_announcer,
                announcer,
            },
        )
    }

    /// Queues `draft` and resolves when it is committed, or refused.
    pub async fn append(
        &self,
        draft: Draft,
        announce: Option<Announce>,
    ) -> Result<Appended, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            draft,
            announce,
            enqueued: Instant::now(),
            reply: Some(reply),
        };
        self.queue.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => StoreError::Stopped,
        })?;
        metrics::gauge!(names::WRITE_QUEUE)
            .set((self.queue.max_capacity() - self.queue.capacity()) as f64);
        match tokio::time::timeout(self.patience, answer).await {
            Ok(answer) => answer.map_err(|_| StoreError::Stopped)?,
            // The commit is still running (a database that stopped answering): its outcome is
            // unknown; if it commits, the message is announced as usual.
            Err(_) => Err(StoreError::Stalled),
        }
    }
}

impl Writer {
    /// Runs `broadcast` after every announcement handed over before it: an edit or a delete
    /// can never reach a client before the message it changes.
    pub fn broadcast_in_order(&self, broadcast: Broadcast) {
        if let Err(refused) = self.announcements.send(vec![broadcast]) {
            // The announcer has stopped (shutdown): broadcast on the spot.
            for broadcast in refused.0 {
                tokio::spawn(broadcast);
            }
        }
    }
}

impl WriterTask {
    /// Refuses new messages, commits the queued ones, broadcasts them, and returns.
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
    announcements: mpsc::UnboundedSender<Vec<Broadcast>>,
    config: WriterConfig,
    stop: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            job = jobs.recv() => job,
            () = stop.cancelled() => {
                // Refuse new work, then store everything already accepted.
                jobs.close();
                jobs.recv().await
            }
        };
        let Some(first) = first else { break };
        let batch = gather(first, &mut jobs, &config).await;
        let announced: Vec<Broadcast> = commit(&store, batch, &config)
            .await
            .into_iter()
            .map(|(announce, message)| announce(message))
            .collect();
        if !announced.is_empty() && announcements.send(announced).is_err() {
            tracing::error!("the announcer has stopped; stored messages were not broadcast");
        }
    }
}

/// `first` and whatever else is queued, up to `max_batch`, waiting at most `max_wait` for more.
async fn gather(first: Job, jobs: &mut mpsc::Receiver<Job>, config: &WriterConfig) -> Vec<Job> {
    let mut batch = vec![first];
    let deadline = tokio::time::Instant::now() + config.max_wait;
    while batch.len() < config.max_batch {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(mpsc::error::TryRecvError::Empty) if !config.max_wait.is_zero() => {
                match tokio::time::timeout_at(deadline, jobs.recv()).await {
                    Ok(Some(job)) => batch.push(job),
                    _ => break,
                }
            }
            Err(_) => break,
        }
    }
    batch
}

/// Stores a batch and answers every job in it; returns the new messages to announce.
async fn commit(store: &Store, batch: Vec<Job>, config: &WriterConfig) -> Vec<(Announce, Message)> {
    let (live, late): (Vec<Job>, Vec<Job>) = batch
        .into_iter()
        .partition(|j| j.enqueued.elapsed() <= config.queue_deadline);
    for job in late {
        job.answer(Err(StoreError::Overloaded));
    }
    if live.is_empty() {
        return Vec::new();
    }
    let groups = group_by_key(live);
    let started = Instant::now();
    // Never cancelled half way: a COMMIT that was sent may succeed, and its messages must then
    // be announced. Senders stop waiting at their own deadline instead (`Writer::append`).
    let announced = store_groups(store, groups).await;
    metrics::histogram!(names::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
    announced
}

/// Stores the groups in one transaction and answers them; retries are answered with the
/// message stored the first time.
async fn store_groups(store: &Store, groups: Vec<Group>) -> Vec<(Announce, Message)> {
    metrics::histogram!(names::BATCH_SIZE).record(groups.len() as f64);
    let drafts: Vec<&Draft> = groups.iter().map(|g| &g.leader.draft).collect();
    let outcome = match store.append_batch(&drafts).await {
        Ok(outcome) => outcome,
        Err(err) => {
            let err = StoreError::from(err);
            if matches!(err, StoreError::Internal(_)) && groups.len() > 1 {
                // Not the database being away: maybe one bad row. Store each alone, so that it
                // fails alone.
                return Box::pin(one_by_one(store, groups)).await;
            }
            groups.into_iter().for_each(|g| g.answer(Err(err.clone())));
            return Vec::new();
        }
    };
    let mut announced = Vec::with_capacity(groups.len());
    let mut retries = Vec::new();
    for (group, stored) in groups.into_iter().zip(outcome) {
        match stored {
            Some(message) => announced.extend(group.stored(message)),
            None => retries.push(group),
        }
    }
    if !retries.is_empty() {
        answer_retries(store, retries).await;
    }
    announced
}

async fn one_by_one(store: &Store, groups: Vec<Group>) -> Vec<(Announce, Message)> {
    let mut announced = Vec::new();
    for group in groups {
        announced.extend(store_groups(store, vec![group]).await);
    }
    announced
}

/// Groups whose key was stored before (by an earlier batch or another node).
async fn answer_retries(store: &Store, retries: Vec<Group>) {
    let keys: Vec<(&str, &str)> = retries
        .iter()
        .filter_map(|g| g.leader.draft.key())
        .collect();
    match store.by_keys(&keys).await {
        Ok(stored) => {
            for group in retries {
                let key = group
                    .leader
                    .draft
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

/// Jobs that share an idempotency key: the first is stored, the others get its message.
struct Group {
    leader: Job,
    followers: Vec<Job>,
}

impl Group {
    fn answer(self, result: Result<Appended, StoreError>) {
        let repeat = result.clone().map(|a| Appended {
            created: false,
            ..a
        });
        for follower in self.followers {
            follower.answer(repeat.clone());
        }
        self.leader.answer(result);
    }

    /// Answers the group with its newly stored message; returns what to announce.
    fn stored(mut self, message: Message) -> Option<(Announce, Message)> {
        let announce = self.leader.announce.take();
        self.answer(Ok(Appended {
            message: message.clone(),
            created: true,
        }));
        announce.map(|a| (a, message))
    }
}

fn group_by_key(jobs: Vec<Job>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::with_capacity(jobs.len());
    let mut by_key: HashMap<(String, String), usize> = HashMap::new();
    for job in jobs {
        let key = job.draft.key().map(|(u, c)| (u.to_owned(), c.to_owned()));
        match key.as_ref().and_then(|k| by_key.get(k)) {
            Some(&i) => groups[i].followers.push(job),
            None => {
                if let Some(k) = key {
                    by_key.insert(k, groups.len());
                }
                groups.push(Group {
                    leader: job,
                    followers: Vec::new(),
                });
            }
        }
    }
    groups
}

/// Runs broadcasts in the order they were handed over (for messages: commit order), apart from
/// the writer, so that a slow broadcast (a remote adapter) never holds up the next commit.
/// Stops, once told to, after running everything already handed over.
async fn announce_in_order(
    mut batches: mpsc::UnboundedReceiver<Vec<Broadcast>>,
    stop: CancellationToken,
) {
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
