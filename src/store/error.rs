//! What can go wrong in storage, as the rest of the server needs to tell it apart.

use crate::chat::{ChatError, ErrorCode};
use sea_orm::{DbErr, RuntimeErr, sqlx};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connection refused, pool exhausted, I/O): nothing was
    /// stored, and trying again later may work.
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] DbErr),
    /// Anything else: a bug or a schema problem.
    #[error("storage error: {0}")]
    Internal(#[source] DbErr),
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

fn is_unreachable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => matches!(
            **e,
            sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
        ),
        _ => false,
    }
}

impl From<StoreError> for ChatError {
    /// The one place a storage failure becomes what a client sees; the cause is logged here.
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "storage unavailable");
                ChatError::new(
                    ErrorCode::Unavailable,
                    "storage is unavailable, nothing was stored; try again later",
                )
            }
            StoreError::Internal(cause) => {
                tracing::error!(error = %cause, "storage error");
                ChatError::new(ErrorCode::Internal, "internal error")
            }
        }
    }
}
