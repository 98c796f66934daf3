//! Answering a command: through its acknowledgement if the client asked for one, else through
//! an `error` event when it failed, so that no failure passes in silence. Counted in metrics.

use super::args::Args;
use super::protocol::{Failure, Nothing, Success, event};
use super::socket_user::{user_label, user_of};
use crate::chat::{ChatError, ErrorCode};
use crate::limits::Strikes;
use crate::state::AppState;
use crate::telemetry::names;
use crate::wire::Command;
use serde::Serialize;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::handler::FromMessageParts;
use socketioxide::handler::Value;
use socketioxide::{SendError, SocketError};
use std::convert::Infallible;
use std::sync::Arc;

/// Extractor: where the answer to the current command goes.
pub struct Reply<A: Adapter> {
    socket: SocketRef<A>,
    ack: AckSender<A>,
    wants_ack: bool,
    /// Answers as a Node handler's `callback()` (a relay rule's `ack = "empty"`).
    bare: bool,
}

impl<A: Adapter> FromMessageParts<A> for Reply<A> {
    type Error = Infallible;

    fn from_message_parts(
        s: &Arc<socketioxide::socket::Socket<A>>,
        v: &mut Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        Ok(Self {
            socket: SocketRef::from_message_parts(s, v, ack_id)?,
            ack: AckSender::from_message_parts(s, v, ack_id)?,
            wants_ack: ack_id.is_some(),
            bare: false,
        })
    }
}

impl<A: Adapter> Reply<A> {
    /// Runs a command and answers it: refused while draining and past the user's allowance for
    /// `limit`, run within the command deadline, tracked so that shutdown waits for it to
    /// commit and answer, and counted under `label`.
    pub async fn serve<T: Serialize>(
        self,
        app: &AppState,
        label: &'static str,
        limit: Command,
        run: impl Future<Output = Result<T, ChatError>>,
    ) {
        let Some((reply, _turn)) = self.admit(app, label, limit) else {
            return;
        };
        let result = within_deadline(app, run).await;
        reply.send(label, result);
    }

    /// The checks before a command runs; `None` when it was refused (and answered), or
    /// dropped in silence (a `typing` over its allowance, answered `ok`). The [`Turn`] lasts
    /// until the answer is sent.
    pub fn admit(
        self,
        app: &AppState,
        label: &'static str,
        limit: Command,
    ) -> Option<(Self, Turn)> {
        let turn = Turn {
            _in_flight: app.in_flight.token(),
            label,
            started: std::time::Instant::now(),
        };
        match app
            .ensure_serving()
            .and_then(|()| self.within_limits(app, limit))
        {
            Ok(()) => Some((self, turn)),
            Err(over)
                if over.code == ErrorCode::RateLimited && limit.allowance().drops_in_silence() =>
            {
                self.send(label, Ok(Nothing {}));
                None
            }
            Err(refused) => {
                self.send::<()>(label, Err(refused));
                None
            }
        }
    }

    /// Answers as a Node handler's `callback()` does: success is an acknowledgement with no
    /// value; a failure a retry may cure (`unavailable`, `rate_limited`) is not answered, so
    /// that a client sending with `retries` sends it again (safe with its idempotency key);
    /// any other failure is answered `{ ok: false, error }` as usual.
    pub fn bare(self) -> Self {
        Self { bare: true, ..self }
    }

    /// Whether the client asked for an acknowledgement.
    pub fn wants_ack(&self) -> bool {
        self.wants_ack
    }

    /// Answers the acknowledgement with `body` as it is (a relay passing its receivers' answers
    /// through), counted as an `ok`.
    pub fn pass<T: Serialize>(self, command: &'static str, body: &T) {
        metrics::counter!(names::COMMANDS, "command" => command, "outcome" => "ok").increment(1);
        if let Err(err) = self.ack.send(body) {
            tracing::debug!(command, error = %err, "could not answer a command");
        }
    }

    /// The user's allowance for `command` (rate_limited past it).
    fn within_limits(&self, app: &AppState, command: Command) -> Result<(), ChatError> {
        let user = user_of(&self.socket)?;
        app.limits.check(command, &user.id)
    }

    pub fn send<T: Serialize>(self, command: &'static str, result: Result<T, ChatError>) {
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code.as_str(),
        };
        let limited = matches!(&result, Err(e) if e.code == ErrorCode::RateLimited);
        metrics::counter!(names::COMMANDS, "command" => command, "outcome" => outcome).increment(1);
        let sent = match result {
            Ok(_) if self.bare => self.ack.send(&Args::default()),
            Err(error) if self.bare && self.wants_ack && error.code.cured_by_retry() => {
                tracing::debug!(sid = %self.socket.id, user = %user_label(&self.socket), command, code = %error.code, "not answered: the client's retry may succeed");
                Ok(())
            }
            Ok(body) => self.ack.send(&Success { ok: true, body }),
            Err(error) if self.wants_ack => self.ack.send(&Failure {
                ok: false,
                error: &error,
            }),
            Err(error) => self.socket.emit(event::ERROR, &error),
        };
        match sent {
            Ok(()) => {}
            // The client is not reading fast enough and its buffer is full: an answer that
            // cannot be delivered must not vanish. Disconnecting makes the client reconnect and
            // retry (with its client_id, a retry never duplicates).
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                tracing::warn!(sid = %self.socket.id, user = %user_label(&self.socket), command, "socket buffer full: disconnecting a client that does not read");
                metrics::counter!(names::SLOW_CLIENT_DISCONNECTS).increment(1);
                let _ = self.socket.clone().disconnect();
            }
            Err(err) => {
                tracing::debug!(sid = %self.socket.id, user = %user_label(&self.socket), command, error = %err, "could not answer a command")
            }
        }
        if limited {
            strike(&self.socket, command);
        }
    }
}

/// A command between its admission and its answer: shutdown waits for it; its duration is
/// recorded when it ends.
pub struct Turn {
    _in_flight: tokio_util::task::task_tracker::TaskTrackerToken,
    label: &'static str,
    started: std::time::Instant,
}

impl Drop for Turn {
    fn drop(&mut self) {
        metrics::histogram!(names::COMMAND_SECONDS, "command" => self.label)
            .record(self.started.elapsed().as_secs_f64());
    }
}

/// Runs a command within the command deadline: a database that stops answering must not hold
/// a command forever. Every command but `message` is idempotent, and `message` has its own,
/// shorter bound.
pub async fn within_deadline<T>(
    app: &AppState,
    run: impl Future<Output = Result<T, ChatError>>,
) -> Result<T, ChatError> {
    tokio::time::timeout(app.command_deadline, run)
        .await
        .unwrap_or_else(|_| {
            Err(ChatError::outcome_unknown(
                "storage did not answer in time; the command may or may not have taken effect: repeat it to find out",
            ))
        })
}

/// A client that keeps hitting a limit after being told to wait is disconnected.
fn strike<A: Adapter>(socket: &SocketRef<A>, command: &'static str) {
    let Some(strikes) = socket.extensions.get::<Strikes>() else {
        return;
    };
    if !strikes.tolerate() && socket.connected() {
        tracing::warn!(sid = %socket.id, user = %user_label(socket), command, "disconnecting a client that ignores rate limits");
        metrics::counter!(names::ABUSE_DISCONNECTS).increment(1);
        let _ = socket.clone().disconnect();
    }
}
