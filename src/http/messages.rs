//! `GET /api/rooms/{room}/messages` (a history page, for the readers of [`super::reader`]) and
//! `POST` (publish as a trusted backend).

use super::HttpState;
use super::api_key::authorize;
use super::reader::Reader;
use crate::chat::{
    ChatError, ClientId, HistoryPage, HistoryQuery, MessageText, RoomName, User, UserId, UserName,
};
use crate::realtime::{Stored, Success, event};
use crate::store::{Announce, Appended, Draft};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, HeaderMap};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

pub fn router() -> Router<HttpState> {
    Router::new().route("/api/rooms/{room}/messages", get(page).post(publish))
}

#[derive(Debug, Deserialize)]
struct PageParams {
    before: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

async fn page(
    State(state): State<HttpState>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(room): Path<String>,
    params: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Success<HistoryPage>>, ChatError> {
    let reader = Reader::identify(&state, &headers)?;
    reader.admit(&state, &headers, &extensions)?;
    let Query(params) = params.map_err(|e| ChatError::bad_request(e.body_text()))?;
    let name = RoomName::parse(&room)?;
    // `?before=&after=`: an empty parameter is no cursor.
    fn given(p: &Option<String>) -> Option<&str> {
        p.as_deref().filter(|v| !v.is_empty())
    }
    let limit = match given(&params.limit) {
        Some(l) => Some(
            l.parse::<i64>()
                .map_err(|_| ChatError::bad_request("limit must be an integer"))?,
        ),
        None => None,
    };
    let query = HistoryQuery::parse(given(&params.before), given(&params.after), limit)?;
    let room = reader.room(&state, &name).await?;
    query.ensure_in_room(room.id)?;
    let page = state.app.store.history(&room, query).await?;
    Ok(Json(Success {
        ok: true,
        body: page,
    }))
}

#[derive(Debug, Deserialize)]
struct Publish {
    user: Author,
    text: String,
    client_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Author {
    id: String,
    name: Option<String>,
}

async fn publish(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Result<Json<Publish>, JsonRejection>,
) -> Result<Json<Success<Stored>>, ChatError> {
    authorize(&headers, state.api_key.as_deref())?;
    state.app.ensure_serving()?;
    state.app.limits.publish()?;
    let _in_flight = state.app.in_flight.token();
    let Json(body) = body.map_err(|e| ChatError::bad_request(e.body_text()))?;
    let name = RoomName::parse(&room)?;
    let id = UserId::parse(&body.user.id)?;
    let user_name = UserName::parse(body.user.name.as_deref().unwrap_or(id.as_str()))?;
    let author = User::new(id, user_name);
    let text = MessageText::parse(&body.text, state.app.text_limit)?;
    let client_id = body.client_id.as_deref().map(ClientId::parse).transpose()?;
    let room = state.app.open_room(&name).await?;
    let fanout = state.fanout.clone();
    let announce: Announce<Appended> = Box::new(move |appended| {
        let message = appended.message.clone();
        Some(Box::pin(async move {
            match serde_json::to_value(&message) {
                Ok(payload) => {
                    fanout
                        .emit_to_room(message.room, event::MESSAGE, payload)
                        .await
                }
                Err(err) => tracing::error!(error = %err, "could not serialize a message"),
            }
        }))
    });
    let draft = Draft {
        room,
        author,
        text,
        client_id,
        room_key: None,
    };
    let appended = state.app.append(draft, Some(announce)).await?;
    Ok(Json(Success {
        ok: true,
        body: Stored {
            message: appended.message,
        },
    }))
}
