//! The HTTP face: health, readiness, metrics, the message routes (history for its readers,
//! publishing for trusted backends), and at `/` the chat page, a frontend's own files
//! (`--static-dir`), or both: chatoxide's routes first, then the directory, then the chat page.

mod api_key;
pub mod client;
mod error;
mod events;
mod health;
mod messages;
mod metrics;
mod page;
mod reader;
pub mod sessions;
mod static_files;

use crate::cluster::Link;
use crate::realtime::Fanout;
use crate::state::AppState;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

pub use static_files::StaticDir;

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub app: AppState,
    pub fanout: Arc<dyn Fanout>,
    /// This node's Redis link, on a cluster node.
    pub redis: Option<Link>,
    pub api_key: Option<Arc<str>>,
    pub metrics: PrometheusHandle,
    /// Whether `/` serves the chat page (else 404, or the static directory's index.html).
    pub chat_page: bool,
    /// Set: the router's fallback serves its files, before the chat page's.
    pub static_dir: Option<StaticDir>,
}

pub fn router(state: HttpState) -> Router {
    reader::warn_if_open(&state);
    let router = Router::new()
        .merge(health::router())
        .merge(metrics::router())
        .merge(messages::router())
        .merge(events::router());
    let tokens = state.app.auth.takes_tokens();
    let router = match (state.static_dir.clone(), state.chat_page) {
        // The fallback, so any route above wins; what the directory lacks, the chat page has.
        (Some(dir), chat_page) => {
            let otherwise = if chat_page {
                page::router(tokens)
            } else {
                Router::new()
            };
            router.merge(static_files::router(dir, otherwise))
        }
        (None, true) => router.merge(page::router(tokens)),
        (None, false) => router,
    };
    router.with_state(state)
}
