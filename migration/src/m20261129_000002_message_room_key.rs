//! A message's room key: an idempotency key that is unique within its room, whoever sends it.
//!
//! The contract's `client_id` is unique per author. A Node app's frontend may instead make its
//! own key (the Socket.IO tutorial's `clientOffset`) and retry with it from a new connection,
//! where a guest is somebody new: relay rules with `key_argument` store that key here, and a
//! retry in the same room finds the first message whoever sends it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Messages {
    Table,
    RoomId,
    RoomKey,
}

const INDEX: &str = "messages_room_key";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(ColumnDef::new(Messages::RoomKey).string().null())
                    .to_owned(),
            )
            .await?;
        // NULL keys (every message not stored by such a rule) never clash.
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Messages::Table)
                    .col(Messages::RoomId)
                    .col(Messages::RoomKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(INDEX).table(Messages::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .drop_column(Messages::RoomKey)
                    .to_owned(),
            )
            .await
    }
}
