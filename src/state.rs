//! The state every handler shares: one Clone struct of cheap handles.

use crate::chat::{ChatError, ErrorCode, TextLimit};
use crate::identity::Authenticator;
use crate::limits::RateLimits;
use crate::presence::Presence;
use crate::rules::Rules;
use crate::store::{Store, Writer};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::task::TaskTracker;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Stores messages in batches; the only way a message is stored.
    pub writer: Writer,
    pub auth: Authenticator,
    pub presence: Presence,
    pub limits: RateLimits,
    pub text_limit: TextLimit,
    /// Relay rules for legacy frontends.
    pub rules: Rules,
    /// The longest a command may take before it is answered `unavailable`.
    pub command_deadline: Duration,
    /// Commands being served; shutdown waits for them.
    pub in_flight: TaskTracker,
    /// Set when shutdown begins: new commands and handshakes are refused from then on.
    draining: Arc<AtomicBool>,
}

impl AppState {
    pub fn new(
        store: Store,
        writer: Writer,
        auth: Authenticator,
        presence: Presence,
        limits: RateLimits,
        text_limit: TextLimit,
        command_deadline: Duration,
    ) -> Self {
        Self {
            rules: Rules::default(),
            command_deadline,
            store,
            writer,
            auth,
            presence,
            limits,
            text_limit,
            in_flight: TaskTracker::new(),
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The same state, serving these relay rules.
    pub fn with_rules(self, rules: Rules) -> Self {
        Self { rules, ..self }
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// `unavailable` once shutdown has begun.
    pub fn ensure_serving(&self) -> Result<(), ChatError> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(ChatError::new(
                ErrorCode::Unavailable,
                "the server is shutting down; reconnect and retry",
            ));
        }
        Ok(())
    }
}
