//! Sessions that have not connected yet, per client address: what a session costs before its
//! Socket.IO `connect` is bounded by how many one address may hold, not by how fast it may open
//! them, so a crowd behind one proxy that reconnects at once is let in (its sessions connect
//! within milliseconds) while a flood that never connects is held to a fixed amount of memory.

use dashmap::DashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// When a session refused for its address's pending sessions is told to retry.
pub(super) const PENDING_RETRY: Duration = Duration::from_secs(1);

/// Sessions not connected yet, per client address.
#[derive(Clone)]
pub(super) struct PendingSessions {
    counts: Arc<DashMap<String, usize>>,
    max: usize,
}

impl PendingSessions {
    pub(super) fn new(max: usize) -> Self {
        Self {
            counts: Arc::default(),
            max: max.max(1),
        }
    }

    /// A slot for one more session of `address`, if it has one left.
    pub(super) fn take(&self, address: &str) -> Option<PendingSession> {
        let mut held = self.counts.entry(address.to_owned()).or_default();
        if *held >= self.max {
            return None;
        }
        *held += 1;
        drop(held);
        Some(PendingSession(Arc::new(Mutex::new(Some(PendingSlot {
            counts: self.counts.clone(),
            address: address.to_owned(),
        })))))
    }
}

/// A session's place among its address's pending sessions, kept in the session's request
/// head: given back when the session connects, or when it ends (the head is dropped).
#[derive(Clone)]
pub struct PendingSession(Arc<Mutex<Option<PendingSlot>>>);

impl PendingSession {
    pub(super) fn release(&self) {
        let slot = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        drop(slot);
    }
}

struct PendingSlot {
    counts: Arc<DashMap<String, usize>>,
    address: String,
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        self.counts.remove_if_mut(&self.address, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_max_pending_sessions_until_one_connects_or_ends() {
        let pending = PendingSessions::new(2);
        let first = pending.take("192.0.2.1");
        let second = pending.take("192.0.2.1");
        assert!(first.is_some() && second.is_some());
        assert!(pending.take("192.0.2.1").is_none(), "a third is refused");
        assert!(
            pending.take("192.0.2.2").is_some(),
            "other addresses have their own"
        );
        if let Some(connected) = &first {
            connected.release();
            connected.release();
        }
        let third = pending.take("192.0.2.1");
        assert!(
            third.is_some(),
            "a connected session gives its place back, once"
        );
        assert!(pending.take("192.0.2.1").is_none());
        drop(second);
        assert!(
            pending.take("192.0.2.1").is_some(),
            "so does a session that ends"
        );
    }
}
