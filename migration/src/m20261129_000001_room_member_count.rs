//! A room's member count, kept beside its sequence counter: the writer changes it in the
//! transaction that adds or removes memberships, so a `join` answers the count of its own
//! commit, and large rooms are told apart without counting their members.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Rooms {
    Table,
    Id,
    MemberCount,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    RoomId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Rooms::Table)
                    .add_column(
                        ColumnDef::new(Rooms::MemberCount)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        // Rooms created before this migration: their count from their memberships.
        let count = Query::select()
            .expr(Expr::col((Memberships::Table, Memberships::RoomId)).count())
            .from(Memberships::Table)
            .and_where(
                Expr::col((Memberships::Table, Memberships::RoomId))
                    .equals((Rooms::Table, Rooms::Id)),
            )
            .to_owned();
        manager
            .exec_stmt(
                Query::update()
                    .table(Rooms::Table)
                    .value(
                        Rooms::MemberCount,
                        SimpleExpr::SubQuery(None, Box::new(count.into_sub_query_statement())),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Rooms::Table)
                    .drop_column(Rooms::MemberCount)
                    .to_owned(),
            )
            .await
    }
}
