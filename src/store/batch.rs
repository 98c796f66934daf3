//! Storing many messages in one transaction: the write half of group commit.

use super::rows::to_message;
use super::{RoomRef, Store, StoreError, now_ms};
use crate::chat::{ClientId, Message, MessageText, User};
use entity::{message, room};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter, TransactionTrait,
};
use std::collections::{BTreeMap, HashMap};

/// A message to store: validated, from a member, not stored yet.
#[derive(Clone, Debug)]
pub struct Draft {
    pub room: RoomRef,
    pub author: User,
    pub text: MessageText,
    pub client_id: Option<ClientId>,
}

impl Draft {
    /// The idempotency key, if the client gave one.
    pub fn key(&self) -> Option<(&str, &str)> {
        self.client_id
            .as_ref()
            .map(|c| (self.author.id.as_str(), c.as_str()))
    }
}

/// Rows inserted per statement: well under SQLite's and PostgreSQL's bound-parameter limits.
const ROWS_PER_INSERT: usize = 500;

impl Store {
    /// Stores `drafts` in one transaction, in order, and returns their messages in the same
    /// order. Rooms are locked in ascending id order, so concurrent batches (on other nodes)
    /// cannot deadlock; each room's sequence numbers are taken in one statement.
    pub(super) async fn append_batch(&self, drafts: &[&Draft]) -> Result<Vec<Message>, DbErr> {
        let mut per_room: BTreeMap<i64, i64> = BTreeMap::new();
        for d in drafts {
            *per_room.entry(d.room.id).or_default() += 1;
        }
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await?;
        let mut next_seq: HashMap<i64, i64> = HashMap::with_capacity(per_room.len());
        for (&room_id, &count) in &per_room {
            let bumped = room::Entity::update_many()
                .col_expr(
                    room::Column::LastSeq,
                    Expr::col(room::Column::LastSeq).add(count),
                )
                .filter(room::Column::Id.eq(room_id))
                .exec_with_returning(&txn)
                .await?;
            let last = bumped
                .first()
                .map(|r| r.last_seq)
                .ok_or_else(|| DbErr::RecordNotFound(format!("room {room_id}")))?;
            next_seq.insert(room_id, last - count + 1);
        }
        let now = now_ms();
        let mut rows = Vec::with_capacity(drafts.len());
        for d in drafts {
            let seq = next_seq
                .get_mut(&d.room.id)
                .ok_or_else(|| DbErr::Custom("room without a sequence".into()))?;
            rows.push(message::Model {
                room_id: d.room.id,
                seq: *seq,
                user_id: d.author.id.clone(),
                user_name: d.author.name.clone(),
                text: Some(d.text.as_str().to_owned()),
                client_id: d.client_id.as_ref().map(|c| c.as_str().to_owned()),
                created_at: now,
                edited_at: None,
                deleted: false,
            });
            *seq += 1;
        }
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let models = chunk.iter().cloned().map(active);
            message::Entity::insert_many(models)
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(rows
            .into_iter()
            .zip(drafts)
            .map(|(row, d)| to_message(row, &d.room.name))
            .collect())
    }

    /// The messages already stored under any of `keys` (`(user id, client_id)` pairs).
    pub(super) async fn by_keys(
        &self,
        keys: &[(&str, &str)],
    ) -> Result<HashMap<(String, String), Message>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let mut any = Condition::any();
        for (user, client_id) in keys {
            any = any.add(
                Condition::all()
                    .add(message::Column::UserId.eq(*user))
                    .add(message::Column::ClientId.eq(*client_id)),
            );
        }
        let rows = message::Entity::find().filter(any).all(&self.db).await?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in rows {
            let Some(client_id) = row.client_id.clone() else {
                continue;
            };
            let user = row.user_id.clone();
            if let Some(room) = self.room_by_id(&self.db, row.room_id).await? {
                found.insert((user, client_id), to_message(row, &room.name));
            }
        }
        Ok(found)
    }
}

fn active(m: message::Model) -> message::ActiveModel {
    message::ActiveModel {
        room_id: Set(m.room_id),
        seq: Set(m.seq),
        user_id: Set(m.user_id),
        user_name: Set(m.user_name),
        text: Set(m.text),
        client_id: Set(m.client_id),
        created_at: Set(m.created_at),
        edited_at: Set(m.edited_at),
        deleted: Set(m.deleted),
    }
}
