//! Large rooms' member counts. A room past the large-room size does not hear of every join and
//! leave one by one (5,000 joins would be 12.5 million `user_joined` deliveries); instead each
//! node tells the room, at most once a second, the member count of the last change it
//! committed there: one `member_count` event per room per second, however many joined.

use dashmap::DashMap;
use std::sync::Arc;
use std::time::Duration;

/// How often a large room may hear its count.
pub const EVERY: Duration = Duration::from_secs(1);

/// The counts waiting to be told, by room. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Headcount {
    waiting: Arc<DashMap<String, u64>>,
}

impl Headcount {
    /// A change committed in a large room left it with `member_count` members: told at the
    /// next tick (a later change before it replaces this one).
    pub fn changed(&self, room: &str, member_count: u64) {
        self.waiting.insert(room.to_owned(), member_count);
    }

    /// Hands each room that changed, with its count, to `tell`, once a second, for as long as
    /// it runs.
    pub async fn run<F, Told>(self, tell: F)
    where
        F: Fn(String, u64) -> Told,
        Told: Future<Output = ()>,
    {
        let mut every = tokio::time::interval(EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            for (room, member_count) in self.take() {
                tell(room, member_count).await;
            }
        }
    }

    fn take(&self) -> Vec<(String, u64)> {
        let rooms: Vec<String> = self.waiting.iter().map(|e| e.key().clone()).collect();
        rooms
            .into_iter()
            .filter_map(|room| self.waiting.remove(&room))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_is_told_its_latest_count_once() {
        let headcount = Headcount::default();
        headcount.changed("big", 1001);
        headcount.changed("big", 1003);
        headcount.changed("other", 2000);
        let mut told = headcount.take();
        told.sort();
        assert_eq!(told, [("big".to_owned(), 1003), ("other".to_owned(), 2000)]);
        assert!(headcount.take().is_empty());
    }
}
