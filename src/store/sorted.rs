//! A batch's changes sorted by kind, each kind in arrival order, as the commit's phases take
//! them; and their answers from what the transaction decided.

use super::MessageKey;
use super::change::Broadcast;
use super::change::{Change, Pending};
use super::{
    Appended, DeleteRequest, Draft, EditRequest, JoinRequest, Joined, LeaveRequest, Left, Marked,
    ReadMark, Refusal, Removal, RoomRef, Store, StoreError,
};
use crate::chat::{Message, RoomName};
use std::collections::{BTreeSet, HashMap};

/// Messages that share an idempotency key: the first is stored, the others get its message.
pub(super) struct Group {
    leader: Pending<Draft, Appended>,
    followers: Vec<Pending<Draft, Appended>>,
}

impl Group {
    fn answer(self, result: Result<Appended, StoreError>) {
        let repeat = result.clone().map(|a| Appended {
            created: false,
            ..a
        });
        for follower in self.followers {
            follower.answer.send(repeat.clone());
        }
        self.leader.answer.send(result);
    }

    /// Answers the group with its newly stored message; returns its broadcast.
    fn stored(self, message: Message) -> Option<Broadcast> {
        let stored = Appended {
            message,
            created: true,
        };
        for follower in self.followers {
            follower.answer.send(Ok(Appended {
                created: false,
                ..stored.clone()
            }));
        }
        self.leader.settle(stored)
    }

    fn len(&self) -> usize {
        1 + self.followers.len()
    }
}

/// A batch's changes by kind, each kind in arrival order.
#[derive(Default)]
pub(super) struct Sorted {
    pub(super) rooms: Vec<Pending<RoomName, RoomRef>>,
    pub(super) joins: Vec<Pending<JoinRequest, Result<Joined, Refusal>>>,
    pub(super) messages: Vec<Group>,
    pub(super) leaves: Vec<Pending<LeaveRequest, Option<Left>>>,
    pub(super) reads: Vec<Pending<ReadMark, Option<Marked>>>,
    pub(super) edits: Vec<Pending<EditRequest, Result<Message, Refusal>>>,
    pub(super) deletes: Vec<Pending<DeleteRequest, Result<Removal, Refusal>>>,
}

/// What the transaction decided, in the order of [`Sorted`]'s lists.
pub(super) struct Outcomes {
    pub(super) rooms: Vec<RoomRef>,
    pub(super) joins: Vec<Result<Joined, Refusal>>,
    /// Per message group: its new message, `None` for a key stored before (a retry).
    pub(super) messages: Vec<Option<Message>>,
    pub(super) leaves: Vec<Option<Left>>,
    pub(super) reads: Vec<Option<Marked>>,
    pub(super) edits: Vec<Result<Message, Refusal>>,
    pub(super) deletes: Vec<Result<Removal, Refusal>>,
    /// Rooms the batch named, to remember once committed.
    pub(super) known: Vec<RoomRef>,
}

impl Sorted {
    pub(super) fn new(changes: Vec<Change>) -> Self {
        let mut sorted = Self::default();
        let mut by_key: HashMap<MessageKey, usize> = HashMap::new();
        for change in changes {
            match change {
                Change::Room(p) => sorted.rooms.push(p),
                Change::Join(p) => sorted.joins.push(p),
                Change::Leave(p) => sorted.leaves.push(p),
                Change::Read(p) => sorted.reads.push(p),
                Change::Edit(p) => sorted.edits.push(p),
                Change::Delete(p) => sorted.deletes.push(p),
                Change::Message(p) => {
                    let key = p.request.key();
                    match key.as_ref().and_then(|k| by_key.get(k)) {
                        Some(&i) => sorted.messages[i].followers.push(p),
                        None => {
                            if let Some(k) = key {
                                by_key.insert(k, sorted.messages.len());
                            }
                            sorted.messages.push(Group {
                                leader: p,
                                followers: Vec::new(),
                            });
                        }
                    }
                }
            }
        }
        sorted
    }

    /// Every room the batch names: rooms to open and rooms joined.
    pub(super) fn room_names(&self) -> BTreeSet<&str> {
        self.rooms
            .iter()
            .map(|p| p.request.as_str())
            .chain(self.joins.iter().map(|p| p.request.room.as_str()))
            .collect()
    }

    /// The message of each group, to store.
    pub(super) fn drafts(&self) -> Vec<&Draft> {
        self.messages.iter().map(|g| &g.leader.request).collect()
    }

    /// `(room id, user id)` of each leave.
    pub(super) fn leavers(&self) -> Vec<(i64, &str)> {
        self.leaves
            .iter()
            .map(|p| (p.request.room.id, p.request.user_id.as_str()))
            .collect()
    }

    pub(super) fn marks(&self) -> Vec<&ReadMark> {
        self.reads.iter().map(|p| &p.request).collect()
    }

    pub(super) fn len(&self) -> usize {
        self.rooms.len()
            + self.joins.len()
            + self.messages.iter().map(Group::len).sum::<usize>()
            + self.leaves.len()
            + self.reads.len()
            + self.edits.len()
            + self.deletes.len()
    }

    pub(super) fn fail(self, err: StoreError) {
        self.rooms.into_iter().for_each(|p| p.fail(err.clone()));
        self.joins.into_iter().for_each(|p| p.fail(err.clone()));
        self.messages
            .into_iter()
            .for_each(|g| g.answer(Err(err.clone())));
        self.leaves.into_iter().for_each(|p| p.fail(err.clone()));
        self.reads.into_iter().for_each(|p| p.fail(err.clone()));
        self.edits.into_iter().for_each(|p| p.fail(err.clone()));
        self.deletes.into_iter().for_each(|p| p.fail(err.clone()));
    }

    /// One batch per change (a message group counts as one).
    pub(super) fn into_singles(self) -> Vec<Self> {
        let mut singles = Vec::with_capacity(self.len());
        singles.extend(self.rooms.into_iter().map(|p| Self {
            rooms: vec![p],
            ..Self::default()
        }));
        singles.extend(self.joins.into_iter().map(|p| Self {
            joins: vec![p],
            ..Self::default()
        }));
        singles.extend(self.messages.into_iter().map(|g| Self {
            messages: vec![g],
            ..Self::default()
        }));
        singles.extend(self.leaves.into_iter().map(|p| Self {
            leaves: vec![p],
            ..Self::default()
        }));
        singles.extend(self.reads.into_iter().map(|p| Self {
            reads: vec![p],
            ..Self::default()
        }));
        singles.extend(self.edits.into_iter().map(|p| Self {
            edits: vec![p],
            ..Self::default()
        }));
        singles.extend(self.deletes.into_iter().map(|p| Self {
            deletes: vec![p],
            ..Self::default()
        }));
        singles
    }

    /// Answers every change with what its committed transaction decided; returns the
    /// broadcasts, in phase order.
    pub(super) async fn settle(self, store: &Store, o: Outcomes) -> Vec<Broadcast> {
        for room in &o.known {
            store.remember(room);
        }
        let mut announced = Vec::new();
        announced.extend(zip_settle(self.rooms, o.rooms));
        announced.extend(zip_settle(self.joins, o.joins));
        let mut retries = Vec::new();
        store.stored_in(o.messages.iter().flatten().map(|m| m.room.as_str()));
        for (group, stored) in self.messages.into_iter().zip(o.messages) {
            match stored {
                Some(message) => announced.extend(group.stored(message)),
                None => retries.push(group),
            }
        }
        announced.extend(zip_settle(self.leaves, o.leaves));
        announced.extend(zip_settle(self.reads, o.reads));
        announced.extend(zip_settle(self.edits, o.edits));
        announced.extend(zip_settle(self.deletes, o.deletes));
        if !retries.is_empty() {
            answer_retries(store, retries).await;
        }
        announced
    }
}

fn zip_settle<R, T>(pending: Vec<Pending<R, T>>, outcomes: Vec<T>) -> Vec<Broadcast> {
    pending
        .into_iter()
        .zip(outcomes)
        .filter_map(|(p, outcome)| p.settle(outcome))
        .collect()
}

/// Groups whose key was stored before (by an earlier batch or another node).
async fn answer_retries(store: &Store, retries: Vec<Group>) {
    let keys: Vec<MessageKey> = retries
        .iter()
        .filter_map(|g| g.leader.request.key())
        .collect();
    match store.by_keys(&keys).await {
        Ok(stored) => {
            for group in retries {
                let key = group.leader.request.key();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::{answered_now, join, leave, message, room};
    use sea_orm::DbErr;

    #[test]
    fn messages_that_share_an_idempotency_key_share_a_group() {
        let lobby = room(1, "lobby");
        let changes = vec![
            message(&lobby, "ann", "hello", Some("k1")).0,
            message(&lobby, "ann", "hello again", Some("k1")).0,
            message(&lobby, "bob", "same key, other user", Some("k1")).0,
            message(&lobby, "ann", "no key", None).0,
            message(&lobby, "ann", "no key either", None).0,
        ];

        let sorted = Sorted::new(changes);

        let groups: Vec<(String, usize)> = sorted
            .messages
            .iter()
            .map(|g| (g.leader.request.text.as_str().to_owned(), g.len()))
            .collect();
        assert_eq!(
            groups,
            [
                ("hello".to_owned(), 2),
                ("same key, other user".to_owned(), 1),
                ("no key".to_owned(), 1),
                ("no key either".to_owned(), 1),
            ]
        );
        assert_eq!(sorted.len(), 5, "every change counts, followers too");
        assert_eq!(sorted.drafts().len(), 4, "one draft stored per group");
    }

    #[test]
    fn one_by_one_makes_a_batch_per_change_and_keeps_a_group_together() {
        let lobby = room(1, "lobby");
        let changes = vec![
            message(&lobby, "ann", "hello", Some("k1")).0,
            join("lobby", "bob").0,
            message(&lobby, "ann", "hello", Some("k1")).0,
            leave(&lobby, "cat").0,
            message(&lobby, "ann", "other", None).0,
        ];

        let singles = Sorted::new(changes).into_singles();

        let shapes: Vec<(usize, usize, usize)> = singles
            .iter()
            .map(|s| (s.joins.len(), s.messages.len(), s.leaves.len()))
            .collect();
        assert_eq!(
            shapes,
            [(1, 0, 0), (0, 1, 0), (0, 1, 0), (0, 0, 1)],
            "in phase order"
        );
        assert_eq!(
            singles[1].len(),
            2,
            "a retried message stays with its first try"
        );
        assert_eq!(singles.iter().map(Sorted::len).sum::<usize>(), 5);
    }

    #[test]
    fn a_failed_batch_answers_every_change_followers_too() {
        let lobby = room(1, "lobby");
        let (first, first_reply) = message(&lobby, "ann", "hello", Some("k1"));
        let (retry, retry_reply) = message(&lobby, "ann", "hello", Some("k1"));
        let (joined, join_reply) = join("lobby", "bob");

        Sorted::new(vec![first, retry, joined])
            .fail(StoreError::Internal(DbErr::Custom("broken".into())));

        for answer in [
            answered_now(first_reply).err(),
            answered_now(retry_reply).err(),
            answered_now(join_reply).err(),
        ] {
            assert!(
                matches!(answer, Some(StoreError::Internal(_))),
                "{answer:?}"
            );
        }
    }
}
