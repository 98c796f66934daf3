//! Who is online: users with at least one connected socket, on this node and, in a cluster,
//! on any live node (the counts of other nodes are in Redis: cluster/presence.rs).

use crate::chat::User;
use crate::cluster::Registry;
use dashmap::DashMap;
use std::collections::HashSet;
use std::sync::Arc;

/// Connected sockets per user id on this node. Cheap to clone; clones share the counts.
#[derive(Clone, Debug, Default)]
pub struct Counts(Arc<DashMap<String, usize>>);

impl Counts {
    fn add(&self, user_id: &str) {
        *self.0.entry(user_id.to_owned()).or_default() += 1;
    }

    fn remove(&self, user_id: &str) {
        self.0.remove_if_mut(user_id, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
    }

    /// The user's socket count, `None` when none is connected.
    pub fn get(&self, user_id: &str) -> Option<usize> {
        self.0.get(user_id).map(|n| *n)
    }

    pub fn snapshot(&self) -> Vec<(String, usize)> {
        self.0
            .iter()
            .map(|e| (e.key().clone(), *e.value()))
            .collect()
    }
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
    cluster: Option<Registry>,
}

impl Presence {
    /// This node's counts, for the registry that copies them to Redis.
    pub fn counts(&self) -> Counts {
        self.counts.clone()
    }

    /// Presence across the cluster `registry` belongs to.
    pub fn with_registry(self, registry: Registry) -> Self {
        Self {
            cluster: Some(registry),
            ..self
        }
    }

    /// Counts one more socket of `user_id` for as long as the returned value lives.
    pub fn connect(&self, user_id: &str) -> Connection {
        self.connected(user_id);
        Connection {
            presence: self.clone(),
            user_id: user_id.to_owned(),
        }
    }

    fn connected(&self, user_id: &str) {
        self.counts.add(user_id);
        if let Some(cluster) = &self.cluster {
            cluster.changed(user_id);
        }
    }

    fn disconnected(&self, user_id: &str) {
        self.counts.remove(user_id);
        if let Some(cluster) = &self.cluster {
            cluster.changed(user_id);
        }
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
}
