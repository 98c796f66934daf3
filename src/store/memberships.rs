//! Memberships: a fact about a user, not a socket. Joined until left, on every device and node.
//!
//! Reads run on the read pool; changes run in the writer's transaction (store/commit.rs), many
//! at a time, and keep each room's `member_count` in step.

use super::{RoomRef, Store, StoreError};
use crate::chat::{MemberPage, MemberQuery, Message, MessageId, RoomName, User};
use entity::{membership, room};
use sea_orm::sea_query::Query;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use std::sync::Arc;

/// A `join` to store: the room is created if need be.
#[derive(Clone, Debug)]
pub struct JoinRequest {
    pub room: RoomName,
    pub user: User,
    /// Set: the reply carries the messages stored after this one, before the join.
    pub since: Option<MessageId>,
    /// Set: a user who is a member of this many rooms may not join another.
    pub max_rooms: Option<u64>,
}

/// A stored join, with what its reply carries, read in the transaction that stored it.
#[derive(Clone, Debug)]
pub struct Joined {
    pub room: RoomRef,
    /// False when the user was a member already (a repeated join tells no one).
    pub newly: bool,
    /// The first members in id order (at most [`crate::chat::MEMBERS_IN_REPLY`]), shared by
    /// the joins of one room in one batch.
    pub members: Arc<[User]>,
    pub member_count: u64,
    /// With `since`: the messages after it, at most 100, oldest first.
    pub missed: Option<Vec<Message>>,
}

/// A `leave` to store.
#[derive(Clone, Debug)]
pub struct LeaveRequest {
    pub room: RoomRef,
    pub user_id: String,
}

/// A stored leave.
#[derive(Clone, Debug)]
pub struct Left {
    pub room: RoomRef,
    pub member_count: u64,
}

/// A read mark to store: the user has read the room up to `message`.
#[derive(Clone, Debug)]
pub struct ReadMark {
    pub room: RoomRef,
    pub user_id: String,
    pub message: MessageId,
}

/// A stored read mark.
#[derive(Clone, Copy, Debug)]
pub struct Marked {
    pub member_count: u64,
}

impl Store {
    /// The room, if `user_id` is a member of it.
    pub async fn membership(
        &self,
        room: &RoomName,
        user_id: &str,
    ) -> Result<Option<RoomRef>, StoreError> {
        let Some(room) = self.room(room).await? else {
            return Ok(None);
        };
        let member = membership::Entity::find_by_id((room.id, user_id.to_owned()))
            .one(&self.db)
            .await?;
        Ok(member.map(|_| room))
    }

    /// A page of the room's members, in user id order; one read for the callers that ask for
    /// the same page together (a crowd joining, or coming back, asks for the first).
    pub async fn members(
        &self,
        room_id: i64,
        query: &MemberQuery,
    ) -> Result<MemberPage, StoreError> {
        let (db, shared) = (self.db.clone(), query.clone());
        let read = async move { Ok(members_page(&db, room_id, &shared).await?) };
        self.flights
            .member_pages
            .share((room_id, query.clone()), read)
            .await
    }

    /// Every member of the room in user id order; one read for the callers that ask together.
    pub async fn all_members(&self, room_id: i64) -> Result<Vec<User>, StoreError> {
        let db = self.db.clone();
        let read = async move {
            let rows = membership::Entity::find()
                .filter(membership::Column::RoomId.eq(room_id))
                .order_by_asc(membership::Column::UserId)
                .all(&db)
                .await?;
            Ok(rows.into_iter().map(user_of).collect())
        };
        self.flights.all_members.share(room_id, read).await
    }

    /// The names of every room the user has joined and not left.
    pub async fn rooms_of(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let mine = Query::select()
            .column(membership::Column::RoomId)
            .from(membership::Entity)
            .and_where(membership::Column::UserId.eq(user_id))
            .to_owned();
        Ok(room::Entity::find()
            .select_only()
            .column(room::Column::Name)
            .filter(room::Column::Id.in_subquery(mine))
            .into_tuple()
            .all(&self.db)
            .await?)
    }
}

fn user_of(row: membership::Model) -> User {
    User {
        id: row.user_id,
        name: row.user_name,
    }
}

/// A page of a room's members: one range of the `(room_id, user_id)` key.
pub(super) async fn members_page(
    db: &impl ConnectionTrait,
    room_id: i64,
    query: &MemberQuery,
) -> Result<MemberPage, DbErr> {
    let mut select = membership::Entity::find().filter(membership::Column::RoomId.eq(room_id));
    if let Some(after) = &query.after {
        select = select.filter(membership::Column::UserId.gt(after.as_str()));
    }
    let mut rows = select
        .order_by_asc(membership::Column::UserId)
        .limit(query.limit + 1)
        .all(db)
        .await?;
    let has_more = rows.len() as u64 > query.limit;
    rows.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
    Ok(MemberPage {
        members: rows.into_iter().map(user_of).collect(),
        has_more,
    })
}
