//! Rooms, memberships and messages, with the indexes that keep a history page and the
//! `(user, client_id)` idempotency check to one index range scan each.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Rooms {
    Table,
    Id,
    Name,
    LastSeq,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    RoomId,
    UserId,
    UserName,
    JoinedAt,
    LastReadSeq,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    RoomId,
    Seq,
    UserId,
    UserName,
    Text,
    ClientId,
    CreatedAt,
    EditedAt,
    Deleted,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(rooms()).await?;
        manager.create_table(memberships()).await?;
        manager.create_table(messages()).await?;
        // Reconnect: every room a user belongs to.
        manager
            .create_index(
                Index::create()
                    .name("memberships_user_id")
                    .table(Memberships::Table)
                    .col(Memberships::UserId)
                    .to_owned(),
            )
            .await?;
        // Idempotent retries: one message per (user, client_id); NULL client ids never clash.
        manager
            .create_index(
                Index::create()
                    .name("messages_user_client_id")
                    .table(Messages::Table)
                    .col(Messages::UserId)
                    .col(Messages::ClientId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Messages::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Memberships::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Rooms::Table).to_owned())
            .await
    }
}

fn rooms() -> TableCreateStatement {
    Table::create()
        .table(Rooms::Table)
        .col(
            ColumnDef::new(Rooms::Id)
                .big_integer()
                .not_null()
                .auto_increment()
                .primary_key(),
        )
        .col(
            ColumnDef::new(Rooms::Name)
                .string_len(64)
                .not_null()
                .unique_key(),
        )
        .col(
            ColumnDef::new(Rooms::LastSeq)
                .big_integer()
                .not_null()
                .default(0),
        )
        .col(ColumnDef::new(Rooms::CreatedAt).big_integer().not_null())
        .to_owned()
}

fn memberships() -> TableCreateStatement {
    Table::create()
        .table(Memberships::Table)
        .col(ColumnDef::new(Memberships::RoomId).big_integer().not_null())
        .col(
            ColumnDef::new(Memberships::UserId)
                .string_len(64)
                .not_null(),
        )
        .col(
            ColumnDef::new(Memberships::UserName)
                .string_len(64)
                .not_null(),
        )
        .col(
            ColumnDef::new(Memberships::JoinedAt)
                .big_integer()
                .not_null(),
        )
        .col(
            ColumnDef::new(Memberships::LastReadSeq)
                .big_integer()
                .null(),
        )
        .primary_key(
            Index::create()
                .col(Memberships::RoomId)
                .col(Memberships::UserId),
        )
        .foreign_key(
            ForeignKey::create()
                .from(Memberships::Table, Memberships::RoomId)
                .to(Rooms::Table, Rooms::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}

/// The primary key `(room_id, seq)` is the history index: a page is one range scan.
fn messages() -> TableCreateStatement {
    Table::create()
        .table(Messages::Table)
        .col(ColumnDef::new(Messages::RoomId).big_integer().not_null())
        .col(ColumnDef::new(Messages::Seq).big_integer().not_null())
        .col(ColumnDef::new(Messages::UserId).string_len(64).not_null())
        .col(ColumnDef::new(Messages::UserName).string_len(64).not_null())
        .col(ColumnDef::new(Messages::Text).text().null())
        .col(ColumnDef::new(Messages::ClientId).string_len(64).null())
        .col(ColumnDef::new(Messages::CreatedAt).big_integer().not_null())
        .col(ColumnDef::new(Messages::EditedAt).big_integer().null())
        .col(
            ColumnDef::new(Messages::Deleted)
                .boolean()
                .not_null()
                .default(false),
        )
        .primary_key(Index::create().col(Messages::RoomId).col(Messages::Seq))
        .foreign_key(
            ForeignKey::create()
                .from(Messages::Table, Messages::RoomId)
                .to(Rooms::Table, Rooms::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}
