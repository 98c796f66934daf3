//! Messages: appended in commit order (store/batch.rs), paged by `(room_id, seq)`, edited and
//! deleted in place by their authors.

use super::rows::to_message;
use super::{RoomRef, Store, StoreError, now_ms};
use crate::chat::{HistoryPage, HistoryQuery, Message, MessageId, MessageText};
use entity::{message, room};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};

/// A history page's key among the reads in flight.
pub(super) type HistoryKey = (i64, HistoryQuery);

/// The stored message, and whether this call stored it (false: an earlier call with the same
/// `(user, client_id)` did, and this one is a retry).
#[derive(Clone, Debug)]
pub struct Appended {
    pub message: Message,
    pub created: bool,
}

/// An edit to store: the author replaces the text of a live message.
#[derive(Clone, Debug)]
pub struct EditRequest {
    pub id: MessageId,
    pub text: MessageText,
    /// The user asking; only the message's author may.
    pub author: String,
}

/// A deletion to store: the author turns a message into a tombstone.
#[derive(Clone, Debug)]
pub struct DeleteRequest {
    pub id: MessageId,
    pub author: String,
}

/// A deletion's outcome: the tombstone's room, and whether this call made it.
#[derive(Clone, Debug)]
pub struct Removal {
    pub room: String,
    pub message_id: String,
    pub changed: bool,
}

/// Why a change was not made, decided in its transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No such message (for an edit: or it is deleted).
    NotFound,
    /// Someone else wrote it.
    NotAuthor,
    /// A join by a user who is a member of this many rooms, the most allowed.
    TooManyRooms(u64),
}

impl Store {
    /// A page of the room's history, oldest to newest. Cursors must be messages of this room.
    /// The same page asked for by many at once is read once.
    pub async fn history(
        &self,
        room: &RoomRef,
        query: HistoryQuery,
    ) -> Result<HistoryPage, StoreError> {
        let (db, shared_room) = (self.db.clone(), room.clone());
        let read = async move { Ok(history_page(&db, &shared_room, query).await?) };
        self.flights.history.share((room.id, query), read).await
    }
}

pub(super) async fn history_page(
    db: &impl ConnectionTrait,
    room: &RoomRef,
    query: HistoryQuery,
) -> Result<HistoryPage, DbErr> {
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
    let mut rows = select.limit(query.limit + 1).all(db).await?;
    let has_more = rows.len() as u64 > query.limit;
    rows.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
    if !query.is_forward() {
        rows.reverse();
    }
    let messages = rows
        .into_iter()
        .map(|r| to_message(r, &room.name))
        .collect();
    Ok(HistoryPage { messages, has_more })
}

/// The message `id` and its author, if the author is `user_id`; the refusal otherwise.
async fn authored(
    txn: &impl ConnectionTrait,
    id: MessageId,
    user_id: &str,
) -> Result<Result<message::Model, Refusal>, DbErr> {
    let row = message::Entity::find_by_id((id.room_id, id.seq))
        .one(txn)
        .await?;
    Ok(match row {
        None => Err(Refusal::NotFound),
        Some(row) if row.user_id != user_id => Err(Refusal::NotAuthor),
        Some(row) => Ok(row),
    })
}

/// Replaces the text of a live message of its author.
pub(super) async fn edit(
    txn: &impl ConnectionTrait,
    request: &EditRequest,
) -> Result<Result<Message, Refusal>, DbErr> {
    let row = match authored(txn, request.id, &request.author).await? {
        Ok(row) if row.deleted => return Ok(Err(Refusal::NotFound)),
        Ok(row) => row,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let mut row = row.into_active_model();
    row.text = Set(Some(request.text.as_str().to_owned()));
    row.edited_at = Set(Some(now_ms()));
    let row = row.update(txn).await?;
    let name = room_name(txn, row.room_id).await?;
    Ok(Ok(to_message(row, &name)))
}

/// Turns a message of its author into a tombstone: it keeps its place, loses its text.
pub(super) async fn delete(
    txn: &impl ConnectionTrait,
    request: &DeleteRequest,
) -> Result<Result<Removal, Refusal>, DbErr> {
    let row = match authored(txn, request.id, &request.author).await? {
        Ok(row) => row,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let (room_id, changed) = (row.room_id, !row.deleted);
    if changed {
        let mut row = row.into_active_model();
        row.text = Set(None);
        row.deleted = Set(true);
        row.update(txn).await?;
    }
    Ok(Ok(Removal {
        room: room_name(txn, room_id).await?,
        message_id: request.id.to_string(),
        changed,
    }))
}

pub(super) async fn room_name(txn: &impl ConnectionTrait, room_id: i64) -> Result<String, DbErr> {
    room::Entity::find_by_id(room_id)
        .select_only()
        .column(room::Column::Name)
        .into_tuple()
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("room {room_id}")))
}
