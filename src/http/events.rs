//! `GET /api/rooms/{room}/events`: a room's `message`, `message_updated` and `message_deleted`
//! events as Server-Sent Events, for readers without a Socket.IO client (a dashboard, a console,
//! `curl -N`). `id:` is the message's id, `event:` the Socket.IO event's name, `data:` the same
//! JSON as its argument.
//!
//! `Last-Event-ID` (or `?since=`, a message id) resumes: the messages stored after it are sent
//! first, from the store, as `message` events in their current state, then the live events, with
//! nothing twice at the seam (the live channel is joined before the store is read; a live
//! `message` the replay already sent is skipped). Credentials and limits are the history page's
//! ([`Reader`]); a member's feed ends when its token expires, as its sockets' sessions do. A reader that falls [`crate::room_events::BACKLOG`] events behind is cut, and so is
//! every reader at shutdown: `EventSource` comes back by itself with its `Last-Event-ID`.

use super::HttpState;
use super::reader::Reader;
use crate::chat::{ChatError, HistoryQuery, Kind, Message, MessageId, RoomEvent, RoomName};
use crate::room_events::RoomEvents;
use crate::store::{RoomRef, Store};
use crate::telemetry::names;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::Stream;
use serde::Deserialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};

/// How often an idle stream sends a comment, so that proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn router() -> Router<HttpState> {
    Router::new().route("/api/rooms/{room}/events", get(events))
}

#[derive(Debug, Deserialize)]
struct EventsParams {
    since: Option<String>,
}

async fn events(
    State(state): State<HttpState>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(room): Path<String>,
    params: Result<Query<EventsParams>, QueryRejection>,
) -> Result<Response, ChatError> {
    let reader = Reader::identify(&state, &headers)?;
    reader.admit(&state, &headers, &extensions)?;
    state.app.ensure_serving()?;
    let Query(params) = params.map_err(|e| ChatError::bad_request(e.body_text()))?;
    let name = RoomName::parse(&room)?;
    let since = resume_point(&headers, params.since.as_deref())?;
    let room = reader.room(&state, &name).await?;
    if let Some(since) = since {
        since.ensure_in_room(room.id)?;
    }
    // A member's feed ends when its token's session would (as a socket's does).
    let ends = match &reader {
        Reader::Member(identity) => state.app.auth.session_limit(&identity.grant),
        Reader::Anyone => None,
    };
    // Joined before the store is read: what commits meanwhile is heard live.
    let live = state.app.room_events.subscribe(name.as_str());
    let feed = Feed {
        store: state.app.store.clone(),
        room,
        replayed: VecDeque::new(),
        replaying: since.is_some(),
        high: since,
        live,
        events: state.app.room_events.clone(),
        ends: ends.map(|limit| tokio::time::Instant::now() + limit),
        _open: Open::new(),
    };
    let stream = Sse::new(feed.stream()).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    // nginx and its kin buffer responses unless told not to.
    let unbuffered = [(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    )];
    Ok((unbuffered, stream).into_response())
}

/// Where the reader resumes: its `Last-Event-ID`, else `?since=`; empty is neither.
fn resume_point(headers: &HeaderMap, since: Option<&str>) -> Result<Option<MessageId>, ChatError> {
    let last_event_id = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ChatError::bad_request("Last-Event-ID must be a message id"))?,
        ),
        None => None,
    };
    last_event_id
        .or(since)
        .filter(|id| !id.is_empty())
        .map(MessageId::parse)
        .transpose()
}

/// One reader's stream: the replay from the store, then the live events.
struct Feed {
    store: Store,
    room: RoomRef,
    /// Messages of the replay read and not yet sent.
    replayed: VecDeque<Message>,
    /// Whether the store may hold more after `high`.
    replaying: bool,
    /// The newest message sent by the replay (or the resume point): a live `message` at or
    /// before it was sent already.
    high: Option<MessageId>,
    live: broadcast::Receiver<Arc<RoomEvent>>,
    events: RoomEvents,
    /// When a member's token expires (with the configured grace): the feed ends then.
    ends: Option<tokio::time::Instant>,
    _open: Open,
}

impl Feed {
    fn stream(self) -> impl Stream<Item = Result<Event, Infallible>> + Send {
        futures_util::stream::unfold(self, |mut feed| async move {
            let event = feed.next().await?;
            metrics::counter!(names::SSE_EVENTS).increment(1);
            Some((Ok(event), feed))
        })
    }

    /// The next event to send; `None` ends the stream.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(message) = self.replayed.pop_front() {
                let Some(event) = replayed(&message) else {
                    continue;
                };
                self.high = MessageId::parse(&message.id).ok().or(self.high);
                return Some(event);
            }
            if self.replaying {
                self.read_more().await?;
                continue;
            }
            let expiry = async {
                match self.ends {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let received = tokio::select! {
                biased;
                () = expiry => return cut("expired"),
                received = self.live.recv() => received,
                () = self.events.closed() => return cut("shutdown"),
            };
            match received {
                Ok(event) if self.sent_already(&event) => {}
                Ok(event) => match sse(&event) {
                    Some(sse) => return Some(sse),
                    None => tracing::warn!(id = %event.id, "a room event with an invalid id"),
                },
                Err(RecvError::Lagged(_)) => return cut("slow"),
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Reads the next page of the replay; `None` (the stream ends) when the store fails: the
    /// reader comes back from where it got to.
    async fn read_more(&mut self) -> Option<()> {
        let after = self.high?;
        match self
            .store
            .history(&self.room, HistoryQuery::since(after))
            .await
        {
            Ok(page) => {
                self.replaying = page.has_more;
                self.replayed = page.messages.into();
                Some(())
            }
            Err(err) => {
                tracing::warn!(error = %err, room = %self.room.name, "a room feed could not read the store");
                cut("store")
            }
        }
    }

    /// A live `message` the replay already sent (stored before the store was read, heard after).
    fn sent_already(&self, event: &RoomEvent) -> bool {
        event.kind == Kind::Message
            && self
                .high
                .zip(MessageId::parse(&event.id).ok())
                .is_some_and(|(high, id)| id <= high)
    }
}

/// A stored message, sent by the replay, as a `message` event: the room event a commit makes
/// of it (`RoomEvent::stored`), so replayed and live events are one shape.
fn replayed(message: &Message) -> Option<Event> {
    sse(&RoomEvent::stored(message).ok()?)
}

/// `id:` is printed from a parsed id: nothing a peer sent reaches the stream's framing.
fn sse(event: &RoomEvent) -> Option<Event> {
    let id = MessageId::parse(&event.id).ok()?;
    Some(
        Event::default()
            .id(id.to_string())
            .event(event.kind.event())
            .data(&event.data),
    )
}

/// Ends a stream, counted by why.
fn cut<T>(why: &'static str) -> Option<T> {
    metrics::counter!(names::SSE_CUTS, "why" => why).increment(1);
    None
}

/// Counts an open stream for as long as it lives.
struct Open;

impl Open {
    fn new() -> Self {
        metrics::gauge!(names::SSE_STREAMS).increment(1);
        Self
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        metrics::gauge!(names::SSE_STREAMS).decrement(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(last: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(last) {
            headers.insert("last-event-id", value);
        }
        headers
    }

    #[test]
    fn last_event_id_wins_over_since_and_empty_is_none() {
        let a = MessageId::new(1, 5);
        let b = MessageId::new(1, 9);
        let got = resume_point(&headers(&a.to_string()), Some(&b.to_string()));
        assert_eq!(got, Ok(Some(a)));
        assert_eq!(
            resume_point(&HeaderMap::new(), Some(&b.to_string())),
            Ok(Some(b))
        );
        assert_eq!(resume_point(&headers(""), None), Ok(None));
        assert_eq!(resume_point(&HeaderMap::new(), Some("")), Ok(None));
        assert!(resume_point(&headers("nope"), None).is_err());
    }
}
