//! Reads that arrive together share one trip to the database.
//!
//! After a restart thousands of clients ask the same things at once: the same room, the
//! newest page of the same history, the members of the same room. Each key has at most one
//! read in flight; a request for a key that is being read waits for that read and gets its
//! answer, unless this process has committed anything since that read began: then it starts a
//! read of its own, so a client always reads what was acknowledged to it before it asked.
//! Nothing is kept once a read ends: this is not a cache. (A commit on another node of a
//! cluster during a shared read, milliseconds, may be missed by the requests that joined it.)

use super::messages::HistoryKey;
use super::{RoomRef, StoreError};
use crate::chat::{HistoryPage, MemberPage, MemberQuery, User};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

type Read<V> = Shared<BoxFuture<'static, Result<V, StoreError>>>;

/// The commits this process has made, counted (the writer counts each before it answers).
#[derive(Clone, Debug, Default)]
pub(super) struct Commits(Arc<AtomicU64>);

impl Commits {
    pub(super) fn one_more(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn so_far(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A read in flight, and the commits made before it began.
struct InFlight<V: Clone> {
    after: u64,
    read: Read<V>,
}

/// The reads of one kind in flight, by key. Cheap to clone.
pub struct Flight<K, V: Clone> {
    reads: Arc<Mutex<HashMap<K, InFlight<V>>>>,
    commits: Commits,
}

impl<K, V: Clone> Clone for Flight<K, V> {
    fn clone(&self) -> Self {
        Self {
            reads: self.reads.clone(),
            commits: self.commits.clone(),
        }
    }
}

impl<K, V: Clone> Flight<K, V> {
    fn new(commits: Commits) -> Self {
        Self {
            reads: Arc::default(),
            commits,
        }
    }
}

impl<K, V: Clone> std::fmt::Debug for Flight<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Flight")
    }
}

impl<K, V> Flight<K, V>
where
    K: Eq + Hash + Clone,
    V: Clone + Send + Sync + 'static,
{
    /// The answer of the read of `key` in flight, or of `read`, started now.
    pub async fn share(
        &self,
        key: K,
        read: impl Future<Output = Result<V, StoreError>> + Send + 'static,
    ) -> Result<V, StoreError> {
        let shared = {
            let commits = self.commits.so_far();
            let mut reads = self.reads.lock().unwrap_or_else(PoisonError::into_inner);
            match reads.get(&key) {
                Some(flying) if flying.after == commits => flying.read.clone(),
                _ => {
                    let fresh = read.boxed().shared();
                    let flying = InFlight {
                        after: commits,
                        read: fresh.clone(),
                    };
                    reads.insert(key.clone(), flying);
                    fresh
                }
            }
        };
        let _landed = Landed {
            reads: &self.reads,
            key,
            read: shared.clone(),
        };
        shared.await
    }
}

/// Takes a read out of the map when one of its waiters is done with it (or gave up): later
/// requests start a read of their own.
struct Landed<'a, K: Eq + Hash, V: Clone> {
    reads: &'a Mutex<HashMap<K, InFlight<V>>>,
    key: K,
    read: Read<V>,
}

impl<K: Eq + Hash, V: Clone> Drop for Landed<'_, K, V> {
    fn drop(&mut self) {
        let mut reads = self.reads.lock().unwrap_or_else(PoisonError::into_inner);
        if reads
            .get(&self.key)
            .is_some_and(|r| r.read.ptr_eq(&self.read))
        {
            reads.remove(&self.key);
        }
    }
}

/// Every kind of shared read the store makes.
#[derive(Clone, Debug)]
pub struct Flights {
    /// Counted by the writer: reads begun before a commit are not shared after it.
    pub(super) commits: Commits,
    pub(super) rooms: Flight<String, Option<RoomRef>>,
    pub(super) history: Flight<HistoryKey, HistoryPage>,
    pub(super) all_members: Flight<i64, Vec<User>>,
    pub(super) member_pages: Flight<(i64, MemberQuery), MemberPage>,
}

impl Default for Flights {
    fn default() -> Self {
        let commits = Commits::default();
        Self {
            rooms: Flight::new(commits.clone()),
            history: Flight::new(commits.clone()),
            all_members: Flight::new(commits.clone()),
            member_pages: Flight::new(commits.clone()),
            commits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn reads_in_flight_together_are_made_once_and_later_ones_again() {
        let commits = Commits::default();
        let flight: Flight<u8, usize> = Flight::new(commits.clone());
        let made = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let read = |made: Arc<AtomicUsize>, gate: Arc<tokio::sync::Notify>| async move {
            gate.notified().await;
            Ok(made.fetch_add(1, Ordering::SeqCst) + 1)
        };
        let waiters: Vec<_> = (0..10)
            .map(|_| {
                let (flight, made, gate) = (flight.clone(), made.clone(), gate.clone());
                tokio::spawn(async move { flight.share(7, read(made, gate)).await })
            })
            .collect();
        tokio::task::yield_now().await;
        while made.load(Ordering::SeqCst) == 0 {
            gate.notify_waiters();
            tokio::task::yield_now().await;
        }
        for waiter in waiters {
            assert_eq!(waiter.await.ok().and_then(Result::ok), Some(1));
        }
        gate.notify_one();
        let later = flight.share(7, read(made.clone(), gate.clone())).await;
        assert_eq!(later.ok(), Some(2), "a read that ended is not reused");
    }

    #[tokio::test]
    async fn a_request_after_a_commit_does_not_share_a_read_begun_before_it() {
        let commits = Commits::default();
        let flight: Flight<u8, &'static str> = Flight::new(commits.clone());
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let before = {
            let flight = flight.clone();
            tokio::spawn(async move {
                flight
                    .share(1, async move {
                        let _ = wait.await;
                        Ok("before the commit")
                    })
                    .await
            })
        };
        tokio::task::yield_now().await;
        commits.one_more();
        let after = flight.share(1, async { Ok("after the commit") }).await;
        assert_eq!(after.ok(), Some("after the commit"));
        let _ = release.send(());
        assert_eq!(
            before.await.ok().and_then(Result::ok),
            Some("before the commit")
        );
    }
}
