//! What the handshake leaves on a socket: who it is and what its credentials allow.

use crate::chat::{ChatError, ErrorCode, Grant, User};
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

/// The socket's user for log lines: its id, or `-` before the handshake named one.
pub fn user_label<A: Adapter>(socket: &SocketRef<A>) -> String {
    socket
        .extensions
        .get::<User>()
        .map_or_else(|| "-".to_owned(), |u| u.id.as_str().to_owned())
}

/// What the handshake's credentials allow this socket.
pub(super) fn grant_of<A: Adapter>(socket: &SocketRef<A>) -> Result<Grant, ChatError> {
    socket.extensions.get::<Grant>().ok_or_else(no_identity)
}

/// The identity the handshake gave this socket.
pub(super) fn user_of<A: Adapter>(socket: &SocketRef<A>) -> Result<User, ChatError> {
    socket.extensions.get::<User>().ok_or_else(no_identity)
}

fn no_identity() -> ChatError {
    ChatError::new(ErrorCode::Unauthorized, "this socket has no identity")
}
