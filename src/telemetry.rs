//! Logs (tracing-subscriber, pretty or JSON, every line naming its node), the metrics recorder
//! (Prometheus), and the runtime's health as metrics (docs/operations.md lists every metric).
//!
//! It takes what it needs as plain values: nothing here depends on the configuration's types.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people: one line of text per event.
    Pretty,
    /// For machines: one JSON object per line.
    Json,
}

/// A log filter in `RUST_LOG` syntax, or why `directives` is none.
pub fn log_filter(directives: &str) -> Result<EnvFilter, String> {
    EnvFilter::try_new(directives).map_err(|e| e.to_string())
}

/// Installs the global log subscriber, writing to standard output; every line carries `node`.
/// Pretty lines are coloured only when standard output is a terminal: in a file or a pipe the
/// escape codes would be noise. A second call (tests) keeps the first.
pub fn init_logs(filter: &str, format: LogFormat, node: &str) -> Result<(), String> {
    let filter = log_filter(filter)?;
    let registry = tracing_subscriber::registry().with(filter);
    let layer = fmt::layer().with_ansi(std::io::stdout().is_terminal());
    let _ = match format {
        LogFormat::Pretty => registry
            .with(layer.event_format(WithNode::pretty(node, fmt::format())))
            .try_init(),
        LogFormat::Json => registry
            .with(layer.json().event_format(WithNode::json(
                node,
                fmt::format().json().flatten_event(true),
            )))
            .try_init(),
    };
    Ok(())
}

/// This machine's name, else `chatoxide`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "chatoxide".to_owned())
}

/// A line formatter that adds the node's name: a `node` key first in a JSON object, a
/// `node=` prefix on a pretty line.
struct WithNode<F> {
    inner: F,
    /// The name, as JSON (`"node1"`) or as it is.
    node: String,
    json: bool,
}

impl<F> WithNode<F> {
    fn pretty(node: &str, inner: F) -> Self {
        Self {
            inner,
            node: node.to_owned(),
            json: false,
        }
    }

    fn json(node: &str, inner: F) -> Self {
        Self {
            inner,
            node: serde_json::Value::String(node.to_owned()).to_string(),
            json: true,
        }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithNode<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        if !self.json {
            write!(writer, "node={} ", self.node)?;
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(writer, "{{\"node\":{},{rest}", self.node),
            None => writer.write_str(&line),
        }
    }
}

/// The process-wide Prometheus recorder. The `metrics` facade has one global recorder, so
/// every app in the process (several in tests) shares it.
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Histograms with buckets (not summaries), so that percentiles can be taken over
            // nodes and time ranges in PromQL.
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &SECONDS_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(names::BATCH_SIZE.to_owned()), &BATCH_BUCKETS))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(names::BROADCAST_AUDIENCE.to_owned()), &AUDIENCE_BUCKETS));
            let recorder = match builder {
                Ok(builder) => builder.build_recorder(),
                Err(err) => {
                    tracing::warn!(error = %err, "histogram buckets refused: histograms are summaries");
                    PrometheusBuilder::new().build_recorder()
                }
            };
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was installed already; /metrics will be empty");
            }
            describe();
            handle
        })
        .clone()
}

/// Buckets of every `_seconds` histogram: 0.25 ms to 10 s.
const SECONDS_BUCKETS: [f64; 15] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];
/// Buckets of the write batch size: powers of two up to the largest batch.
const BATCH_BUCKETS: [f64; 12] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// The process's own metrics (`process_resident_memory_bytes`, `process_open_fds`,
/// `process_cpu_seconds_total`, …), read from /proc at each scrape.
pub fn collect_process() {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR
        .get_or_init(|| {
            let collector = metrics_process::Collector::default();
            collector.describe();
            collector
        })
        .collect();
}

/// Buckets of a broadcast's audience: from nobody to a room of 20,000.
const AUDIENCE_BUCKETS: [f64; 15] = [
    0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
    20000.0,
];

/// How often the runtime probe wakes to measure how late it is.
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// Measures the runtime's health, the analogue of Node's event-loop delay: a task that sleeps
/// `PROBE_EVERY` and records how much later than asked it runs (a busy or blocked runtime runs
/// it late), and once a second the workers' busy ratio, the tasks alive and the global queue.
pub fn watch_runtime() {
    // The recorder first: what is recorded before it is installed is lost.
    let _ = metrics();
    tokio::spawn(async {
        let runtime = tokio::runtime::Handle::current().metrics();
        let workers = runtime.num_workers();
        metrics::gauge!(names::RUNTIME_WORKERS).set(workers as f64);
        let busy_total = || {
            (0..workers)
                .map(|w| runtime.worker_total_busy_duration(w))
                .sum::<Duration>()
        };
        let mut last = (Instant::now(), busy_total());
        loop {
            let asleep = Instant::now();
            tokio::time::sleep(PROBE_EVERY).await;
            let late = asleep.elapsed().saturating_sub(PROBE_EVERY);
            metrics::histogram!(names::RUNTIME_SCHEDULE_DELAY).record(late.as_secs_f64());
            let now = Instant::now();
            if now.duration_since(last.0) >= Duration::from_secs(1) {
                let busy = busy_total();
                let span = now.duration_since(last.0).as_secs_f64() * workers.max(1) as f64;
                let ratio = busy.saturating_sub(last.1).as_secs_f64() / span;
                metrics::gauge!(names::RUNTIME_BUSY).set(ratio.clamp(0.0, 1.0));
                metrics::gauge!(names::RUNTIME_ALIVE_TASKS).set(runtime.num_alive_tasks() as f64);
                metrics::gauge!(names::RUNTIME_GLOBAL_QUEUE)
                    .set(runtime.global_queue_depth() as f64);
                last = (now, busy);
            }
        }
    });
}

/// A counter family starts at zero for each value of its label (none: the counter alone), so
/// that dashboards and alerts see 0 rather than no data before the first event.
pub fn count_from_zero<'a>(
    name: &'static str,
    label: &'static str,
    values: impl IntoIterator<Item = &'a str>,
) {
    for value in values {
        metrics::counter!(name, label => value.to_owned()).increment(0);
    }
}

/// A counter without labels, from zero.
pub fn counter_from_zero(name: &'static str) {
    metrics::counter!(name).increment(0);
}

/// Names and help texts of every metric, in one place.
pub mod names {
    pub const CONNECTIONS: &str = "chatoxide_connections";
    pub const CONNECTS: &str = "chatoxide_connects_total";
    pub const DISCONNECTS: &str = "chatoxide_disconnects_total";
    pub const COMMANDS: &str = "chatoxide_commands_total";
    pub const COMMAND_SECONDS: &str = "chatoxide_command_seconds";
    pub const BROADCASTS: &str = "chatoxide_broadcasts_total";
    pub const BROADCAST_AUDIENCE: &str = "chatoxide_broadcast_audience";
    pub const STORAGE_ERRORS: &str = "chatoxide_storage_errors_total";
    pub const RUNTIME_WORKERS: &str = "chatoxide_runtime_workers";
    pub const RUNTIME_BUSY: &str = "chatoxide_runtime_busy_ratio";
    pub const RUNTIME_ALIVE_TASKS: &str = "chatoxide_runtime_alive_tasks";
    pub const RUNTIME_GLOBAL_QUEUE: &str = "chatoxide_runtime_global_queue_depth";
    pub const RUNTIME_SCHEDULE_DELAY: &str = "chatoxide_runtime_schedule_delay_seconds";
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
    pub const REPLAYED: &str = "chatoxide_replayed_messages_total";
    pub const REPLAY_FAILURES: &str = "chatoxide_replay_failures_total";
    pub const FEED_CATCH_UPS: &str = "chatoxide_feed_catch_ups_total";
    pub const RECOVERY_SESSIONS_KEPT: &str = "chatoxide_recovery_sessions_kept_total";
    pub const RECOVERY_RESTORED: &str = "chatoxide_recovery_restored_total";
    pub const RECOVERY_FAILURES: &str = "chatoxide_recovery_failures_total";
    pub const RECOVERY_MISSED: &str = "chatoxide_recovery_missed_events_total";
    pub const SSE_STREAMS: &str = "chatoxide_sse_streams";
    pub const SSE_EVENTS: &str = "chatoxide_sse_events_total";
    pub const SSE_CUTS: &str = "chatoxide_sse_cuts_total";
    pub const ROOM_EVENTS_UNPUBLISHED: &str = "chatoxide_room_events_unpublished_total";
    pub const OUTBOX_LAG: &str = "chatoxide_outbox_lag_seconds";
    pub const OUTBOX_PUBLISHED: &str = "chatoxide_outbox_published_total";
    pub const OUTBOX_FAILURES: &str = "chatoxide_outbox_failures_total";
    pub const OUTBOX_RELAY: &str = "chatoxide_outbox_relay";
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        names::CONNECTIONS,
        "Sockets connected to this node now, by namespace and transport (counted at each scrape)."
    );
    describe_counter!(
        names::CONNECTS,
        "Sockets admitted since start, by namespace."
    );
    describe_counter!(
        names::DISCONNECTS,
        "Sockets disconnected since start, by reason (Node's names: transport close, ping timeout, …)."
    );
    describe_counter!(
        names::COMMANDS,
        "Commands answered, by command and outcome (ok or an error code)."
    );
    describe_histogram!(
        names::COMMAND_SECONDS,
        Unit::Seconds,
        "Time from a command's arrival to its answer, by command."
    );
    describe_counter!(
        names::BROADCASTS,
        "Events broadcast to other sockets (a room, a namespace), by event."
    );
    describe_histogram!(
        names::BROADCAST_AUDIENCE,
        "Sockets of this node a broadcast was written to, by event, measured on one broadcast in 16."
    );
    describe_counter!(
        names::STORAGE_ERRORS,
        "Commands that failed in storage, by kind (unavailable, overloaded, stalled, stopped, internal)."
    );
    describe_gauge!(names::RUNTIME_WORKERS, "Tokio worker threads.");
    describe_gauge!(
        names::RUNTIME_BUSY,
        "Share of the last second the runtime's workers were busy, all together (0 to 1)."
    );
    describe_gauge!(names::RUNTIME_ALIVE_TASKS, "Tasks alive in the runtime.");
    describe_gauge!(
        names::RUNTIME_GLOBAL_QUEUE,
        "Tasks waiting in the runtime's global queue."
    );
    describe_histogram!(
        names::RUNTIME_SCHEDULE_DELAY,
        Unit::Seconds,
        "How late a task woken by a timer runs: the analogue of Node's event-loop delay."
    );
    describe_histogram!(
        names::COMMIT_SECONDS,
        Unit::Seconds,
        "Time one write batch takes to commit."
    );
    describe_histogram!(names::BATCH_SIZE, "Messages stored per write batch.");
    describe_gauge!(names::WRITE_QUEUE, "Messages waiting for the writer.");
    describe_counter!(
        names::SLOW_CLIENT_DISCONNECTS,
        "Sockets disconnected because their send buffer was full when an answer was due."
    );
    describe_counter!(
        names::REPLAYED,
        "Stored messages sent to connecting sockets by relay rules with replay."
    );
    describe_counter!(
        names::FEED_CATCH_UPS,
        "Live sockets of replaying rules whose send buffer was full: sent back to catch up from the store."
    );
    describe_counter!(
        names::RECOVERY_SESSIONS_KEPT,
        "Sessions of recovering namespaces kept for their clients to come back (connection state recovery)."
    );
    describe_counter!(
        names::RECOVERY_RESTORED,
        "Sessions restored: the client came back within the maximum disconnection and read recovered."
    );
    describe_counter!(
        names::RECOVERY_FAILURES,
        "Recovery that did not happen, by why: no_session, other_user, unknown_offset, too_much, unavailable (Redis), journal (a broadcast sent without an offset)."
    );
    describe_counter!(
        names::RECOVERY_MISSED,
        "Events sent to restored sockets with their CONNECT answer (missed while they were away)."
    );
    describe_gauge!(
        names::SSE_STREAMS,
        "Server-Sent Events room feeds (GET /api/rooms/{room}/events) open on this node."
    );
    describe_counter!(
        names::SSE_EVENTS,
        "Events sent on room feeds (Server-Sent Events), replayed and live."
    );
    describe_counter!(
        names::SSE_CUTS,
        "Room feeds ended by the server, by why: slow (the reader fell behind), store (the replay could not read), shutdown, expired (a member's token)."
    );
    describe_counter!(
        names::ROOM_EVENTS_UNPUBLISHED,
        "Room events of this cluster node not published on Redis for the other nodes' room feeds (Redis down or too slow)."
    );
    describe_gauge!(
        names::OUTBOX_LAG,
        Unit::Seconds,
        "Age of the oldest stored event the broker has not confirmed, on the node that relays the outbox (0 elsewhere)."
    );
    describe_counter!(
        names::OUTBOX_PUBLISHED,
        "Outbox events the broker confirmed."
    );
    describe_counter!(
        names::OUTBOX_FAILURES,
        "Outbox relay failures, by op: connect (the broker is out of reach), publish (not confirmed), store."
    );
    describe_gauge!(
        names::OUTBOX_RELAY,
        "1 while this node holds the outbox's lease and publishes it, 0 otherwise."
    );
    describe_counter!(
        names::REPLAY_FAILURES,
        "Replays that could not finish (storage failed, or the client did not read): the socket was disconnected to try again."
    );
    describe_counter!(
        names::BROADCAST_FAILURES,
        "Broadcasts that did not reach every socket (a full buffer), by event."
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
