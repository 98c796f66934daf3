//! Who reads a room's history over HTTP, and which rooms they may read.
//!
//! - The bearer API key (when one is configured) reads every room.
//! - In token mode, a bearer token (the JWT a Socket.IO handshake takes, verified the same way)
//!   reads the rooms its user is a stored member of and its `rooms` claim allows.
//! - In open mode without a key, anyone reads every room (said once at start: [`warn_if_open`]).
//!
//! A user is limited by the `history` command's allowance; a caller that is no user, by its
//! client address.

use super::HttpState;
use super::api_key::{bearer, is_key};
use crate::chat::{ChatError, ErrorCode, RoomName};
use crate::identity::{Credentials, Identity, Token};
use crate::store::RoomRef;
use crate::wire::Command;
use axum::http::{Extensions, HeaderMap};

/// The caller of a history read, once its credentials are checked.
#[derive(Debug)]
pub enum Reader {
    /// The API key, or anyone in open mode without a key: every room.
    Anyone,
    /// A token's user: its own rooms, as far as its token allows.
    Member(Identity),
}

impl Reader {
    /// The caller, from its `Authorization` header: `unauthorized` when credentials are
    /// required and missing or invalid.
    pub fn identify(state: &HttpState, headers: &HeaderMap) -> Result<Self, ChatError> {
        let presented = bearer(headers);
        if let (Some(presented), Some(key)) = (presented, state.api_key.as_deref())
            && is_key(presented, key)
        {
            return Ok(Self::Anyone);
        }
        if state.app.auth.takes_tokens() {
            let Some(token) = presented else {
                return Err(unauthorized(
                    "an Authorization: Bearer token (or the API key) is required",
                ));
            };
            let credentials = Credentials {
                username: None,
                token: Token::Sent(token.to_owned().into()),
            };
            return state.app.auth.authenticate(credentials).map(Self::Member);
        }
        match state.api_key {
            Some(_) => Err(unauthorized("a valid bearer API key is required")),
            None => Ok(Self::Anyone),
        }
    }

    /// Counts the read against the caller's allowance: `rate_limited` past it.
    pub fn admit(
        &self,
        state: &HttpState,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Result<(), ChatError> {
        let limits = &state.app.limits;
        match self {
            Self::Member(identity) => limits.check(Command::History, &identity.user.id),
            Self::Anyone => limits.api_read(&limits.client_address(headers, extensions)),
        }
    }

    /// The room, if this caller may read it: `forbidden` for a member's token outside its
    /// `rooms` claim or a room its user is not a member of (whether it exists or not);
    /// `not_found` for anyone else when there is no such room.
    pub async fn room(&self, state: &HttpState, name: &RoomName) -> Result<RoomRef, ChatError> {
        let store = &state.app.store;
        match self {
            Self::Anyone => store
                .room(name)
                .await?
                .ok_or_else(|| ChatError::not_found("no such room")),
            Self::Member(identity) => {
                identity.grant.ensure_room(name)?;
                store
                    .membership(name, &identity.user.id)
                    .await?
                    .ok_or_else(|| ChatError::not_a_member(name.as_str()))
            }
        }
    }
}

fn unauthorized(why: &str) -> ChatError {
    ChatError::new(ErrorCode::Unauthorized, why)
}

/// Says at start, once, when history over HTTP is readable by anyone.
pub fn warn_if_open(state: &HttpState) {
    if state.api_key.is_none() && !state.app.auth.takes_tokens() {
        tracing::warn!(
            "open mode without API_KEY: GET /api/rooms/{{room}}/messages serves every room's history to anyone who asks; set API_KEY (or run in token mode) to restrict it"
        );
    }
}
