//! Opening the database: a pool for reads and one for the writer, SQLite's durability settings,
//! migrations.

use super::flight::Flights;
use super::outbox::OutboxSwitch;
use super::{RoomRef, StoreError};
use dashmap::DashMap;
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A cheap handle on the database, shared by every task.
///
/// Reads and writes have pools of their own: the writer (store/writer.rs) is the only user of
/// `writes`, so SQLite never sees two writers from this process and PostgreSQL never more
/// connections than the two pools hold, however many commands arrive at once; a burst of reads
/// waits for a read connection and never for the writer.
#[derive(Clone, Debug)]
pub struct Store {
    /// Reads: history, members, memberships, rooms. Nothing is written through it.
    pub(super) db: DatabaseConnection,
    /// The writer's connection (the import's too, which runs without a server).
    pub(super) writes: DatabaseConnection,
    /// Rooms by name. A room's number never changes once created, so entries never go stale.
    pub(super) rooms: Arc<DashMap<String, RoomRef>>,
    /// Reads that are in flight, so that identical ones arriving meanwhile share them.
    pub(super) flights: Flights,
    /// Told the rooms where messages were stored, after each commit.
    pub(super) watch: StoredWatch,
    /// Whether changes are also written to the outbox (store/outbox.rs).
    pub(super) outbox: OutboxSwitch,
}

/// Who is told, after each commit, in which rooms messages were stored: whatever stored them
/// (a command, a relay rule, the HTTP route), in one place.
#[derive(Clone, Default)]
pub(super) struct StoredWatch(Arc<OnceLock<Watcher>>);

/// Told the name of a room where messages were stored.
type Watcher = Box<dyn Fn(&str) + Send + Sync>;

impl std::fmt::Debug for StoredWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "StoredWatch(set)"
        } else {
            "StoredWatch"
        })
    }
}

impl Store {
    /// Has `watcher` told, after each commit, the name of every room where messages were
    /// stored (once per room and commit). One watcher per store; a second is refused.
    pub fn watch_stored(&self, watcher: impl Fn(&str) + Send + Sync + 'static) -> bool {
        self.watch.0.set(Box::new(watcher)).is_ok()
    }

    /// Tells the watcher, if any, that messages were stored in `rooms`.
    pub(super) fn stored_in<'a>(&self, rooms: impl IntoIterator<Item = &'a str>) {
        if let Some(watcher) = self.watch.0.get() {
            let rooms: std::collections::BTreeSet<&str> = rooms.into_iter().collect();
            rooms.into_iter().for_each(watcher);
        }
    }
}

/// Which of the two pools a connection belongs to; the read pool's size, if configured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pool {
    Reads(Option<u32>),
    Writes,
}

impl Store {
    /// Connects, applies pending migrations, and returns the store.
    ///
    /// SQLite runs in WAL mode with `synchronous = FULL`: a committed transaction survives a
    /// crash of the process and of the machine; readers never wait for the writer.
    /// `sqlite::memory:` is one connection for both (each connection to it would be a
    /// database of its own).
    ///
    /// `reads` sizes the read pool (default: 8 on SQLite, 16 on PostgreSQL); the writer's pool
    /// is one connection (two on PostgreSQL).
    pub async fn open(url: &str, reads: Option<u32>) -> Result<Self, StoreError> {
        let writes = connect_and_migrate(options(url, Pool::Writes)).await?;
        let db = if is_in_memory(url) {
            writes.clone()
        } else {
            Database::connect(options(url, Pool::Reads(reads))).await?
        };
        Ok(Self {
            db,
            writes,
            rooms: Arc::default(),
            flights: Flights::default(),
            watch: StoredWatch::default(),
            outbox: OutboxSwitch::default(),
        })
    }

    /// A round trip to the database, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.db.ping().await?)
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): a
    /// transaction that reads first and writes later cannot wait for another process writing
    /// the same file, it fails at once; one that begins as a writer waits its turn.
    pub(super) async fn begin_write(&self) -> Result<DatabaseTransaction, DbErr> {
        self.writes
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
    }

    /// Closes both pools after the last write, so SQLite checkpoints its WAL.
    pub async fn close(self) {
        if let Err(err) = self.db.close().await {
            tracing::warn!(error = %err, "closing the database (reads)");
        }
        if let Err(err) = self.writes.close().await {
            tracing::warn!(error = %err, "closing the database (writes)");
        }
    }
}

fn is_in_memory(url: &str) -> bool {
    url.starts_with("sqlite:") && (url.contains(":memory:") || url.contains("mode=memory"))
}

/// Pool sizes: the writer needs one connection (PostgreSQL two while migrating: the advisory
/// lock's transaction holds one); reads get eight on SQLite (WAL readers run side by side) and
/// sixteen on PostgreSQL.
fn options(url: &str, pool: Pool) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        let size = match pool {
            _ if is_in_memory(url) => 1,
            Pool::Writes => 1,
            Pool::Reads(size) => size.unwrap_or(8),
        };
        options
            .max_connections(size)
            .min_connections(1)
            .idle_timeout(None::<Duration>)
            .max_lifetime(None::<Duration>)
            .map_sqlx_sqlite_opts(sqlite_durability);
    } else {
        let size = match pool {
            Pool::Writes => 2,
            Pool::Reads(size) => size.unwrap_or(16),
        };
        options.max_connections(size).min_connections(1);
    }
    options
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
