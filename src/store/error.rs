//! What can go wrong in storage, as the rest of the server needs to tell it apart.

use super::Refusal;
use crate::chat::{ChatError, ErrorCode};
use sea_orm::{DbErr, RuntimeErr, sqlx};

#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connection refused, pool exhausted, I/O): nothing was
    /// stored, and trying again later may work.
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] DbErr),
    /// Anything else: a bug or a schema problem.
    #[error("storage error: {0}")]
    Internal(#[source] DbErr),
    /// The write queue is full, or a change waited in it past its deadline: nothing was stored.
    #[error("too many writes are waiting")]
    Overloaded,
    /// A commit did not finish in time, or its answer was lost. It may or may not have
    /// happened: a retry finds out (every change is safe to repeat; a message with the same
    /// `client_id` is stored once).
    #[error("the outcome of the commit is unknown")]
    Stalled,
    /// The writer has stopped (the server is shutting down): nothing was stored.
    #[error("the writer has stopped")]
    Stopped,
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        if is_unreachable(&err) {
            Self::Unavailable(err)
        } else {
            Self::Internal(err)
        }
    }
}

/// The database is away or too busy to take this now (trying later may work), as opposed to a
/// statement it refused.
fn is_unreachable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match &**e {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(db) => db.code().is_some_and(|code| BUSY.contains(&&*code)),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Error codes of a database that is busy or going away: SQLite's `SQLITE_BUSY` and
/// `SQLITE_LOCKED` (another process held the write lock past the busy timeout), and
/// PostgreSQL's shutdown, "cannot connect now" and "too many connections".
const BUSY: [&str; 7] = ["5", "6", "517", "57P01", "57P02", "57P03", "53300"];

impl StoreError {
    /// Every kind, as the storage errors metric names them.
    pub const KINDS: [&'static str; 5] = [
        "unavailable",
        "internal",
        "overloaded",
        "stalled",
        "stopped",
    ];

    /// The kind, as the storage errors metric names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
            Self::Overloaded => "overloaded",
            Self::Stalled => "stalled",
            Self::Stopped => "stopped",
        }
    }
}

impl From<StoreError> for ChatError {
    /// The one place a storage failure becomes what a client sees; the cause is logged here.
    fn from(err: StoreError) -> Self {
        metrics::counter!(crate::telemetry::names::STORAGE_ERRORS, "kind" => err.kind())
            .increment(1);
        match err {
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "storage unavailable");
                ChatError::new(
                    ErrorCode::Unavailable,
                    "storage is unavailable, nothing was stored; try again later",
                )
            }
            StoreError::Overloaded => ChatError::new(
                ErrorCode::Unavailable,
                "too many changes are waiting to be stored, nothing was stored; try again shortly",
            ),
            StoreError::Stalled => {
                tracing::warn!("the outcome of a commit is unknown");
                ChatError::outcome_unknown(
                    "storage did not answer in time: the command may or may not have taken effect; repeat it to find out (a message with the same client_id)",
                )
            }
            StoreError::Stopped => ChatError::new(
                ErrorCode::Unavailable,
                "the server is shutting down, nothing was stored; reconnect and retry",
            ),
            StoreError::Internal(cause) => {
                tracing::error!(error = %cause, "storage error");
                ChatError::new(ErrorCode::Internal, "internal error")
            }
        }
    }
}

impl From<Refusal> for ChatError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NotFound => ChatError::not_found("no such message"),
            Refusal::NotAuthor => {
                ChatError::forbidden("only the author may change or delete a message")
            }
            Refusal::TooManyRooms(max) => {
                metrics::counter!(crate::telemetry::names::RATE_LIMITED, "limit" => "rooms_per_user")
                    .increment(1);
                ChatError::too_many_rooms(max)
            }
        }
    }
}
