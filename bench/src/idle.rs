//! The idle scenario: N Socket.IO connections (WebSocket, `auth.username`) held open doing
//! nothing; what each costs the server: its resident memory (from /proc/<pid>/status) and the
//! kernel's TCP buffers (from /proc/net/sockstat), measured before and after, divided by N.
//! The server and the load tool must run on the same machine (the tool reads /proc).

use crate::server;
use chatoxide_sio::Socket;
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
    /// After measuring, keep the connections open (answering pings) until the process is
    /// stopped, so that another load can run beside them.
    #[arg(long)]
    hold: bool,
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
    let (rss_before, tcp_before) = (server::rss_kib(args.pid)?, server::tcp_pages()?);
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
    let (rss_after, tcp_after) = (server::rss_kib(args.pid)?, server::tcp_pages()?);
    let n = held.len().max(1) as f64;
    let result = json!({
        "scenario": "idle",
        "label": args.label,
        "engine_only": args.engine_only,
        "connections": held.len(),
        "failed_connections": failed,
        "connect_secs": connect_secs,
        "connections_per_sec": held.len() as f64 / connect_secs,
        "rss_kib_before": rss_before,
        "rss_kib_after": rss_after,
        "rss_bytes_per_connection": rss_after.saturating_sub(rss_before) as f64 * 1024.0 / n,
        "kernel_tcp_bytes_per_connection": tcp_after.saturating_sub(tcp_before) as f64 * 4096.0 / n,
    });
    println!("{result}");
    if args.hold {
        // Held (answering pings) until the process is stopped: other loads run beside them.
        let mut pumps = tokio::task::JoinSet::new();
        for mut socket in held {
            pumps.spawn(async move { while socket.next().await.is_ok() {} });
        }
        while pumps.join_next().await.is_some() {}
        eprintln!("every held connection closed");
    }
    Ok(())
}
