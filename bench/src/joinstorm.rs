//! The join storm: N sockets, connected beforehand, send `join` for one room at the same moment.
//! Measured: the time to the last answer, the answers that were not ok (by error code), the
//! server's CPU until the last answer and until the room is quiet, and whether the next message
//! in the room then reaches every joiner exactly once.

use crate::report;
use crate::server;
use chatoxide_sio::{Incoming, Socket};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// The server's process id (its CPU time is read from /proc).
    #[arg(long)]
    pid: u32,
    /// Sockets that join at once.
    #[arg(long, default_value_t = 5000)]
    sockets: usize,
    /// Handshakes in flight at once while connecting (before the storm).
    #[arg(long, default_value_t = 500)]
    concurrency: usize,
    /// Prefix of the room and user names (a run's own).
    #[arg(long, default_value = "storm")]
    prefix: String,
    /// A label printed with the result.
    #[arg(long, default_value = "")]
    label: String,
}

/// What one joiner saw of its join.
struct Answer {
    /// Time from the storm's start to the join's answer.
    after: Duration,
    /// `None` when ok, else the error code (or what went wrong instead of an answer).
    error: Option<String>,
    member_count: Option<u64>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let room = format!("{}-room", args.prefix);
    let probe = format!("{}-probe", args.prefix);
    let end = format!("{}-end", args.prefix);
    let sockets = connect_all(&args).await?;
    let (start_tx, start) = watch::channel(None::<Instant>);
    let (answered, mut answers) = mpsc::unbounded_channel();
    let mut joiners = tokio::task::JoinSet::new();
    for socket in sockets {
        let joiner = Joiner {
            room: room.clone(),
            probe: probe.clone(),
            end: end.clone(),
        };
        joiners.spawn(joiner.run(socket, start.clone(), answered.clone()));
    }
    drop(answered);
    // Every joiner is waiting for the start: let them settle, then go.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu_before = server::cpu_secs(args.pid)?;
    start_tx.send_replace(Some(Instant::now()));
    let mut latencies = report::histogram();
    let mut failures = BTreeMap::<String, usize>::new();
    let (mut ok, mut last_ok, mut max_count) = (0, Duration::ZERO, 0);
    for _ in 0..args.sockets {
        let Some(answer) = answers.recv().await else {
            break;
        };
        match answer.error {
            None => {
                ok += 1;
                report::record(&mut latencies, answer.after);
                last_ok = last_ok.max(answer.after);
            }
            Some(code) => *failures.entry(code).or_default() += 1,
        }
        max_count = max_count.max(answer.member_count.unwrap_or(0));
    }
    let cpu_at_last_answer = server::cpu_secs(args.pid)?;
    // The sender joins after the storm: a socket that waited through it without reading would
    // miss its pings and be dropped by a slow server.
    let mut sender = Socket::join_as(&args.url, &format!("{}-sender", args.prefix), &room).await?;
    // The next message, then a last one: a joiner has all it will get of the first once the
    // second is in (events to one socket come in order).
    sender
        .call(2, "message", &json!({ "room": room, "text": probe }))
        .await?;
    sender
        .call(3, "message", &json!({ "room": room, "text": end }))
        .await?;
    let mut delivered = Vec::with_capacity(args.sockets);
    while let Some(probes) = joiners.join_next().await {
        delivered.push(probes.unwrap_or(usize::MAX));
    }
    let cpu_quiet = server::cpu_secs(args.pid)?;
    let result = json!({
        "scenario": "joinstorm",
        "label": args.label,
        "sockets": args.sockets,
        "ok": ok,
        "failures": failures,
        "last_ok_ms": last_ok.as_secs_f64() * 1000.0,
        "latency": report::percentiles(&latencies),
        "max_member_count": max_count,
        "server_cpu_secs_to_last_answer": cpu_at_last_answer - cpu_before,
        "server_cpu_secs_until_quiet": cpu_quiet - cpu_before,
        "next_message_once": delivered.iter().filter(|p| **p == 1).count(),
        "next_message_missing": delivered.iter().filter(|p| **p == 0).count(),
        "next_message_duplicated": delivered.iter().filter(|p| **p > 1 && **p != usize::MAX).count(),
    });
    println!("{result}");
    Ok(())
}

async fn connect_all(args: &Args) -> anyhow::Result<Vec<Socket>> {
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut tasks = Vec::with_capacity(args.sockets);
    for i in 0..args.sockets {
        let (gate, url) = (gate.clone(), args.url.clone());
        let user = format!("{}-{i:05}", args.prefix);
        tasks.push(tokio::spawn(async move {
            let _turn = gate.acquire_owned().await?;
            Socket::connect(&url, &json!({ "username": user })).await
        }));
    }
    let mut sockets = Vec::with_capacity(args.sockets);
    for task in tasks {
        sockets.push(task.await??);
    }
    Ok(sockets)
}

/// One joiner of the storm.
struct Joiner {
    room: String,
    probe: String,
    end: String,
}

/// How long a joiner waits for its answer, and then for the end message.
const PATIENCE: Duration = Duration::from_secs(60);

impl Joiner {
    /// Waits for the start, joins, reports its answer, then reads everything that comes (the
    /// room's `user_joined` events) and returns how often the probe message arrived before the
    /// end message.
    async fn run(
        self,
        mut socket: Socket,
        mut start: watch::Receiver<Option<Instant>>,
        answered: mpsc::UnboundedSender<Answer>,
    ) -> usize {
        let started = match start.wait_for(Option::is_some).await {
            Ok(at) => at.unwrap_or_else(Instant::now),
            Err(_) => return 0,
        };
        let arg = json!({ "room": self.room });
        let join = socket.call(1, "join", &arg);
        let answer = match tokio::time::timeout(PATIENCE, join).await {
            Ok(Ok(reply)) if reply["ok"] == Value::Bool(true) => Answer {
                after: started.elapsed(),
                error: None,
                member_count: reply["member_count"].as_u64(),
            },
            Ok(Ok(reply)) => Answer {
                after: started.elapsed(),
                error: Some(
                    reply["error"]["code"]
                        .as_str()
                        .unwrap_or("malformed")
                        .to_owned(),
                ),
                member_count: None,
            },
            Ok(Err(_)) => Answer {
                after: started.elapsed(),
                error: Some("connection lost".to_owned()),
                member_count: None,
            },
            Err(_) => Answer {
                after: PATIENCE,
                error: Some("no answer".to_owned()),
                member_count: None,
            },
        };
        let _ = answered.send(answer);
        let (probe, end) = (
            format!("\"text\":\"{}\"", self.probe),
            format!("\"text\":\"{}\"", self.end),
        );
        let mut probes = 0;
        let _ = tokio::time::timeout(PATIENCE, async {
            loop {
                match socket.next().await {
                    Ok(Incoming::Event(event)) if event.json().starts_with("[\"message\"") => {
                        if event.json().contains(&probe) {
                            probes += 1;
                        } else if event.json().contains(&end) {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        })
        .await;
        probes
    }
}
