//! Memberships: a fact about a user, not a socket. Joined until left, on every device and node.

use super::{Joined, RoomRef, Store, StoreError, now_ms};
use crate::chat::{RoomName, User};
use entity::{membership, room};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait, TryInsertResult,
};

impl Store {
    /// Makes `user` a member of `room`, creating the room on first use.
    pub async fn join(&self, room: &RoomName, user: &User) -> Result<Joined, StoreError> {
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await?;
        let room = self.ensure_room(&txn, room).await?;
        let row = membership::ActiveModel {
            room_id: Set(room.id),
            user_id: Set(user.id.clone()),
            user_name: Set(user.name.clone()),
            joined_at: Set(now_ms()),
            last_read_seq: Set(None),
        };
        let inserted = membership::Entity::insert(row)
            .on_conflict_do_nothing_on([membership::Column::RoomId, membership::Column::UserId])
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        let newly = matches!(inserted, TryInsertResult::Inserted(n) if n > 0);
        Ok(Joined { room, newly })
    }

    /// Ends the membership; `None` when the user was not a member.
    pub async fn leave(
        &self,
        room: &RoomName,
        user_id: &str,
    ) -> Result<Option<RoomRef>, StoreError> {
        let Some(room) = self.room(room).await? else {
            return Ok(None);
        };
        let _turn = self.write_turn().await;
        let deleted = membership::Entity::delete_many()
            .filter(membership::Column::RoomId.eq(room.id))
            .filter(membership::Column::UserId.eq(user_id))
            .exec(&self.db)
            .await?;
        Ok((deleted.rows_affected > 0).then_some(room))
    }

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

    /// How many rooms `user_id` is a member of.
    pub async fn membership_count(&self, user_id: &str) -> Result<u64, StoreError> {
        Ok(membership::Entity::find()
            .filter(membership::Column::UserId.eq(user_id))
            .count(&self.db)
            .await?)
    }

    /// Every member of the room, in the order they joined.
    pub async fn members(&self, room_id: i64) -> Result<Vec<User>, StoreError> {
        let rows = membership::Entity::find()
            .filter(membership::Column::RoomId.eq(room_id))
            .order_by_asc(membership::Column::JoinedAt)
            .order_by_asc(membership::Column::UserId)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|m| User {
                id: m.user_id,
                name: m.user_name,
            })
            .collect())
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

    /// Moves the user's read mark forward to `seq` (never back).
    pub async fn mark_read(&self, room_id: i64, user_id: &str, seq: i64) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        membership::Entity::update_many()
            .col_expr(membership::Column::LastReadSeq, Expr::val(seq))
            .filter(membership::Column::RoomId.eq(room_id))
            .filter(membership::Column::UserId.eq(user_id))
            .filter(
                Condition::any()
                    .add(membership::Column::LastReadSeq.is_null())
                    .add(membership::Column::LastReadSeq.lt(seq)),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
