//! The cluster scenario: one room, receivers and senders spread round-robin over the nodes
//! given, senders on a fixed schedule (open loop). Every message carries its scheduled send time;
//! each receiver records how long after that it arrived, so cross-node delivery is timed end to
//! end (sender → its node → Redis → the receiver's node → the receiver). Deliveries that never
//! arrive are counted, and so are the messages each node reports it dropped
//! (`chatoxide_redis_dropped_total`).

use crate::report::{Run, histogram, percentiles, record};
use crate::socketio::{Incoming, Socket};
use anyhow::Context;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Barrier, watch};
use tokio::time::Instant;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Node base URLs, comma-separated: one for a single node, three for a cluster.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:3000")]
    urls: Vec<String>,
    /// Receiving connections (they send nothing).
    #[arg(long, default_value_t = 150)]
    receivers: usize,
    /// Sending connections.
    #[arg(long, default_value_t = 15)]
    senders: usize,
    /// Messages per second, all senders together.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    #[command(flatten)]
    run: Run,
}

/// The measured window, shared by every connection: times in messages are microseconds since
/// `epoch`.
#[derive(Clone, Copy)]
struct Clock {
    epoch: Instant,
    measure_from: Duration,
    end: Duration,
}

impl Clock {
    fn measured(&self, at: Duration) -> bool {
        at >= self.measure_from && at < self.end
    }
}

struct Received {
    latency: Histogram<u64>,
    deliveries: u64,
}

struct Sent {
    acked: u64,
    errors: u64,
    ack_latency: Histogram<u64>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(!args.urls.is_empty(), "--urls names no node");
    let room = format!("{}-room", args.run.prefix);
    let dropped_before = dropped(&args.urls).await;
    let ready = Arc::new(Barrier::new(args.receivers + args.senders + 1));
    let (go, start) = watch::channel(None::<Clock>);
    let mut receivers = Vec::new();
    for i in 0..args.receivers {
        let url = args.urls[i % args.urls.len()].clone();
        let user = format!("{}-rx{i}", args.run.prefix);
        let (room, ready, start) = (room.clone(), ready.clone(), start.clone());
        receivers.push(tokio::spawn(async move {
            let socket = joined(&url, &user, &room).await;
            ready.wait().await;
            let clock = started(start).await?;
            receive(socket?, clock).await
        }));
    }
    let mut senders = Vec::new();
    for i in 0..args.senders {
        let url = args.urls[(i + 1) % args.urls.len()].clone();
        let user = format!("{}-tx{i}", args.run.prefix);
        let (room, ready, start, args) = (room.clone(), ready.clone(), start.clone(), args.clone());
        senders.push(tokio::spawn(async move {
            let socket = joined(&url, &user, &room).await;
            ready.wait().await;
            let clock = started(start).await?;
            send(socket?, i, &room, &args, clock).await
        }));
    }
    ready.wait().await;
    let epoch = Instant::now();
    let clock = Clock {
        epoch,
        measure_from: Duration::from_secs_f64(args.run.warmup),
        end: Duration::from_secs_f64(args.run.warmup + args.run.seconds),
    };
    go.send(Some(clock))
        .context("every connection task ended")?;

    let (mut sent, mut errors, mut ack_latency) = (0u64, 0u64, histogram());
    let mut failed = 0;
    for task in senders {
        match task.await? {
            Ok(s) => {
                sent += s.acked;
                errors += s.errors;
                ack_latency.add(&s.ack_latency)?;
            }
            Err(err) => {
                failed += 1;
                eprintln!("sender failed: {err:#}");
            }
        }
    }
    let (mut latency, mut deliveries) = (histogram(), 0u64);
    for task in receivers {
        match task.await? {
            Ok(r) => {
                deliveries += r.deliveries;
                latency.add(&r.latency)?;
            }
            Err(err) => {
                failed += 1;
                eprintln!("receiver failed: {err:#}");
            }
        }
    }
    let expected = sent * args.receivers as u64;
    let dropped_after = dropped(&args.urls).await;
    let result = json!({
        "scenario": "cluster",
        "label": args.run.label,
        "nodes": args.urls.len(),
        "receivers": args.receivers,
        "senders": args.senders,
        "target_rate": args.rate,
        "acked_per_sec": sent as f64 / args.run.seconds,
        "deliveries_per_sec": deliveries as f64 / args.run.seconds,
        "delivery_latency": percentiles(&latency),
        "ack_latency": percentiles(&ack_latency),
        "lost_deliveries": expected.saturating_sub(deliveries),
        "redis_dropped": dropped_after.saturating_sub(dropped_before),
        "send_errors": errors,
        "failed_connections": failed,
    });
    println!("{result}");
    Ok(())
}

/// The run's clock, once every connection is in the room.
async fn started(mut start: watch::Receiver<Option<Clock>>) -> anyhow::Result<Clock> {
    let clock = start
        .wait_for(Option::is_some)
        .await
        .context("the run never started")?;
    (*clock).context("the run never started")
}

async fn joined(url: &str, user: &str, room: &str) -> anyhow::Result<Socket> {
    let mut socket = Socket::connect(url, &json!({ "username": user })).await?;
    let reply = socket.call(0, "join", &json!({ "room": room })).await?;
    anyhow::ensure!(reply["ok"] == true, "join refused: {reply}");
    Ok(socket)
}

/// Reads `message` events until the run is over and the stragglers had time to arrive.
async fn receive(mut socket: Socket, clock: Clock) -> anyhow::Result<Received> {
    let mut out = Received {
        latency: histogram(),
        deliveries: 0,
    };
    let stop = clock.epoch + clock.end + Duration::from_secs(3);
    loop {
        let incoming = tokio::select! {
            incoming = socket.next() => incoming?,
            () = tokio::time::sleep_until(stop) => return Ok(out),
        };
        let Incoming::Event(event) = incoming else {
            continue;
        };
        let Some(scheduled) = scheduled_at(&event) else {
            continue;
        };
        if clock.measured(scheduled) {
            out.deliveries += 1;
            record(
                &mut out.latency,
                clock.epoch.elapsed().saturating_sub(scheduled),
            );
        }
    }
}

/// The scheduled send time a bench message carries in its text: `t=<µs> ...`.
fn scheduled_at(event: &str) -> Option<Duration> {
    let (name, rest) = event.strip_prefix("[\"")?.split_once('"')?;
    if name != "message" {
        return None;
    }
    let at = rest.split_once("\"text\":\"t=")?.1;
    let digits = at.bytes().take_while(u8::is_ascii_digit).count();
    Some(Duration::from_micros(at[..digits].parse().ok()?))
}

async fn send(
    mut socket: Socket,
    i: usize,
    room: &str,
    args: &Args,
    clock: Clock,
) -> anyhow::Result<Sent> {
    let mut out = Sent {
        acked: 0,
        errors: 0,
        ack_latency: histogram(),
    };
    let interval = Duration::from_secs_f64(args.senders as f64 / args.rate);
    let mut next = interval.mul_f64(i as f64 / args.senders as f64);
    let mut pending: std::collections::HashMap<u64, Duration> = std::collections::HashMap::new();
    let mut id = 1u64;
    let give_up = clock.end + Duration::from_secs(10);
    loop {
        let now = clock.epoch.elapsed();
        if (now >= clock.end && pending.is_empty()) || now >= give_up {
            out.errors += pending.len() as u64;
            return Ok(out);
        }
        let wake = if next < clock.end { next } else { give_up };
        tokio::select! {
            incoming = socket.next() => {
                let Incoming::Ack(ack, reply) = incoming? else { continue };
                let Some(scheduled) = pending.remove(&ack) else { continue };
                if clock.measured(scheduled) {
                    if reply.get("ok") == Some(&Value::Bool(true)) {
                        out.acked += 1;
                        record(&mut out.ack_latency, clock.epoch.elapsed().saturating_sub(scheduled));
                    } else {
                        out.errors += 1;
                    }
                }
            }
            () = tokio::time::sleep_until(clock.epoch + wake) => {
                if next < clock.end {
                    let text = format!("t={} from sender {i}", next.as_micros());
                    socket.emit_with_ack(id, "message", &json!({ "room": room, "text": text })).await?;
                    pending.insert(id, next);
                    id += 1;
                    next += interval;
                }
            }
        }
    }
}

/// The sum of `chatoxide_redis_dropped_total` over the nodes (0 where it is not exported).
async fn dropped(urls: &[String]) -> u64 {
    let mut total = 0;
    for url in urls {
        let Ok(res) = reqwest::get(format!("{url}/metrics")).await else {
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
