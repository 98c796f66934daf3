//! Schema migrations, applied by the server at start and runnable on their own
//! (`cargo run -p migration -- up`, with `DATABASE_URL` set).

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_chat_tables;
mod m20261129_000001_room_member_count;
mod m20261129_000002_message_room_key;
mod m20261130_000001_outbox;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_chat_tables::Migration),
            Box::new(m20261129_000001_room_member_count::Migration),
            Box::new(m20261129_000002_message_room_key::Migration),
            Box::new(m20261130_000001_outbox::Migration),
        ]
    }
}
