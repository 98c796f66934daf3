//! Rooms: created by the first join (or a trusted publisher's first message), looked up by name.

use super::{Store, StoreError, now_ms};
use crate::chat::RoomName;
use entity::room;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use std::collections::{BTreeSet, HashMap};

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

impl Store {
    /// The room called `name`, if it exists: from memory after the first lookup, and one read
    /// for all the lookups of a name that arrive together.
    pub async fn room(&self, name: &RoomName) -> Result<Option<RoomRef>, StoreError> {
        if let Some(room) = self.rooms.get(name.as_str()) {
            return Ok(Some(room.clone()));
        }
        let (db, key) = (self.db.clone(), name.as_str().to_owned());
        let read = async move { Ok(find_by_names(&db, [key.as_str()]).await?.pop()) };
        let room = self
            .flights
            .rooms
            .share(name.as_str().to_owned(), read)
            .await?;
        if let Some(room) = &room {
            self.remember(room);
        }
        Ok(room)
    }

    /// The room, created if need be, outside the writer: for the import, which runs without
    /// a server.
    pub async fn open_room(&self, name: &RoomName) -> Result<RoomRef, StoreError> {
        if let Some(room) = self.room(name).await? {
            return Ok(room);
        }
        let txn = self.begin_write().await?;
        let rooms = self.ensure_rooms(&txn, [name.as_str()].into()).await?;
        txn.commit().await?;
        let room = rooms
            .get(name.as_str())
            .cloned()
            .ok_or_else(|| StoreError::Internal(DbErr::RecordNotFound(name.to_string())))?;
        self.remember(&room);
        Ok(room)
    }

    pub(super) fn remember(&self, room: &RoomRef) {
        self.rooms.insert(room.name.clone(), room.clone());
    }

    /// The rooms called `names`, created where they do not exist yet, in the writer's
    /// transaction: one read for the names not known here, one insert for the new ones.
    /// Safe against a concurrent creation (another node, another process). Nothing is
    /// remembered here: a room created by a transaction that rolls back does not exist.
    pub(super) async fn ensure_rooms(
        &self,
        txn: &impl ConnectionTrait,
        names: BTreeSet<&str>,
    ) -> Result<HashMap<String, RoomRef>, DbErr> {
        let mut rooms = HashMap::with_capacity(names.len());
        let mut unknown = Vec::new();
        for name in names {
            match self.rooms.get(name) {
                Some(room) => {
                    rooms.insert(name.to_owned(), room.clone());
                }
                None => unknown.push(name),
            }
        }
        if unknown.is_empty() {
            return Ok(rooms);
        }
        let found = find_by_names(txn, unknown.iter().copied()).await?;
        let missing: Vec<&str> = unknown
            .iter()
            .copied()
            .filter(|n| !found.iter().any(|r| r.name == *n))
            .collect();
        let created = if missing.is_empty() {
            Vec::new()
        } else {
            let now = now_ms();
            let rows = missing.iter().map(|name| room::ActiveModel {
                name: Set((*name).to_owned()),
                last_seq: Set(0),
                member_count: Set(0),
                created_at: Set(now),
                ..Default::default()
            });
            room::Entity::insert_many(rows)
                .on_conflict_do_nothing_on([room::Column::Name])
                .exec_without_returning(txn)
                .await?;
            find_by_names(txn, missing.iter().copied()).await?
        };
        for room in found.into_iter().chain(created) {
            rooms.insert(room.name.clone(), room);
        }
        Ok(rooms)
    }
}

/// A stored count, as the protocol gives it.
pub(super) fn count_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

async fn find_by_names<'a>(
    db: &impl ConnectionTrait,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<RoomRef>, DbErr> {
    Ok(room::Entity::find()
        .filter(room::Column::Name.is_in(names))
        .all(db)
        .await?
        .into_iter()
        .map(RoomRef::from)
        .collect())
}
