//! `/healthz` (the process serves) and `/readyz` (its dependencies answer).

use super::HttpState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    let mut failing = Vec::new();
    if let Err(err) = state.app.store.ping().await {
        tracing::warn!(error = %err, "readiness: storage does not answer");
        failing.push("storage");
    }
    if let Some(redis) = &state.redis
        && !redis.ping().await
    {
        tracing::warn!("readiness: Redis does not answer");
        failing.push("redis");
    }
    if failing.is_empty() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "failing": failing })),
        )
    }
}
