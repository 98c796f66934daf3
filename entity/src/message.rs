//! A stored message, identified by `(room_id, seq)`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub room_id: i64,
    /// Position in the room, from `rooms.last_seq`: dense and in commit order.
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub user_id: String,
    pub user_name: String,
    /// `None` once the message is deleted (the row stays as a tombstone).
    pub text: Option<String>,
    /// The sender's idempotency key; unique per `user_id`.
    pub client_id: Option<String>,
    /// A relay rule's idempotency key; unique per `room_id`, whoever sends it.
    pub room_key: Option<String>,
    pub created_at: i64,
    pub edited_at: Option<i64>,
    pub deleted: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
