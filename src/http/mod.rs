//! The HTTP face: health, readiness, metrics, and the message routes for trusted backends.

mod api_key;
pub mod client;
mod error;
mod health;
mod messages;
mod metrics;
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
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .merge(health::router())
        .merge(metrics::router())
        .merge(messages::router())
        .with_state(state)
}
