//! Latency histograms and the one JSON line a run prints.

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::time::Duration;

/// Microsecond latencies from 1 µs to 60 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| unreachable!("valid bounds"))
}

pub fn record(h: &mut Histogram<u64>, latency: Duration) {
    let us = u64::try_from(latency.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, 60_000_000);
    let _ = h.record(us);
}

/// p50, p99, p99.9 and max, in milliseconds.
pub fn percentiles(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| us as f64 / 1000.0;
    json!({
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
        "count": h.len(),
    })
}

/// What every timed scenario takes: how long it measures, and how its run is named.
#[derive(clap::Args, Clone)]
pub struct Run {
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Prefix of room and user names (a run's own).
    #[arg(long, default_value = "bench")]
    pub prefix: String,
    /// A label printed with the result (e.g. chatoxide-sqlite).
    #[arg(long, default_value = "")]
    pub label: String,
}
