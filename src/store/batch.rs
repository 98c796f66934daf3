//! Storing many messages in one transaction: the write half of group commit.

use super::messages::room_name;
use super::rows::to_message;
use super::{RoomRef, Store, StoreError, now_ms};
use crate::chat::{ClientId, Message, MessageText, User};
use entity::{message, room};
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, QueryFilter, TryInsertResult,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// A message to store: validated, from a member, not stored yet.
#[derive(Clone, Debug)]
pub struct Draft {
    pub room: RoomRef,
    pub author: User,
    pub text: MessageText,
    /// The contract's idempotency key: one message per author and key.
    pub client_id: Option<ClientId>,
    /// A relay rule's idempotency key: one message per room and key, whoever sends it (a
    /// guest that retries from a new connection is a new guest).
    pub room_key: Option<ClientId>,
}

/// What makes a retried message the one stored before.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MessageKey {
    Author { user: String, key: String },
    Room { room_id: i64, key: String },
}

impl Draft {
    /// The idempotency key, if the client gave one.
    pub fn key(&self) -> Option<MessageKey> {
        if let Some(key) = &self.room_key {
            return Some(MessageKey::Room {
                room_id: self.room.id,
                key: key.as_str().to_owned(),
            });
        }
        self.client_id.as_ref().map(|c| MessageKey::Author {
            user: self.author.id.clone(),
            key: c.as_str().to_owned(),
        })
    }
}

/// Rows inserted per statement. On PostgreSQL a statement larger than sqlx's 8 KiB write buffer
/// goes out in pieces, and since sqlx 0.9.0 leaves Nagle's algorithm on (sqlx issue 4335) the
/// last piece waits for a delayed ACK: 40 ms per batch. 40 rows stay under the buffer. SQLite,
/// in process, takes 500 rows a statement, well under its bound-parameter limit.
fn rows_per_insert(backend: DbBackend) -> usize {
    match backend {
        DbBackend::Postgres => 40,
        _ => 500,
    }
}

/// Stores `drafts` in the writer's transaction, in order, and returns their messages in the
/// same order: `None` for a draft whose `(user, client_id)` is already stored (a retry; the
/// stored message is the one to answer with, see [`Store::by_keys`]). One statement takes the
/// sequence numbers of every room in the batch (locking the room rows, so numbers follow
/// commit order), one statement per [`rows_per_insert`] rows inserts them.
pub(super) async fn append(
    txn: &DatabaseTransaction,
    drafts: &[&Draft],
) -> Result<Vec<Option<Message>>, DbErr> {
    if drafts.is_empty() {
        return Ok(Vec::new());
    }
    let mut per_room: BTreeMap<i64, i64> = BTreeMap::new();
    for d in drafts {
        *per_room.entry(d.room.id).or_default() += 1;
    }
    let mut next_seq = reserve_seqs(txn, &per_room).await?;
    let now = now_ms();
    let mut rows = Vec::with_capacity(drafts.len());
    for d in drafts {
        rows.push(message::Model {
            room_id: d.room.id,
            seq: take_seq(&mut next_seq, d.room.id)?,
            user_id: d.author.id.clone(),
            user_name: d.author.name.clone(),
            text: Some(d.text.as_str().to_owned()),
            client_id: d.client_id.as_ref().map(|c| c.as_str().to_owned()),
            room_key: d.room_key.as_ref().map(|c| c.as_str().to_owned()),
            created_at: now,
            edited_at: None,
            deleted: false,
        });
    }
    let inserted = insert_new(txn, &rows, txn.get_database_backend()).await?;
    Ok(rows
        .into_iter()
        .zip(drafts)
        .map(|(row, d)| {
            inserted
                .contains(&(row.room_id, row.seq))
                .then(|| to_message(row, &d.room.name))
        })
        .collect())
}

impl Store {
    /// The messages already stored under any of `keys`.
    pub(super) async fn by_keys(
        &self,
        keys: &[MessageKey],
    ) -> Result<HashMap<MessageKey, Message>, StoreError> {
        let (mut users, mut client_ids) = (BTreeSet::new(), BTreeSet::new());
        let (mut rooms, mut room_keys) = (BTreeSet::new(), BTreeSet::new());
        for key in keys {
            match key {
                MessageKey::Author { user, key } => {
                    users.insert(user.as_str());
                    client_ids.insert(key.as_str());
                }
                MessageKey::Room { room_id, key } => {
                    rooms.insert(*room_id);
                    room_keys.insert(key.as_str());
                }
            }
        }
        // Supersets (every user × every key, every room × every key) that the two unique
        // indexes answer cheaply; the exact keys are picked out below.
        let mut rows = Vec::new();
        if !users.is_empty() {
            rows.extend(
                message::Entity::find()
                    .filter(message::Column::UserId.is_in(users))
                    .filter(message::Column::ClientId.is_in(client_ids))
                    .all(&self.db)
                    .await?,
            );
        }
        if !rooms.is_empty() {
            rows.extend(
                message::Entity::find()
                    .filter(message::Column::RoomId.is_in(rooms))
                    .filter(message::Column::RoomKey.is_in(room_keys))
                    .all(&self.db)
                    .await?,
            );
        }
        let wanted: HashSet<&MessageKey> = keys.iter().collect();
        let mut found = HashMap::with_capacity(keys.len());
        for row in rows {
            let matches = stored_keys(&row)
                .into_iter()
                .filter(|k| wanted.contains(k))
                .collect::<Vec<_>>();
            if matches.is_empty() {
                continue;
            }
            let room = room_name(&self.db, row.room_id).await?;
            let message = to_message(row, &room);
            for key in matches {
                found.insert(key, message.clone());
            }
        }
        Ok(found)
    }
}

/// The keys a stored row answers to.
fn stored_keys(row: &message::Model) -> Vec<MessageKey> {
    let author = row.client_id.as_ref().map(|key| MessageKey::Author {
        user: row.user_id.clone(),
        key: key.clone(),
    });
    let room = row.room_key.as_ref().map(|key| MessageKey::Room {
        room_id: row.room_id,
        key: key.clone(),
    });
    author.into_iter().chain(room).collect()
}

/// Takes `count` sequence numbers of every room in `per_room` (room id → count) in one
/// statement, `last_seq += count`, which locks the room rows until the transaction ends: numbers
/// follow commit order. Returns each room's first new number.
pub(super) async fn reserve_seqs(
    txn: &DatabaseTransaction,
    per_room: &BTreeMap<i64, i64>,
) -> Result<HashMap<i64, i64>, DbErr> {
    if per_room.is_empty() {
        return Ok(HashMap::new());
    }
    let mut counts = CaseStatement::new();
    for (&room_id, &count) in per_room {
        counts = counts.case(room::Column::Id.eq(room_id), Expr::val(count));
    }
    let bumped = room::Entity::update_many()
        .col_expr(
            room::Column::LastSeq,
            Expr::col(room::Column::LastSeq).add(counts.finally(Expr::val(0i64))),
        )
        .filter(room::Column::Id.is_in(per_room.keys().copied()))
        .exec_with_returning(txn)
        .await?;
    let mut next_seq = HashMap::with_capacity(per_room.len());
    for room in bumped {
        let count = per_room.get(&room.id).copied().unwrap_or_default();
        next_seq.insert(room.id, room.last_seq - count + 1);
    }
    Ok(next_seq)
}

/// The next of the numbers [`reserve_seqs`] took for `room_id`.
pub(super) fn take_seq(next_seq: &mut HashMap<i64, i64>, room_id: i64) -> Result<i64, DbErr> {
    let seq = next_seq
        .get_mut(&room_id)
        .ok_or_else(|| DbErr::Custom("room without a sequence".into()))?;
    *seq += 1;
    Ok(*seq - 1)
}

/// Inserts `rows`, many per statement. A row whose `(user, client_id)` or `(room, room_key)` is
/// stored already is skipped by ON CONFLICT DO NOTHING, which names no index so that it covers
/// both (its sequence number stays unused; ids keep their order), and
/// RETURNING says which went in: their `(room_id, seq)`.
pub(super) async fn insert_new(
    txn: &DatabaseTransaction,
    rows: &[message::Model],
    backend: DbBackend,
) -> Result<HashSet<(i64, i64)>, DbErr> {
    let mut inserted = HashSet::with_capacity(rows.len());
    for chunk in rows.chunks(rows_per_insert(backend)) {
        let models = chunk.iter().cloned().map(active);
        let keys = message::Entity::insert_many(models)
            .on_conflict(OnConflict::new().do_nothing().to_owned())
            .try_insert()
            .exec_with_returning_keys(txn)
            .await?;
        if let TryInsertResult::Inserted(keys) = keys {
            inserted.extend(keys);
        }
    }
    Ok(inserted)
}

fn active(m: message::Model) -> message::ActiveModel {
    message::ActiveModel {
        room_id: Set(m.room_id),
        seq: Set(m.seq),
        user_id: Set(m.user_id),
        user_name: Set(m.user_name),
        text: Set(m.text),
        client_id: Set(m.client_id),
        room_key: Set(m.room_key),
        created_at: Set(m.created_at),
        edited_at: Set(m.edited_at),
        deleted: Set(m.deleted),
    }
}
