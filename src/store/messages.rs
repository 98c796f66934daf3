//! Messages: appended in commit order, paged by `(room_id, seq)`, edited and deleted in place.

use super::rows::to_message;
use super::{RoomRef, Store, StoreError, now_ms};
use crate::chat::{HistoryPage, HistoryQuery, Message, MessageId, MessageText};
use entity::message;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

/// The stored message, and whether this call stored it (false: an earlier call with the same
/// `(user, client_id)` did, and this one is a retry).
#[derive(Clone, Debug)]
pub struct Appended {
    pub message: Message,
    pub created: bool,
}

/// A deletion's outcome: the tombstone's room, and whether this call made it.
#[derive(Clone, Debug)]
pub struct Removal {
    pub room: String,
    pub message_id: String,
    pub changed: bool,
}

impl Store {
    /// A page of the room's history, oldest to newest. Cursors must be messages of this room.
    pub async fn history(
        &self,
        room: &RoomRef,
        query: HistoryQuery,
    ) -> Result<HistoryPage, StoreError> {
        let mut select = message::Entity::find().filter(message::Column::RoomId.eq(room.id));
        if let Some(before) = query.before {
            select = select.filter(message::Column::Seq.lt(before.seq));
        }
        if let Some(after) = query.after {
            select = select.filter(message::Column::Seq.gt(after.seq));
        }
        select = if query.is_forward() {
            select.order_by_asc(message::Column::Seq)
        } else {
            select.order_by_desc(message::Column::Seq)
        };
        let mut rows = select.limit(query.limit + 1).all(&self.db).await?;
        let has_more = rows.len() as u64 > query.limit;
        rows.truncate(query.limit as usize);
        if !query.is_forward() {
            rows.reverse();
        }
        let messages = rows
            .into_iter()
            .map(|r| to_message(r, &room.name))
            .collect();
        Ok(HistoryPage { messages, has_more })
    }

    /// The message and its author's id, if it exists (deleted or not).
    pub async fn message(&self, id: MessageId) -> Result<Option<(Message, String)>, StoreError> {
        let row = message::Entity::find_by_id((id.room_id, id.seq))
            .one(&self.db)
            .await?;
        let author = row.as_ref().map(|r| r.user_id.clone());
        Ok(self.with_room_name(&self.db, row).await?.zip(author))
    }

    /// Replaces the text of a live message. The caller has checked authorship.
    pub async fn edit(
        &self,
        id: MessageId,
        text: MessageText,
    ) -> Result<Option<Message>, StoreError> {
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await?;
        let Some(row) = message::Entity::find_by_id((id.room_id, id.seq))
            .one(&txn)
            .await?
        else {
            return Ok(None);
        };
        if row.deleted {
            return Ok(None);
        }
        let mut row = row.into_active_model();
        row.text = Set(Some(text.into_string()));
        row.edited_at = Set(Some(now_ms()));
        let row = row.update(&txn).await?;
        let message = self.with_room_name(&txn, Some(row)).await?;
        txn.commit().await?;
        Ok(message)
    }

    /// Turns a message into a tombstone: it keeps its place, loses its text.
    pub async fn delete(&self, id: MessageId) -> Result<Option<Removal>, StoreError> {
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await?;
        let Some(row) = message::Entity::find_by_id((id.room_id, id.seq))
            .one(&txn)
            .await?
        else {
            return Ok(None);
        };
        let changed = !row.deleted;
        if changed {
            let mut row = row.into_active_model();
            row.text = Set(None);
            row.deleted = Set(true);
            row.update(&txn).await?;
        }
        let room = self.room_by_id(&txn, id.room_id).await?;
        txn.commit().await?;
        Ok(room.map(|room| Removal {
            room: room.name,
            message_id: id.to_string(),
            changed,
        }))
    }

    async fn with_room_name(
        &self,
        db: &impl ConnectionTrait,
        row: Option<message::Model>,
    ) -> Result<Option<Message>, StoreError> {
        let Some(row) = row else { return Ok(None) };
        let Some(room) = self.room_by_id(db, row.room_id).await? else {
            return Ok(None);
        };
        Ok(Some(to_message(row, &room.name)))
    }
}
