//! The outbox: the room events a broker is to be told of (`CHATOXIDE_OUTBOX_URL`), written in
//! the transaction that stores their changes, so that an event exists if and only if its change
//! committed; read in order by the relay (src/outbox/), deleted once the broker confirmed them.
//! One node at a time relays: it holds a lease, a row it renews, which another node takes once
//! it has expired.

use super::{Store, StoreError, now_ms};
use crate::chat::{Kind, RoomEvent};
use entity::outbox;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// An event the broker has not confirmed yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsent {
    /// Its place in the order of publication, and its part in its stable id.
    pub seq: i64,
    pub event: RoomEvent,
    /// When its change committed, in Unix milliseconds.
    pub created_at: i64,
}

/// Whether this store keeps an outbox, and the relay's wake-up after a commit that wrote to it.
#[derive(Clone, Debug, Default)]
pub(super) struct OutboxSwitch {
    on: Arc<AtomicBool>,
    written: Arc<Notify>,
}

impl Store {
    /// From now on every stored message, edit and delete is also written to the outbox (before
    /// the writer starts: at startup, when `CHATOXIDE_OUTBOX_URL` is set).
    pub fn keep_outbox(&self) {
        self.outbox.on.store(true, Ordering::SeqCst);
    }

    pub(super) fn keeps_outbox(&self) -> bool {
        self.outbox.on.load(Ordering::Relaxed)
    }

    /// Resolves after a commit that wrote to the outbox (or at once if one did since the last).
    pub async fn outbox_written(&self) {
        self.outbox.written.notified().await;
    }

    pub(super) fn wrote_outbox(&self) {
        self.outbox.written.notify_one();
    }

    /// The oldest `limit` events the broker has not confirmed, in order.
    pub async fn unsent(&self, limit: u64) -> Result<Vec<Unsent>, StoreError> {
        let rows = outbox::Entity::find()
            .order_by_asc(outbox::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().filter_map(unsent).collect())
    }

    /// Forgets events the broker confirmed.
    pub async fn sent(&self, seqs: &[i64]) -> Result<(), StoreError> {
        if seqs.is_empty() {
            return Ok(());
        }
        outbox::Entity::delete_many()
            .filter(outbox::Column::Id.is_in(seqs.iter().copied()))
            .exec(&self.writes)
            .await?;
        Ok(())
    }

    /// Takes or renews the relay's lease for `holder` until `ttl` from now: true if `holder`
    /// holds it (it held it, or the last holder's expired), false if another node does.
    pub async fn lease_outbox(&self, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = now_ms();
        let until = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let backend = self.backend();
        let (a, b, c, d) = match backend {
            DbBackend::Postgres => ("$1", "$2", "$3", "$4"),
            _ => ("?", "?", "?", "?"),
        };
        // One statement, atomic on both databases: a row that does not exist is made; one that
        // does is taken only by its holder or once it has expired.
        let sql = format!(
            "INSERT INTO outbox_lease (name, holder, expires_at) VALUES ({a}, {b}, {c}) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE outbox_lease.holder = excluded.holder OR outbox_lease.expires_at < {d}"
        );
        let statement = Statement::from_sql_and_values(
            backend,
            sql,
            [LEASE.into(), holder.into(), until.into(), now.into()],
        );
        let done = self.writes.execute_raw(statement).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Lets the lease go (at shutdown), so that another node takes over at once.
    pub async fn release_outbox(&self, holder: &str) -> Result<(), StoreError> {
        let backend = self.backend();
        let (a, b) = match backend {
            DbBackend::Postgres => ("$1", "$2"),
            _ => ("?", "?"),
        };
        let sql = format!("DELETE FROM outbox_lease WHERE name = {a} AND holder = {b}");
        let statement = Statement::from_sql_and_values(backend, sql, [LEASE.into(), holder.into()]);
        self.writes.execute_raw(statement).await?;
        Ok(())
    }

    /// When the oldest unconfirmed event committed, if there is one.
    pub async fn oldest_unsent(&self) -> Result<Option<i64>, StoreError> {
        let oldest = outbox::Entity::find()
            .order_by_asc(outbox::Column::Id)
            .one(&self.db)
            .await?;
        Ok(oldest.map(|row| row.created_at))
    }
}

/// The lease's one row.
const LEASE: &str = "relay";

/// Writes `events` to the outbox in the writer's transaction, in order.
pub(super) async fn record(txn: &DatabaseTransaction, events: &[RoomEvent]) -> Result<(), DbErr> {
    let now = now_ms();
    for chunk in statements(events, txn.get_database_backend()) {
        let rows = chunk.iter().map(|e| outbox::ActiveModel {
            id: NotSet,
            room: Set(e.room.clone()),
            event: Set(e.kind.event().to_owned()),
            message_id: Set(e.id.clone()),
            payload: Set(e.data.clone()),
            created_at: Set(now),
        });
        outbox::Entity::insert_many(rows).exec(txn).await?;
    }
    Ok(())
}

/// Bytes of one PostgreSQL statement: under sqlx's 8 KiB write buffer, so that it goes out in
/// one piece (a statement in pieces waits 40 ms for a delayed ACK, see `rows_per_insert` in
/// batch.rs). Measured: 100 rows a statement (about 40 KB) took a loaded writer from 23,000 to
/// 2,000 messages a second (`bench/run.sh outbox`).
const STATEMENT_BYTES: usize = 7 * 1024;

/// `events` cut into the rows of one statement each: on PostgreSQL as many as fit in
/// [`STATEMENT_BYTES`] (at least one), on SQLite (in process) up to 100.
fn statements(events: &[RoomEvent], backend: DbBackend) -> Vec<&[RoomEvent]> {
    let mut chunks = Vec::new();
    let mut rest = events;
    while !rest.is_empty() {
        let mut take = 0;
        let mut bytes = 0;
        for event in rest.iter().take(100) {
            // The row's values and the statement's share of names and placeholders.
            bytes += event.data.len() + event.room.len() + event.id.len() + 64;
            if take > 0 && backend == DbBackend::Postgres && bytes > STATEMENT_BYTES {
                break;
            }
            take += 1;
        }
        let (chunk, later) = rest.split_at(take);
        chunks.push(chunk);
        rest = later;
    }
    chunks
}

fn unsent(row: outbox::Model) -> Option<Unsent> {
    let Some(kind) = Kind::named(&row.event) else {
        tracing::error!(seq = row.id, event = %row.event, "an outbox row of no known event");
        return None;
    };
    Some(Unsent {
        seq: row.id,
        event: RoomEvent {
            room: row.room,
            kind,
            id: row.message_id,
            data: row.payload,
        },
        created_at: row.created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Kind;

    fn event(bytes: usize) -> RoomEvent {
        RoomEvent {
            room: "general".to_owned(),
            kind: Kind::Message,
            id: "0000000000000001000000000000002a".to_owned(),
            data: "x".repeat(bytes),
        }
    }

    #[test]
    fn postgres_statements_stay_under_the_write_buffer_and_sqlite_ones_take_a_hundred() {
        let events: Vec<_> = (0..250).map(|_| event(300)).collect();
        let pg = statements(&events, DbBackend::Postgres);
        assert!(
            pg.iter()
                .all(|c| c.len() * (300 + 7 + 32 + 64) <= STATEMENT_BYTES)
        );
        assert_eq!(pg.iter().map(|c| c.len()).sum::<usize>(), 250);
        let sqlite = statements(&events, DbBackend::Sqlite);
        assert_eq!(
            sqlite.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [100, 100, 50]
        );
        let large = [event(20_000), event(10)];
        assert_eq!(
            statements(&large, DbBackend::Postgres).len(),
            2,
            "a large row alone"
        );
        assert!(statements(&[], DbBackend::Postgres).is_empty());
    }
}
