//! A room event waiting for the broker (the outbox): written with the change it tells of,
//! deleted once the broker confirmed it. `id` is the order of publication.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub room: String,
    /// `message`, `message_updated` or `message_deleted`.
    pub event: String,
    pub message_id: String,
    /// The JSON of the Socket.IO event's argument.
    pub payload: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
