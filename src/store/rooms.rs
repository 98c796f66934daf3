//! Rooms: created by the first join, looked up by name or number.

use super::{Store, StoreError, now_ms};
use crate::chat::RoomName;
use entity::room;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

/// A stored room: its number (the first half of its message ids) and its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomRef {
    pub id: i64,
    pub name: String,
}

impl From<room::Model> for RoomRef {
    fn from(row: room::Model) -> Self {
        Self {
            id: row.id,
            name: row.name,
        }
    }
}

/// What a `join` changed.
#[derive(Clone, Debug)]
pub struct Joined {
    pub room: RoomRef,
    /// False when the user was a member already (a repeated join broadcasts nothing).
    pub newly: bool,
}

impl Store {
    /// The room called `name`, if it exists; answered from memory after the first lookup.
    pub async fn room(&self, name: &RoomName) -> Result<Option<RoomRef>, StoreError> {
        if let Some(room) = self.rooms.get(name.as_str()) {
            return Ok(Some(room.clone()));
        }
        let room = find_by_name(&self.db, name).await?;
        if let Some(room) = &room {
            self.rooms.insert(room.name.clone(), room.clone());
        }
        Ok(room)
    }

    /// The room, created if need be: for trusted publishers, who need not be members.
    pub async fn open_room(&self, name: &RoomName) -> Result<RoomRef, StoreError> {
        if let Some(room) = self.room(name).await? {
            return Ok(room);
        }
        let _turn = self.write_turn().await;
        self.ensure_room(&self.db, name).await
    }

    pub(super) async fn room_by_id(
        &self,
        db: &impl ConnectionTrait,
        id: i64,
    ) -> Result<Option<RoomRef>, StoreError> {
        Ok(room::Entity::find_by_id(id)
            .one(db)
            .await?
            .map(RoomRef::from))
    }

    /// The room, created if it does not exist yet. Safe against a concurrent creation.
    pub(super) async fn ensure_room(
        &self,
        db: &impl ConnectionTrait,
        name: &RoomName,
    ) -> Result<RoomRef, StoreError> {
        if let Some(room) = find_by_name(db, name).await? {
            return Ok(room);
        }
        let row = room::ActiveModel {
            name: Set(name.as_str().to_owned()),
            last_seq: Set(0),
            created_at: Set(now_ms()),
            ..Default::default()
        };
        room::Entity::insert(row)
            .on_conflict_do_nothing_on([room::Column::Name])
            .exec_without_returning(db)
            .await?;
        find_by_name(db, name)
            .await?
            .ok_or_else(|| StoreError::Internal(sea_orm::DbErr::RecordNotFound(name.to_string())))
    }
}

async fn find_by_name(
    db: &impl ConnectionTrait,
    name: &RoomName,
) -> Result<Option<RoomRef>, StoreError> {
    Ok(room::Entity::find()
        .filter(room::Column::Name.eq(name.as_str()))
        .one(db)
        .await?
        .map(RoomRef::from))
}
