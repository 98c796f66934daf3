//! The fanout scenario: one room of many receivers, a few senders on a fixed schedule (open
//! loop), stepped rates. Every message carries its scheduled send time; each receiver records
//! how long after that it arrived, so delivery is timed end to end (sender → server → every
//! receiver), queueing included. Per step: deliveries per second, delivery latency, deliveries
//! that never arrived, and the server's CPU time per delivery (from /proc, all its threads).
//!
//! With several node URLs the receivers and senders are spread round-robin over them and the
//! room spans the cluster (sender → its node → Redis → every node → the receivers); messages a
//! node reports it dropped (`chatoxide_redis_dropped_total`) are counted too. The nodes may be
//! Node socket.io servers on `@socket.io/redis-adapter` as well (bench/run.sh's `mixed`): they
//! speak the same events.
//!
//! All receivers are sockets of one user: joining is then silent after the first, so setting up
//! 10,000 receivers costs 10,000 joins, not 50 million `user_joined` events. Delivery is per
//! socket either way.

use crate::report::{Run, histogram, percentiles, record};
use crate::server;
use anyhow::Context;
use chatoxide_sio::{Incoming, Socket};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Barrier, Semaphore, watch};
use tokio::time::Instant;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Node base URLs, comma-separated: one for a single server, three for a cluster.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:3000")]
    urls: Vec<String>,
    /// The server processes (comma-separated ids), whose CPU time is read from /proc.
    #[arg(long, value_delimiter = ',')]
    pids: Vec<u32>,
    /// Receiving connections (they send nothing).
    #[arg(long, default_value_t = 1000)]
    receivers: usize,
    /// Sending connections.
    #[arg(long, default_value_t = 1)]
    senders: usize,
    /// The steps: messages per second, all senders together, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10,50,100")]
    rates: Vec<f64>,
    /// Seconds between steps, for the previous step's queues to drain.
    #[arg(long, default_value_t = 3.0)]
    gap: f64,
    /// Handshakes in flight at once while connecting.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Seconds run before measuring (per step), seconds measured (per step), names.
    #[command(flatten)]
    run: Run,
}

/// The run's schedule: times in messages are microseconds since `epoch`; step `k` sends from
/// `starts[k]`, is measured from `starts[k] + warmup` for `seconds`.
#[derive(Clone)]
struct Schedule {
    epoch: Instant,
    starts: Vec<Duration>,
    warmup: Duration,
    seconds: Duration,
}

impl Schedule {
    fn new(args: &Args, epoch: Instant) -> Self {
        let warmup = Duration::from_secs_f64(args.run.warmup);
        let seconds = Duration::from_secs_f64(args.run.seconds);
        let step = warmup + seconds + Duration::from_secs_f64(args.gap);
        let starts = (0..args.rates.len()).map(|k| step * k as u32).collect();
        Self {
            epoch,
            starts,
            warmup,
            seconds,
        }
    }

    /// The step whose measured window holds `at`, if any.
    fn measured_step(&self, at: Duration) -> Option<usize> {
        self.starts
            .iter()
            .position(|&start| at >= start + self.warmup && at < start + self.warmup + self.seconds)
    }

    fn sending_ends(&self, k: usize) -> Duration {
        self.starts[k] + self.warmup + self.seconds
    }

    /// When the last step stops sending.
    fn end(&self) -> Duration {
        self.starts
            .len()
            .checked_sub(1)
            .map_or(Duration::ZERO, |last| self.sending_ends(last))
    }
}

/// What the receivers saw, per step (one lock per delivery: the load tool runs on one core).
struct Tally {
    latency: Histogram<u64>,
    deliveries: u64,
}

/// What the senders saw, per step.
struct Sent {
    acked: Vec<u64>,
    errors: Vec<u64>,
    ack_latency: Vec<Histogram<u64>>,
}

/// The server side of a step's measured window.
#[derive(Default, Clone, Copy)]
struct ServerCost {
    cpu_secs: f64,
    redis_dropped: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(!args.urls.is_empty(), "--urls names no node");
    anyhow::ensure!(!args.rates.is_empty(), "--rates names no step");
    anyhow::ensure!(args.senders > 0, "--senders must be at least 1");
    let room = format!("{}-room", args.run.prefix);
    let tally: Arc<Mutex<Vec<Tally>>> = Arc::new(Mutex::new(
        args.rates
            .iter()
            .map(|_| Tally {
                latency: histogram(),
                deliveries: 0,
            })
            .collect(),
    ));
    let ready = Arc::new(Barrier::new(args.receivers + args.senders + 1));
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let (go, start) = watch::channel(None::<Schedule>);
    let connecting = Instant::now();
    let mut receivers = Vec::with_capacity(args.receivers);
    for i in 0..args.receivers {
        let url = args.urls[i % args.urls.len()].clone();
        let user = format!("{}-rx", args.run.prefix);
        let (room, ready, start, gate, tally) = (
            room.clone(),
            ready.clone(),
            start.clone(),
            gate.clone(),
            tally.clone(),
        );
        receivers.push(tokio::spawn(async move {
            let socket = joined(&url, &user, &room, &gate).await;
            ready.wait().await;
            let schedule = started(start).await?;
            receive(socket?, &schedule, &tally).await
        }));
    }
    let mut senders = Vec::with_capacity(args.senders);
    for i in 0..args.senders {
        let url = args.urls[(i + 1) % args.urls.len()].clone();
        let user = format!("{}-tx{i}", args.run.prefix);
        let (room, ready, start, gate, args) = (
            room.clone(),
            ready.clone(),
            start.clone(),
            gate.clone(),
            args.clone(),
        );
        senders.push(tokio::spawn(async move {
            let socket = joined(&url, &user, &room, &gate).await;
            ready.wait().await;
            let schedule = started(start).await?;
            send(socket?, i, &room, &args, &schedule).await
        }));
    }
    ready.wait().await;
    let connect_secs = connecting.elapsed().as_secs_f64();
    let schedule = Schedule::new(&args, Instant::now());
    go.send(Some(schedule.clone()))
        .context("every connection task ended")?;

    // The server's CPU time and drops over each step's measured window.
    let mut costs = Vec::with_capacity(args.rates.len());
    for k in 0..args.rates.len() {
        tokio::time::sleep_until(schedule.epoch + schedule.starts[k] + schedule.warmup).await;
        let before = server_cost(&args).await?;
        tokio::time::sleep_until(schedule.epoch + schedule.sending_ends(k)).await;
        let after = server_cost(&args).await?;
        costs.push(ServerCost {
            cpu_secs: after.cpu_secs - before.cpu_secs,
            redis_dropped: after.redis_dropped.saturating_sub(before.redis_dropped),
        });
    }

    let mut sent = Sent {
        acked: vec![0; args.rates.len()],
        errors: vec![0; args.rates.len()],
        ack_latency: args.rates.iter().map(|_| histogram()).collect(),
    };
    let mut failed = 0;
    for task in senders {
        match task.await? {
            Ok(s) => {
                for k in 0..args.rates.len() {
                    sent.acked[k] += s.acked[k];
                    sent.errors[k] += s.errors[k];
                    sent.ack_latency[k].add(&s.ack_latency[k])?;
                }
            }
            Err(err) => {
                failed += 1;
                eprintln!("sender failed: {err:#}");
            }
        }
    }
    for task in receivers {
        if let Err(err) = task.await? {
            failed += 1;
            if failed <= 3 {
                eprintln!("receiver failed: {err:#}");
            }
        }
    }
    let tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
    let seconds = args.run.seconds;
    for (k, rate) in args.rates.iter().enumerate() {
        let deliveries = tally[k].deliveries;
        let expected = sent.acked[k] * args.receivers as u64;
        let cost = costs[k];
        let result = json!({
            "scenario": "fanout",
            "label": format!("{} {rate}/s", args.run.label),
            "group": args.run.label,
            "nodes": args.urls.len(),
            "receivers": args.receivers,
            "senders": args.senders,
            "target_rate": rate,
            "acked_per_sec": sent.acked[k] as f64 / seconds,
            "deliveries_per_sec": deliveries as f64 / seconds,
            "delivery_latency": percentiles(&tally[k].latency),
            "ack_latency": percentiles(&sent.ack_latency[k]),
            "lost_deliveries": expected.saturating_sub(deliveries),
            "send_errors": sent.errors[k],
            "server_cpu_util": if args.pids.is_empty() { Value::Null } else { json!(cost.cpu_secs / seconds) },
            "server_cpu_us_per_delivery": if args.pids.is_empty() || deliveries == 0 {
                Value::Null
            } else {
                json!(cost.cpu_secs * 1e6 / deliveries as f64)
            },
            "redis_dropped": cost.redis_dropped,
            "connect_secs": connect_secs,
            "failed_connections": failed,
        });
        println!("{result}");
    }
    Ok(())
}

/// The schedule, once every connection is in the room.
async fn started(mut start: watch::Receiver<Option<Schedule>>) -> anyhow::Result<Schedule> {
    let schedule = start
        .wait_for(Option::is_some)
        .await
        .context("the run never started")?;
    schedule.clone().context("the run never started")
}

async fn joined(url: &str, user: &str, room: &str, gate: &Semaphore) -> anyhow::Result<Socket> {
    let _turn = gate.acquire().await?;
    let mut socket = Socket::connect(url, &json!({ "username": user })).await?;
    let reply = socket.call(0, "join", &json!({ "room": room })).await?;
    anyhow::ensure!(reply["ok"] == true, "join refused: {reply}");
    Ok(socket)
}

/// Reads `message` events until the run is over and the stragglers had time to arrive.
async fn receive(
    mut socket: Socket,
    schedule: &Schedule,
    tally: &Mutex<Vec<Tally>>,
) -> anyhow::Result<()> {
    let stop = tokio::time::sleep_until(schedule.epoch + schedule.end() + Duration::from_secs(3));
    tokio::pin!(stop);
    loop {
        let incoming = tokio::select! {
            biased;
            incoming = socket.next() => incoming?,
            () = &mut stop => return Ok(()),
        };
        let Incoming::Event(event) = incoming else {
            continue;
        };
        let Some(scheduled) = scheduled_at(event.json()) else {
            continue;
        };
        if let Some(k) = schedule.measured_step(scheduled) {
            let latency = schedule.epoch.elapsed().saturating_sub(scheduled);
            let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
            tally[k].deliveries += 1;
            record(&mut tally[k].latency, latency);
        }
    }
}

/// The scheduled send time a bench message carries in its text: `t=<µs> ...`. What follows the
/// message is not read: with connection state recovery its offset comes as one more argument.
fn scheduled_at(event: &str) -> Option<Duration> {
    let (name, rest) = event.strip_prefix("[\"")?.split_once('"')?;
    if name != "message" {
        return None;
    }
    let at = rest.split_once("\"text\":\"t=")?.1;
    let digits = at.bytes().take_while(u8::is_ascii_digit).count();
    Some(Duration::from_micros(at[..digits].parse().ok()?))
}

/// Sends every step's messages on schedule (sender `i` of `n` is offset by `i/n` of an
/// interval) and counts their acks.
async fn send(
    mut socket: Socket,
    i: usize,
    room: &str,
    args: &Args,
    schedule: &Schedule,
) -> anyhow::Result<Sent> {
    let steps = args.rates.len();
    let mut out = Sent {
        acked: vec![0; steps],
        errors: vec![0; steps],
        ack_latency: (0..steps).map(|_| histogram()).collect(),
    };
    let mut pending: HashMap<u64, Duration> = HashMap::new();
    let mut id = 1u64;
    let give_up = schedule.end() + Duration::from_secs(10);
    let interval = |k: usize| Duration::from_secs_f64(args.senders as f64 / args.rates[k]);
    let first = |k: usize| schedule.starts[k] + interval(k).mul_f64(i as f64 / args.senders as f64);
    let (mut k, mut next) = (0, first(0));
    loop {
        let now = schedule.epoch.elapsed();
        let done_sending = k >= steps;
        if (done_sending && pending.is_empty()) || now >= give_up {
            for scheduled in pending.values() {
                if let Some(step) = schedule.measured_step(*scheduled) {
                    out.errors[step] += 1;
                }
            }
            return Ok(out);
        }
        let wake = if done_sending { give_up } else { next };
        tokio::select! {
            incoming = socket.next() => {
                let Incoming::Ack(ack, reply) = incoming? else { continue };
                let Some(scheduled) = pending.remove(&ack) else { continue };
                let Some(step) = schedule.measured_step(scheduled) else { continue };
                if reply.get("ok") == Some(&Value::Bool(true)) {
                    out.acked[step] += 1;
                    record(&mut out.ack_latency[step], schedule.epoch.elapsed().saturating_sub(scheduled));
                } else {
                    out.errors[step] += 1;
                }
            }
            () = tokio::time::sleep_until(schedule.epoch + wake) => {
                if done_sending {
                    continue;
                }
                let text = format!("t={} from sender {i}", next.as_micros());
                socket.emit_with_ack(id, "message", &json!({ "room": room, "text": text })).await?;
                pending.insert(id, next);
                id += 1;
                next += interval(k);
                if next >= schedule.sending_ends(k) {
                    k += 1;
                    if k < steps {
                        next = first(k);
                    }
                }
            }
        }
    }
}

/// CPU seconds of the server processes and the messages they report dropped so far.
async fn server_cost(args: &Args) -> anyhow::Result<ServerCost> {
    let cpu_secs = if args.pids.is_empty() {
        0.0
    } else {
        server::total_cpu_secs(&args.pids)?
    };
    // Only a cluster has Redis (and a single server's /metrics read would cost it CPU).
    let redis_dropped = if args.urls.len() > 1 {
        redis_dropped(&args.urls).await
    } else {
        0
    };
    Ok(ServerCost {
        cpu_secs,
        redis_dropped,
    })
}

/// The sum of `chatoxide_redis_dropped_total` over the nodes (0 where it is not exported: a Node
/// node of a mixed cluster answers 404; one that does not answer within a second counts 0 too,
/// rather than holding up the step).
async fn redis_dropped(urls: &[String]) -> u64 {
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
    else {
        return 0;
    };
    let mut total = 0;
    for url in urls {
        let Ok(res) = client.get(format!("{url}/metrics")).send().await else {
            continue;
        };
        let Ok(text) = res.text().await else { continue };
        total += text
            .lines()
            .filter_map(|l| l.strip_prefix("chatoxide_redis_dropped_total "))
            .filter_map(|v| v.trim().parse::<f64>().ok())
            .sum::<f64>() as u64;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_counts_with_or_without_a_recovery_offset() {
        let message = r#"["message",{"id":"7","room":"r","text":"t=1500 from sender 0"}"#;
        let at = Some(Duration::from_micros(1500));
        assert_eq!(scheduled_at(&format!("{message}]")), at);
        assert_eq!(scheduled_at(&format!(r#"{message},"3f2a9c1b-17"]"#)), at);
        assert_eq!(
            scheduled_at(&format!(r#"{message},"1795984545188-0"]"#)),
            at
        );
        assert_eq!(scheduled_at(r#"["typing",{"text":"t=1500"}]"#), None);
    }
}
