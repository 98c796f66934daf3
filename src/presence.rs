//! Who is online: users with at least one connected socket on this node.

use crate::chat::User;
use dashmap::DashMap;
use std::sync::Arc;

/// Connected sockets per user id. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Presence {
    sockets: Arc<DashMap<String, usize>>,
}

impl Presence {
    pub fn connected(&self, user_id: &str) {
        *self.sockets.entry(user_id.to_owned()).or_default() += 1;
    }

    pub fn disconnected(&self, user_id: &str) {
        self.sockets.remove_if_mut(user_id, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
    }

    pub fn is_online(&self, user_id: &str) -> bool {
        self.sockets.contains_key(user_id)
    }

    /// The users of `members` that are online, in the same order.
    pub fn online(&self, members: Vec<User>) -> Vec<User> {
        members
            .into_iter()
            .filter(|u| self.is_online(&u.id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_online_until_the_last_socket_leaves() {
        let presence = Presence::default();
        presence.connected("alice");
        presence.connected("alice");
        presence.disconnected("alice");
        assert!(presence.is_online("alice"));
        presence.disconnected("alice");
        assert!(!presence.is_online("alice"));
        presence.disconnected("alice");
        assert!(!presence.is_online("alice"));
    }
}
