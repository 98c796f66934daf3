//! Logs (tracing-subscriber, pretty or JSON) and the metrics recorder (Prometheus).

use crate::config::LogFormat;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global log subscriber. A second call (tests) keeps the first.
pub fn init_logs(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Pretty => registry.with(fmt::layer()).try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().flatten_event(true))
            .try_init(),
    };
}

/// The process-wide Prometheus recorder. The `metrics` facade has one global recorder, so
/// every app in the process (several in tests) shares it.
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was installed already; /metrics will be empty");
            }
            describe();
            handle
        })
        .clone()
}

/// Names and help texts of every metric, in one place.
pub mod names {
    pub const CONNECTIONS: &str = "chatoxide_connections";
    pub const CONNECTS: &str = "chatoxide_connects_total";
    pub const DISCONNECTS: &str = "chatoxide_disconnects_total";
    pub const COMMANDS: &str = "chatoxide_commands_total";
    pub const HANDSHAKE_REJECTIONS: &str = "chatoxide_handshake_rejections_total";
    pub const SLOW_CLIENT_DISCONNECTS: &str = "chatoxide_slow_client_disconnects_total";
    pub const BROADCAST_FAILURES: &str = "chatoxide_broadcast_failures_total";
    pub const WRITE_QUEUE: &str = "chatoxide_write_queue_depth";
    pub const BATCH_SIZE: &str = "chatoxide_write_batch_size";
    pub const COMMIT_SECONDS: &str = "chatoxide_write_commit_seconds";
    pub const RATE_LIMITED: &str = "chatoxide_rate_limited_total";
    pub const ABUSE_DISCONNECTS: &str = "chatoxide_abuse_disconnects_total";
    pub const FANOUT_FALLBACKS: &str = "chatoxide_fanout_fallbacks_total";
    pub const REDIS_UP: &str = "chatoxide_redis_up";
    pub const REDIS_ERRORS: &str = "chatoxide_redis_errors_total";
    pub const REDIS_PUBLISHED: &str = "chatoxide_redis_published_total";
    pub const REDIS_RECEIVED: &str = "chatoxide_redis_received_total";
    pub const REDIS_DROPPED: &str = "chatoxide_redis_dropped_total";
}

fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_gauge!(
        names::CONNECTIONS,
        "Sockets connected to this node now, by transport."
    );
    describe_counter!(names::CONNECTS, "Sockets connected since start.");
    describe_counter!(
        names::DISCONNECTS,
        "Sockets disconnected since start, by reason."
    );
    describe_counter!(
        names::COMMANDS,
        "Commands answered, by command and outcome (ok or an error code)."
    );
    describe_counter!(
        names::HANDSHAKE_REJECTIONS,
        "Handshakes refused, by error code."
    );
    describe_counter!(
        names::RATE_LIMITED,
        "Requests refused (or typing signals dropped) by a rate limit, by limit."
    );
    describe_counter!(
        names::ABUSE_DISCONNECTS,
        "Sockets disconnected for collecting too many rate_limited answers."
    );
    describe_counter!(
        names::FANOUT_FALLBACKS,
        "Events and room changes delivered on this node only because Redis was out of reach, by event."
    );
    describe_gauge!(
        names::REDIS_UP,
        "1 while this cluster node's Redis link answers, 0 while it does not."
    );
    describe_counter!(
        names::REDIS_ERRORS,
        "Redis calls that failed, by operation."
    );
    describe_counter!(
        names::REDIS_PUBLISHED,
        "Requests this node published to the other nodes (broadcasts, room changes)."
    );
    describe_counter!(
        names::REDIS_RECEIVED,
        "Pub/sub messages received from the other nodes."
    );
    describe_counter!(
        names::REDIS_DROPPED,
        "Pub/sub messages from other nodes dropped because their channel's buffer was full."
    );
}
