//! The writer: how changes are batched into transactions, and how long they may wait
//! (docs/durability.md).

use crate::store::WriterConfig;
use std::time::Duration;

section! {
    #[command(next_help_heading = "Writer")]
    pub struct WriterSettings {
        /// Most changes (messages, joins, leaves, read marks, edits, deletes) committed in one
        /// transaction [default: 512].
        #[arg(long, env = "CHATOXIDE_WRITE_BATCH_MAX")]
        pub write_batch_max: Option<usize>,
        /// Microseconds the writer waits for more changes before committing; 0 commits what has
        /// queued up during the previous commit [default: 0].
        #[arg(long, env = "CHATOXIDE_WRITE_BATCH_WAIT_US")]
        pub write_batch_wait_us: Option<u64>,
        /// Changes that may wait for the writer; past that a command answers `unavailable` at once [default: 8192].
        #[arg(long, env = "CHATOXIDE_WRITE_QUEUE")]
        pub write_queue: Option<usize>,
        /// Milliseconds a change may wait in the writer's queue before it is refused [default: 5000].
        #[arg(long, env = "CHATOXIDE_WRITE_DEADLINE_MS")]
        pub write_deadline_ms: Option<u64>,
        /// Milliseconds a commit may take before its senders get `unavailable` [default: 5000].
        #[arg(long, env = "CHATOXIDE_COMMIT_TIMEOUT_MS")]
        pub commit_timeout_ms: Option<u64>,
    }
}

impl WriterSettings {
    pub(super) fn resolve(self) -> anyhow::Result<WriterConfig> {
        let d = WriterConfig::default();
        let config = WriterConfig {
            max_batch: self.write_batch_max.unwrap_or(d.max_batch),
            max_wait: (self.write_batch_wait_us).map_or(d.max_wait, Duration::from_micros),
            queue: self.write_queue.unwrap_or(d.queue),
            queue_deadline: (self.write_deadline_ms)
                .map_or(d.queue_deadline, Duration::from_millis),
            commit_timeout: (self.commit_timeout_ms)
                .map_or(d.commit_timeout, Duration::from_millis),
        };
        anyhow::ensure!(
            (1..=10_000).contains(&config.max_batch),
            "write_batch_max must be 1 to 10000"
        );
        anyhow::ensure!(
            !config.queue_deadline.is_zero(),
            "write_deadline_ms must be at least 1"
        );
        anyhow::ensure!(
            !config.commit_timeout.is_zero(),
            "commit_timeout_ms must be at least 1"
        );
        anyhow::ensure!(config.queue > 0, "write_queue must be at least 1");
        Ok(config)
    }
}
