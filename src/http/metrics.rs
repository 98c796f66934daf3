//! `/metrics` in the Prometheus text format.

use super::HttpState;
use crate::telemetry::{self, names};
use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

pub fn router() -> Router<HttpState> {
    Router::new().route("/metrics", get(render))
}

/// Counts what is cheaper to count at a scrape than on every change (sockets by namespace and
/// transport: a socket's transport changes with its upgrade), then renders.
async fn render(State(state): State<HttpState>) -> impl IntoResponse {
    for census in state.fanout.census() {
        metrics::gauge!(names::CONNECTIONS, "namespace" => census.namespace, "transport" => census.transport)
            .set(census.sockets as f64);
    }
    telemetry::collect_process();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
