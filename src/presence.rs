//! Who is online: users with at least one connected socket, on this node and, in a cluster,
//! on any live node (the counts of other nodes are in Redis: cluster/presence.rs).

use crate::chat::User;
use dashmap::DashMap;
use futures_util::future::BoxFuture;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Connected sockets per user id on this node. Cheap to clone; clones share the counts.
#[derive(Clone, Debug, Default)]
pub struct Counts(Arc<Tally>);

#[derive(Debug, Default)]
struct Tally {
    by_user: DashMap<String, usize>,
    /// Users whose count changed since the last [`Counts::changed`], once each: bounded by the
    /// users there are, however fast they come and go.
    changed: Mutex<HashSet<String>>,
    /// Whether anyone takes the changes (a cluster node); a single node keeps none.
    tracking: AtomicBool,
    wake: Notify,
}

impl Counts {
    fn remove(&self, user_id: &str) {
        self.0.by_user.remove_if_mut(user_id, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
        self.mark(user_id);
    }

    fn mark(&self, user_id: &str) {
        if !self.0.tracking.load(Ordering::Relaxed) {
            return;
        }
        self.0
            .changed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(user_id.to_owned());
        self.0.wake.notify_one();
    }

    /// Starts keeping the users whose counts change, for [`Counts::changed`].
    pub fn track_changes(&self) {
        self.0.tracking.store(true, Ordering::Relaxed);
    }

    /// Waits for a change, then takes every user whose count changed since the last call.
    pub async fn changed(&self) -> HashSet<String> {
        loop {
            let taken = std::mem::take(
                &mut *self
                    .0
                    .changed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            if !taken.is_empty() {
                return taken;
            }
            self.0.wake.notified().await;
        }
    }

    /// The user's socket count, `None` when none is connected.
    pub fn get(&self, user_id: &str) -> Option<usize> {
        self.0.by_user.get(user_id).map(|n| *n)
    }

    pub fn snapshot(&self) -> Vec<(String, usize)> {
        self.0
            .by_user
            .iter()
            .map(|e| (e.key().clone(), *e.value()))
            .collect()
    }
}

/// Who is online on the other nodes of a cluster (implemented by the cluster's registry).
pub trait Elsewhere: Send + Sync {
    /// Which of `users` some live node counts as connected.
    fn online<'a>(&'a self, users: &'a [&'a str])
    -> BoxFuture<'a, Result<HashSet<String>, String>>;
}

/// One connected socket in the counts (and in the `chatoxide_connections` gauge). Dropping it takes the socket out, so a socket is counted
/// exactly as long as it lives, whichever way it ends: also one that socketioxide drops after
/// the handshake without a disconnect event (its `connect` packet could not be sent).
pub struct Connection {
    presence: Presence,
    user_id: String,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.presence.disconnected(&self.user_id);
    }
}

/// Presence as the commands see it. Cheap to clone.
#[derive(Clone, Default)]
pub struct Presence {
    counts: Counts,
    cluster: Option<Arc<dyn Elsewhere>>,
}

impl Presence {
    /// This node's counts, for the registry that copies them to Redis.
    pub fn counts(&self) -> Counts {
        self.counts.clone()
    }

    /// Presence across the cluster `registry` belongs to.
    pub fn with_registry(self, registry: Arc<dyn Elsewhere>) -> Self {
        Self {
            cluster: Some(registry),
            ..self
        }
    }

    /// Counts one more socket of `user_id` for as long as the returned value lives, unless the
    /// user holds `max` already (then `Err` with the count). Checked and counted under one lock.
    pub fn connect_within(&self, user_id: &str, max: Option<usize>) -> Result<Connection, usize> {
        {
            let mut held = self.counts.0.by_user.entry(user_id.to_owned()).or_default();
            // A user just inserted holds 0, below any limit (limits are at least 1).
            if let Some(max) = max
                && *held >= max
            {
                return Err(*held);
            }
            *held += 1;
        }
        self.counts.mark(user_id);
        Ok(Connection {
            presence: self.clone(),
            user_id: user_id.to_owned(),
        })
    }

    fn disconnected(&self, user_id: &str) {
        self.counts.remove(user_id);
    }

    /// The users of `members` that are online, in the same order. While Redis is out of reach
    /// a cluster node answers with what it knows: its own sockets.
    pub async fn online(&self, members: Vec<User>) -> Vec<User> {
        let elsewhere = match &self.cluster {
            None => HashSet::new(),
            Some(cluster) => {
                let ids: Vec<&str> = members.iter().map(|u| u.id.as_str()).collect();
                cluster.online(&ids).await.unwrap_or_else(|err| {
                    tracing::debug!(error = %err, "presence from this node's sockets only");
                    HashSet::new()
                })
            }
        };
        members
            .into_iter()
            .filter(|u| self.counts.get(&u.id).is_some() || elsewhere.contains(&u.id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Presence {
        /// One more socket of `user_id`, without a limit.
        fn connect(&self, user_id: &str) -> Connection {
            match self.connect_within(user_id, None) {
                Ok(connection) => connection,
                Err(held) => unreachable!("no limit, yet refused at {held}"),
            }
        }
    }

    #[test]
    fn a_user_is_online_until_the_last_socket_leaves() {
        let presence = Presence::default();
        let first = presence.connect("alice");
        let second = presence.connect("alice");
        drop(first);
        assert_eq!(presence.counts().get("alice"), Some(1));
        drop(second);
        assert_eq!(presence.counts().get("alice"), None);
        presence.disconnected("alice");
        assert_eq!(presence.counts().get("alice"), None);
    }

    #[tokio::test]
    async fn changes_are_kept_once_per_user_and_only_when_tracked() {
        let presence = Presence::default();
        drop(presence.connect("untracked"));
        let counts = presence.counts();
        counts.track_changes();
        let tabs: Vec<_> = (0..1000).map(|_| presence.connect("alice")).collect();
        let bob = presence.connect("bob");
        drop(tabs);
        let changed = counts.changed().await;
        assert_eq!(
            changed,
            HashSet::from(["alice".to_owned(), "bob".to_owned()])
        );
        drop(bob);
        assert_eq!(counts.changed().await, HashSet::from(["bob".to_owned()]));
    }
}
