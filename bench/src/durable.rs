//! The durable scenario: many senders, acknowledged `message` (or `typing`) commands, in one or many rooms.
//!
//! Closed loop (default): each connection keeps `window` messages in flight; the result is the
//! throughput the server sustains. Open loop (`--rate`): messages leave on a fixed schedule and
//! latency counts from the scheduled time, so a stalled server cannot hide its queueing.

use crate::report::{Run, histogram, percentiles, record};
use chatoxide_sio::{Incoming, Socket};
use hdrhistogram::Histogram;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;
use tokio::time::Instant;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// Sending connections.
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Rooms the connections are spread over.
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Messages in flight per connection (closed loop).
    #[arg(long, default_value_t = 4)]
    window: usize,
    /// Total messages per second (open loop); unset: closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// The command timed: `message` (stored before its ack) or `typing` (a round trip through
    /// the server and its broadcast, nothing stored).
    #[arg(long, value_enum, default_value_t = Command::Message)]
    command: Command,
    #[command(flatten)]
    run: Run,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
enum Command {
    Message,
    Typing,
}

struct Outcome {
    latency: Histogram<u64>,
    acked: u64,
    errors: BTreeMap<String, u64>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let barrier = Arc::new(Barrier::new(args.connections + 1));
    let mut tasks = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let (args, barrier) = (args.clone(), barrier.clone());
        tasks.push(tokio::spawn(
            async move { connection(i, args, barrier).await },
        ));
    }
    barrier.wait().await;
    let mut latency = histogram();
    let (mut acked, mut errors, mut failed) = (0, BTreeMap::new(), 0);
    for task in tasks {
        match task.await? {
            Ok(o) => {
                latency.add(&o.latency)?;
                acked += o.acked;
                for (code, n) in o.errors {
                    *errors.entry(code).or_insert(0) += n;
                }
            }
            Err(err) => {
                failed += 1;
                eprintln!("connection failed: {err:#}");
            }
        }
    }
    let result = json!({
        "scenario": "durable",
        "label": args.run.label,
        "command": if args.command == Command::Typing { "typing" } else { "message" },
        "mode": if args.rate.is_some() { "open" } else { "closed" },
        "connections": args.connections,
        "rooms": args.rooms,
        "target_rate": args.rate,
        "acked_per_sec": acked as f64 / args.run.seconds,
        "ack_latency": percentiles(&latency),
        "errors": errors,
        "failed_connections": failed,
    });
    println!("{result}");
    Ok(())
}

async fn connection(i: usize, args: Args, barrier: Arc<Barrier>) -> anyhow::Result<Outcome> {
    let user = format!("{}-u{i}", args.run.prefix);
    let room = format!("{}-r{}", args.run.prefix, i % args.rooms);
    let joined = async {
        let mut socket = Socket::connect(&args.url, &json!({ "username": user })).await?;
        socket.call(0, "join", &json!({ "room": room })).await?;
        anyhow::Ok(socket)
    }
    .await;
    barrier.wait().await;
    let mut socket = joined?;
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.run.warmup);
    let end = measure_from + Duration::from_secs_f64(args.run.seconds);
    let mut sent_at: HashMap<u64, Instant> = HashMap::new();
    let mut out = Outcome {
        latency: histogram(),
        acked: 0,
        errors: BTreeMap::new(),
    };
    let mut next_id = 1u64;
    let interval = args
        .rate
        .map(|r| Duration::from_secs_f64(args.connections as f64 / r));
    // Open loop: the schedule of sends; closed loop: fill the window.
    let mut next_send = start
        + interval.map_or(Duration::ZERO, |d| {
            d.mul_f64(i as f64 / args.connections as f64)
        });
    if interval.is_none() {
        for _ in 0..args.window {
            send(
                &mut socket,
                &args,
                &room,
                &user,
                &mut next_id,
                &mut sent_at,
                Instant::now(),
            )
            .await?;
        }
    }
    loop {
        let now = Instant::now();
        if now >= end && sent_at.is_empty() {
            break;
        }
        if now >= end + Duration::from_secs(10) {
            out.errors.insert("unanswered".into(), sent_at.len() as u64);
            break;
        }
        let wake = match interval {
            Some(_) if now < end => next_send,
            _ => end + Duration::from_secs(10),
        };
        tokio::select! {
            incoming = socket.next() => {
                let Incoming::Ack(id, reply) = incoming? else { continue };
                let Some(scheduled) = sent_at.remove(&id) else { continue };
                let at = Instant::now();
                if scheduled >= measure_from && scheduled < end {
                    if reply["ok"] == true {
                        out.acked += 1;
                        record(&mut out.latency, at - scheduled);
                    } else {
                        let code = reply["error"]["code"].as_str().unwrap_or("malformed").to_owned();
                        *out.errors.entry(code).or_insert(0) += 1;
                    }
                }
                if interval.is_none() && at < end {
                    send(&mut socket, &args, &room, &user, &mut next_id, &mut sent_at, at).await?;
                }
            }
            () = tokio::time::sleep_until(wake) => {
                if let Some(interval) = interval && wake < end {
                    send(&mut socket, &args, &room, &user, &mut next_id, &mut sent_at, next_send).await?;
                    next_send += interval;
                }
            }
        }
    }
    Ok(out)
}

async fn send(
    socket: &mut Socket,
    args: &Args,
    room: &str,
    user: &str,
    next_id: &mut u64,
    sent_at: &mut HashMap<u64, Instant>,
    scheduled: Instant,
) -> anyhow::Result<()> {
    let id = *next_id;
    *next_id += 1;
    sent_at.insert(id, scheduled);
    match args.command {
        Command::Message => {
            let arg = json!({ "room": room, "text": format!("message {id} from {user}"), "client_id": format!("{user}-{id}") });
            socket.emit_with_ack(id, "message", &arg).await
        }
        Command::Typing => {
            let arg = json!({ "room": room, "typing": id % 2 == 1 });
            socket.emit_with_ack(id, "typing", &arg).await
        }
    }
}
