//! `/metrics` in the Prometheus text format.

use super::HttpState;
use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

pub fn router() -> Router<HttpState> {
    Router::new().route("/metrics", get(render))
}

async fn render(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
