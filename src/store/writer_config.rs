//! How the writer batches and how long a change may wait: what the writer and each commit
//! read, apart from both.

use std::time::Duration;

/// How the writer batches and how long a change may wait.
#[derive(Clone, Copy, Debug)]
pub struct WriterConfig {
    /// Most changes in one transaction.
    pub max_batch: usize,
    /// How long to wait for more changes once one is there (0: take what has queued up while
    /// the previous commit ran; tokio's timers are 1 ms coarse).
    pub max_wait: Duration,
    /// Changes that may wait for the writer; past that, they are refused at once.
    pub queue: usize,
    /// A change that waited longer than this is refused rather than made late.
    pub queue_deadline: Duration,
    /// A sender whose change is not committed this long after it left the queue is answered
    /// `Stalled` (the commit goes on; a retry finds out).
    pub commit_timeout: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_batch: 512,
            max_wait: Duration::ZERO,
            queue: 8192,
            // Long enough for a crowd: 5,000 joins at once commit within 1.5 s here (release),
            // so a burst several times that is served rather than refused.
            queue_deadline: Duration::from_secs(5),
            commit_timeout: Duration::from_secs(5),
        }
    }
}
