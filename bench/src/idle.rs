//! The idle scenario: N Socket.IO connections (WebSocket, `auth.username`) held open doing
//! nothing; what each costs the server: its resident memory (from /proc/<pid>/status) and the
//! kernel's TCP buffers (from /proc/net/sockstat), measured before and after, divided by N.
//! The server and the load tool must run on the same machine (the tool reads /proc).

use crate::socketio::Socket;
use anyhow::Context;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// The server's process id (its memory is read from /proc).
    #[arg(long)]
    pid: u32,
    /// Connections to hold (a process may hold at most about 20,000 open files here).
    #[arg(long, default_value_t = 5000)]
    connections: usize,
    /// Handshakes in flight at once while connecting.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Seconds the connections are held before measuring (the server settles).
    #[arg(long, default_value_t = 3.0)]
    settle: f64,
    /// Open Engine.IO sessions only, without the Socket.IO `connect`: what the transport costs.
    #[arg(long)]
    engine_only: bool,
    /// Prefix of user names (a run's own).
    #[arg(long, default_value = "idle")]
    prefix: String,
    /// A label printed with the result.
    #[arg(long, default_value = "")]
    label: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let before = Memory::read(args.pid)?;
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut tasks = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let (gate, url, engine_only) = (gate.clone(), args.url.clone(), args.engine_only);
        let user = format!("{}-{i}", args.prefix);
        tasks.push(tokio::spawn(async move {
            let _turn = gate.acquire_owned().await?;
            if engine_only {
                Socket::open(&url).await
            } else {
                Socket::connect(&url, &json!({ "username": user })).await
            }
        }));
    }
    let mut held = Vec::with_capacity(args.connections);
    let mut failed = 0;
    for task in tasks {
        match task.await? {
            Ok(socket) => held.push(socket),
            Err(err) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("connection failed: {err:#}");
                }
            }
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let after = Memory::read(args.pid)?;
    let n = held.len().max(1) as f64;
    let result = json!({
        "scenario": "idle",
        "label": args.label,
        "engine_only": args.engine_only,
        "connections": held.len(),
        "failed_connections": failed,
        "connect_secs": connect_secs,
        "rss_kib_before": before.rss_kib,
        "rss_kib_after": after.rss_kib,
        "rss_bytes_per_connection": (after.rss_kib.saturating_sub(before.rss_kib)) as f64 * 1024.0 / n,
        "kernel_tcp_bytes_per_connection": (after.tcp_pages.saturating_sub(before.tcp_pages)) as f64 * 4096.0 / n,
    });
    println!("{result}");
    drop(held);
    Ok(())
}

struct Memory {
    rss_kib: u64,
    /// Pages the kernel holds for TCP buffers, all sockets of the machine (both ends here).
    tcp_pages: u64,
}

impl Memory {
    fn read(pid: u32) -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        let rss_kib = field(&status, "VmRSS:").context("no VmRSS")?;
        let sockstat = std::fs::read_to_string("/proc/net/sockstat").context("reading sockstat")?;
        let tcp_pages = sockstat
            .lines()
            .find(|l| l.starts_with("TCP:"))
            .and_then(|l| l.split_whitespace().skip_while(|w| *w != "mem").nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok(Self { rss_kib, tcp_pages })
    }
}

fn field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}
