//! The outbox (issue 20): the room events (`message`, `message_updated`, `message_deleted`) a
//! broker is to be told of, written in the transaction that stores them and deleted once the
//! broker confirmed them; and the lease that lets one node at a time publish them.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    Room,
    Event,
    MessageId,
    Payload,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OutboxLease {
    Table,
    Name,
    Holder,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(
                        ColumnDef::new(Outbox::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Outbox::Room).string_len(64).not_null())
                    .col(ColumnDef::new(Outbox::Event).string_len(32).not_null())
                    .col(ColumnDef::new(Outbox::MessageId).string_len(32).not_null())
                    .col(ColumnDef::new(Outbox::Payload).text().not_null())
                    .col(ColumnDef::new(Outbox::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OutboxLease::Table)
                    .col(
                        ColumnDef::new(OutboxLease::Name)
                            .string_len(32)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(OutboxLease::Holder)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OutboxLease::ExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OutboxLease::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await
    }
}
