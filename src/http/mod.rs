//! The HTTP face: health, readiness, metrics, the message routes (history for its readers,
//! publishing for trusted backends), and the chat page at `/`.

mod api_key;
pub mod client;
mod error;
mod health;
mod messages;
mod metrics;
mod page;
mod reader;
pub mod sessions;

use crate::cluster::Link;
use crate::realtime::Fanout;
use crate::state::AppState;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub app: AppState,
    pub fanout: Arc<dyn Fanout>,
    /// This node's Redis link, on a cluster node.
    pub redis: Option<Link>,
    pub api_key: Option<Arc<str>>,
    pub metrics: PrometheusHandle,
    /// Whether `/` serves the chat page (else it answers 404).
    pub chat_page: bool,
}

pub fn router(state: HttpState) -> Router {
    reader::warn_if_open(&state);
    let router = Router::new()
        .merge(health::router())
        .merge(metrics::router())
        .merge(messages::router());
    let router = if state.chat_page {
        router.merge(page::router(state.app.auth.takes_tokens()))
    } else {
        router
    };
    router.with_state(state)
}
