//! Reads that arrive together share one trip to the database.
//!
//! After a restart thousands of clients ask the same things at once: the same room, the
//! newest page of the same history, the members of the same room. Each key has at most one
//! read in flight; a request for a key that is being read waits for that read and gets its
//! answer, which is at most as old as the request itself. Nothing is kept once a read ends:
//! this is not a cache.

use super::messages::HistoryKey;
use super::{RoomRef, StoreError};
use crate::chat::{HistoryPage, MemberPage, MemberQuery, User};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

type Read<V> = Shared<BoxFuture<'static, Result<V, StoreError>>>;

/// The reads of one kind in flight, by key. Cheap to clone.
pub struct Flight<K, V: Clone> {
    reads: Arc<Mutex<HashMap<K, Read<V>>>>,
}

impl<K, V: Clone> Clone for Flight<K, V> {
    fn clone(&self) -> Self {
        Self {
            reads: self.reads.clone(),
        }
    }
}

impl<K, V: Clone> Default for Flight<K, V> {
    fn default() -> Self {
        Self {
            reads: Arc::default(),
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
            let mut reads = self.reads.lock().unwrap_or_else(PoisonError::into_inner);
            reads
                .entry(key.clone())
                .or_insert_with(|| read.boxed().shared())
                .clone()
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
    reads: &'a Mutex<HashMap<K, Read<V>>>,
    key: K,
    read: Read<V>,
}

impl<K: Eq + Hash, V: Clone> Drop for Landed<'_, K, V> {
    fn drop(&mut self) {
        let mut reads = self.reads.lock().unwrap_or_else(PoisonError::into_inner);
        if reads.get(&self.key).is_some_and(|r| r.ptr_eq(&self.read)) {
            reads.remove(&self.key);
        }
    }
}

/// Every kind of shared read the store makes.
#[derive(Clone, Debug, Default)]
pub struct Flights {
    pub(super) rooms: Flight<String, Option<RoomRef>>,
    pub(super) history: Flight<HistoryKey, HistoryPage>,
    pub(super) all_members: Flight<i64, Vec<User>>,
    pub(super) member_pages: Flight<(i64, MemberQuery), MemberPage>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn reads_in_flight_together_are_made_once_and_later_ones_again() {
        let flight: Flight<u8, usize> = Flight::default();
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
        let later = flight.share(7, read(made.clone(), gate)).await;
        assert_eq!(later.ok(), Some(2), "a read that ended is not reused");
    }
}
