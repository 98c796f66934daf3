//! Opening the database: pool settings per backend, SQLite's durability settings, migrations.

use super::{RoomRef, StoreError};
use dashmap::DashMap;
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr,
    TransactionTrait,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard};

/// A cheap handle on the database, shared by every task.
#[derive(Clone, Debug)]
pub struct Store {
    pub(super) db: DatabaseConnection,
    /// Held while a SQLite write transaction is open: SQLite has one writer at a time, and
    /// queueing here is cheaper and fairer than its busy-retry loop.
    write_gate: Option<Arc<Mutex<()>>>,
    /// Rooms by name. A room's number never changes once created, so entries never go stale.
    pub(super) rooms: Arc<DashMap<String, RoomRef>>,
}

impl Store {
    /// Connects, applies pending migrations, and returns the store.
    ///
    /// SQLite runs in WAL mode with `synchronous = FULL`: a committed transaction survives a
    /// crash of the process and of the machine. `sqlite::memory:` is one connection (each
    /// connection to it would be a database of its own).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(5))
            .sqlx_logging(false);
        let sqlite = url.starts_with("sqlite:");
        if sqlite {
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            options
                .max_connections(if in_memory { 1 } else { 8 })
                .min_connections(1)
                .idle_timeout(None::<Duration>)
                .max_lifetime(None::<Duration>)
                .map_sqlx_sqlite_opts(sqlite_durability);
        } else {
            options.max_connections(16).min_connections(1);
        }
        let db = connect_and_migrate(options).await?;
        let write_gate = sqlite.then(|| Arc::new(Mutex::new(())));
        Ok(Self {
            db,
            write_gate,
            rooms: Arc::default(),
        })
    }

    /// A round trip to the database, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.db.ping().await?)
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Serialises writers where the database needs it (SQLite); free elsewhere.
    pub(super) async fn write_turn(&self) -> Option<MutexGuard<'_, ()>> {
        match &self.write_gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        }
    }

    /// Closes the pool after the last write, so SQLite checkpoints its WAL.
    pub async fn close(self) {
        if let Err(err) = self.db.close().await {
            tracing::warn!(error = %err, "closing the database");
        }
    }
}

/// Connects and migrates. A SQLite file that another connection or process is switching to WAL
/// or migrating answers "database is locked" without waiting: that is retried a few times.
async fn connect_and_migrate(options: ConnectOptions) -> Result<DatabaseConnection, StoreError> {
    let mut attempt = 1;
    loop {
        let opened = match Database::connect(options.clone()).await {
            Ok(db) => migrate(&db).await.map(|()| db),
            Err(err) => Err(err),
        };
        match opened {
            Err(err) if attempt < 5 && err.to_string().contains("database is locked") => {
                tracing::debug!(error = %err, attempt, "the database is locked; opening again");
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                attempt += 1;
            }
            opened => return Ok(opened?),
        }
    }
}

/// Applies pending migrations. Cluster nodes often start together on a new database: on
/// PostgreSQL they take turns under an advisory lock, held by a transaction for as long as the
/// migrations run, so one node migrates and the others find the work done.
async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Migrator::up(db, None).await;
    }
    let turn = db.begin().await?;
    turn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        .await?;
    Migrator::up(db, None).await?;
    turn.commit().await
}

/// The advisory lock key of migrations: "chatoxi" in ASCII, as a number.
const MIGRATION_LOCK: i64 = 0x63_6861_746f_7869;

fn sqlite_durability(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true)
}
