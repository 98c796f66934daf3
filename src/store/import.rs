//! History from another backend (`chatoxide import`): messages stored with their own time, in
//! batches of one transaction each, once per `(user, client_id)` however often they are imported.

use super::batch::{insert_new, reserve_seqs, take_seq};
use super::{RoomRef, Store, StoreError};
use crate::chat::{ClientId, MessageText, UserId};
use entity::message;
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// A message of an imported history, ready to store: its room exists, its key comes from the
/// export (see `crate::import`).
#[derive(Clone, Debug)]
pub struct Imported {
    pub room: RoomRef,
    /// The author; the stored display name is the id (exports name users by id).
    pub author: UserId,
    pub text: MessageText,
    pub client_id: ClientId,
    /// Unix milliseconds, as the export gives it.
    pub created_at: i64,
}

/// What one imported batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportCount {
    /// Stored by this batch.
    pub stored: usize,
    /// Stored before (an earlier import), or twice in this batch: skipped.
    pub present: usize,
}

impl Store {
    /// Stores `messages` in one transaction, in order. Each room's new messages take the
    /// numbers after its `last_seq`, as the writer's do, so they come after what the room
    /// holds already; a message whose `(user, client_id)` is stored is skipped without using
    /// a number. No memberships are made.
    pub async fn import_batch(&self, messages: &[Imported]) -> Result<ImportCount, StoreError> {
        // Looked up before the write transaction, so that it holds SQLite's write lock no
        // longer than its writes take. A key stored meanwhile is caught by the insert's ON
        // CONFLICT.
        let fresh = not_stored(&self.db, messages).await?;
        let txn = self.begin_write().await?;
        let mut per_room: BTreeMap<i64, i64> = BTreeMap::new();
        for m in &fresh {
            *per_room.entry(m.room.id).or_default() += 1;
        }
        let mut next_seq = reserve_seqs(&txn, &per_room).await?;
        let mut rows = Vec::with_capacity(fresh.len());
        for m in &fresh {
            rows.push(row(m, take_seq(&mut next_seq, m.room.id)?));
        }
        let stored = insert_new(&txn, &rows, self.backend()).await?.len();
        txn.commit().await?;
        Ok(ImportCount {
            stored,
            present: messages.len() - stored,
        })
    }
}

/// Keys looked up per statement. A key is at most 128 characters of user and client id: 50
/// keep a statement under sqlx's 8 KiB write buffer, which on PostgreSQL avoids a delayed ACK
/// per statement (see `rows_per_insert` in batch.rs).
const KEYS_PER_QUERY: usize = 50;

/// The messages whose key is neither stored nor taken by an earlier message of the batch.
async fn not_stored<'a>(
    txn: &impl ConnectionTrait,
    messages: &'a [Imported],
) -> Result<Vec<&'a Imported>, DbErr> {
    let mut taken = HashSet::with_capacity(messages.len());
    for chunk in messages.chunks(KEYS_PER_QUERY) {
        taken.extend(stored_keys(txn, chunk).await?);
    }
    Ok(messages
        .iter()
        .filter(|m| {
            let key = (
                m.author.as_str().to_owned(),
                m.client_id.as_str().to_owned(),
            );
            taken.insert(key)
        })
        .collect())
}

/// The `(user, client_id)` keys of `messages` that are stored already. One index range per
/// author, `user_id = ? AND client_id IN (…)`: every author × every key (IN × IN) can be
/// planned as a scan of all the authors' messages, which makes a long import quadratic.
async fn stored_keys(
    txn: &impl ConnectionTrait,
    messages: &[Imported],
) -> Result<Vec<(String, String)>, DbErr> {
    let mut by_user: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for m in messages {
        by_user
            .entry(m.author.as_str())
            .or_default()
            .insert(m.client_id.as_str());
    }
    let mut keys = Condition::any();
    for (user, client_ids) in by_user {
        keys = keys.add(
            message::Column::UserId
                .eq(user)
                .and(message::Column::ClientId.is_in(client_ids)),
        );
    }
    let stored: Vec<(String, Option<String>)> = message::Entity::find()
        .select_only()
        .column(message::Column::UserId)
        .column(message::Column::ClientId)
        .filter(keys)
        .into_tuple()
        .all(txn)
        .await?;
    Ok(stored
        .into_iter()
        .filter_map(|(user, client_id)| Some((user, client_id?)))
        .collect())
}

fn row(m: &Imported, seq: i64) -> message::Model {
    message::Model {
        room_id: m.room.id,
        seq,
        user_id: m.author.as_str().to_owned(),
        user_name: m.author.as_str().to_owned(),
        text: Some(m.text.as_str().to_owned()),
        client_id: Some(m.client_id.as_str().to_owned()),
        room_key: None,
        created_at: m.created_at,
        edited_at: None,
        deleted: false,
    }
}
