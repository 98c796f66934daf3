//! Storage: the database and the read pool.

use crate::secret::SecretUrl;

section! {
    #[command(next_help_heading = "Storage")]
    pub struct StorageSettings {
        /// `sqlite://path?mode=rwc`, `sqlite::memory:` or `postgres://…` [default: sqlite://chatoxide.db?mode=rwc].
        #[arg(long, env = "DATABASE_URL")]
        pub database_url: Option<SecretUrl>,
        /// Connections of the read pool (history, members, memberships); the writer has its own one
        /// (two on PostgreSQL) [default: 8 on SQLite, 16 on PostgreSQL].
        #[arg(long, env = "CHATOXIDE_DATABASE_POOL")]
        pub database_pool: Option<u32>,
    }
}

/// Where messages are stored (the [`super::Config`] fields of these names).
pub(super) struct Storage {
    pub database_url: SecretUrl,
    pub database_pool: Option<u32>,
}

impl StorageSettings {
    pub(super) fn resolve(self) -> anyhow::Result<Storage> {
        anyhow::ensure!(
            self.database_pool.is_none_or(|n| (1..=1000).contains(&n)),
            "database_pool must be 1 to 1000"
        );
        Ok(Storage {
            database_url: self
                .database_url
                .unwrap_or_else(|| "sqlite://chatoxide.db?mode=rwc".into()),
            database_pool: self.database_pool,
        })
    }
}
