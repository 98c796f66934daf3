//! A chat room. Created by the first `join`; `last_seq` numbers its messages.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rooms")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The protocol's room name, unique.
    #[sea_orm(unique)]
    pub name: String,
    /// Sequence number of the newest message; bumped in the transaction that stores a message,
    /// so within a room sequence order is commit order.
    pub last_seq: i64,
    /// Members now; changed in the transaction that adds or removes memberships.
    pub member_count: i64,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
