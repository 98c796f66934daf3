//! The reconnect storm: N clients connected and in one room; the server is killed (by the
//! caller, once this prints `ready`) and started again; every client comes back as
//! socket.io-client does (the first try after about 1 s, then 2, 4, 5, 5 s…, each ±50 %), joins
//! its room again as apps do on `connect`, and the time until the last one is back is measured
//! from the moment the server listens again. Then one message to the room must reach every
//! client.

use crate::source_ports::SourcePorts;
use chatoxide_sio::{Incoming, Refused, Socket};
use rand::Rng;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// Clients.
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    /// Handshakes in flight at once for the first connection (not after the restart: then
    /// every client comes back on its own schedule).
    #[arg(long, default_value_t = 500)]
    concurrency: usize,
    /// Prefix of the room and user names (a run's own).
    #[arg(long, default_value = "back")]
    prefix: String,
    /// A label printed with the result.
    #[arg(long, default_value = "")]
    label: String,
    /// The first local port the clients connect from (each keeps its own; the ports after it
    /// must be free, 10,000 of them for 10,000 clients).
    #[arg(long, default_value_t = 20_000)]
    first_port: u16,
    /// A file holding the process id of the server started again: its CPU time until every
    /// client is back is reported.
    #[arg(long)]
    pid_file: Option<std::path::PathBuf>,
}

/// socket.io-client's reconnection defaults: `reconnectionDelay` 1000, `reconnectionDelayMax`
/// 5000, `randomizationFactor` 0.5.
const DELAY: Duration = Duration::from_millis(1000);
const DELAY_MAX: Duration = Duration::from_millis(5000);
const JITTER: f64 = 0.5;

/// How long the whole storm may take before the run gives up on the missing clients.
const PATIENCE: Duration = Duration::from_secs(120);

/// What a client tells the coordinator.
enum News {
    /// Connected and joined: the first time (`false`), or again after losing its connection.
    Up(bool),
    /// Lost its connection.
    Down,
    /// A try failed (refused, or the server is not there yet), with the error code if any.
    Refused(String),
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let room = format!("{}-room", args.prefix);
    let probe = format!("{}-probe", args.prefix);
    let (news, mut heard) = mpsc::unbounded_channel();
    let probes = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let ports = Arc::new(SourcePorts::from(args.first_port));
    for i in 0..args.clients {
        let client = Client {
            ports: ports.clone(),
            port: None,
            url: args.url.clone(),
            user: format!("{}-{i:05}", args.prefix),
            room: room.clone(),
            probe: format!("\"text\":\"{probe}\""),
            probes: probes.clone(),
            news: news.clone(),
        };
        tokio::spawn(client.run(gate.clone()));
    }
    drop(news);
    let mut up = 0;
    while up < args.clients {
        match heard.recv().await {
            Some(News::Up(_)) => up += 1,
            Some(News::Down | News::Refused(_)) => {}
            None => anyhow::bail!("every client stopped"),
        }
    }
    println!("ready");
    std::io::stdout().flush()?;
    // The caller kills the server now, and starts it again: from the first client that
    // notices, every client must come back once.
    let mut returned = 0;
    loop {
        match heard.recv().await {
            Some(News::Down) => break,
            Some(_) => {}
            None => anyhow::bail!("every client stopped"),
        }
    }
    let down = Instant::now();
    let listening = tokio::spawn(listening_again(args.url.clone()));
    let (mut refusals, mut codes) = (0usize, std::collections::BTreeMap::<String, usize>::new());
    let storm = async {
        let mut progress = tokio::time::interval(Duration::from_millis(500));
        while returned < args.clients {
            let news = tokio::select! {
                news = heard.recv() => news,
                _ = progress.tick() => {
                    eprintln!("{:>6} ms after the server went: {returned} back", down.elapsed().as_millis());
                    continue;
                }
            };
            match news {
                Some(News::Up(again)) => returned += usize::from(again),
                Some(News::Down) => {}
                Some(News::Refused(code)) => {
                    refusals += 1;
                    *codes.entry(code).or_default() += 1;
                }
                None => break,
            }
        }
    };
    let (complete, listening) = tokio::join!(tokio::time::timeout(PATIENCE, storm), listening);
    let back = Instant::now();
    let (complete, listening) = (complete.is_ok(), listening?);
    // The server started again just now: its CPU time is what it spent since.
    let cpu_secs = match &args.pid_file {
        Some(file) => {
            let pid: u32 = std::fs::read_to_string(file)?.trim().parse()?;
            Some(crate::server::cpu_secs(pid)?)
        }
        None => None,
    };
    // Back in the room: one message reaches every client.
    let mut sender = Socket::join_as(&args.url, &format!("{}-sender", args.prefix), &room).await?;
    sender
        .call(2, "message", &json!({ "room": room, "text": probe }))
        .await?;
    let delivered = async {
        while probes.load(Ordering::SeqCst) < args.clients {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), delivered).await;
    let result = json!({
        "scenario": "reconnect",
        "label": args.label,
        "clients": args.clients,
        "back": returned,
        "complete": complete,
        "server_down_to_listening_ms": listening.duration_since(down).as_secs_f64() * 1000.0,
        "back_after_listening_ms": back.saturating_duration_since(listening).as_secs_f64() * 1000.0,
        "server_cpu_secs": cpu_secs,
        "refused_tries": refusals,
        "refused_by": codes,
        "message_reached": probes.load(Ordering::SeqCst),
    });
    println!("{result}");
    std::process::exit(0);
}

/// When the server accepts connections again.
async fn listening_again(url: String) -> Instant {
    let address = url.trim_start_matches("http://").to_owned();
    loop {
        if tokio::net::TcpStream::connect(&address).await.is_ok() {
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One client, as socket.io-client behaves with its default reconnection settings.
struct Client {
    ports: Arc<SourcePorts>,
    /// The local port this client connects from, once it has one that binds.
    port: Option<u16>,
    url: String,
    user: String,
    room: String,
    /// The probe message's text, as it appears in the event's JSON.
    probe: String,
    probes: Arc<AtomicUsize>,
    news: mpsc::UnboundedSender<News>,
}

impl Client {
    async fn run(mut self, gate: Arc<Semaphore>) {
        let first = gate.acquire_owned().await;
        let mut attempts = 0u32;
        let mut socket = loop {
            match self.join().await {
                Ok(socket) => break socket,
                Err(code) => {
                    let _ = self.news.send(News::Refused(code));
                    attempts += 1;
                    tokio::time::sleep(backoff(attempts)).await;
                }
            }
        };
        drop(first);
        let mut again = false;
        loop {
            let _ = self.news.send(News::Up(again));
            again = true;
            self.listen(&mut socket).await;
            // The connection is closed before a new one is tried from its port.
            drop(socket);
            let _ = self.news.send(News::Down);
            // socket.io-client waits before its first try too.
            attempts = 1;
            socket = loop {
                tokio::time::sleep(backoff(attempts)).await;
                match self.join().await {
                    Ok(socket) => break socket,
                    Err(code) => {
                        let _ = self.news.send(News::Refused(code));
                        attempts += 1;
                    }
                }
            };
        }
    }

    /// Connects and joins the room; the error code (or what failed) otherwise.
    async fn join(&mut self) -> Result<Socket, String> {
        let auth = json!({ "username": self.user });
        let mut socket = loop {
            let port = match self.port {
                Some(port) => port,
                None => self.ports.next().ok_or("out of local ports")?,
            };
            match Socket::connect_from(&self.url, &auth, port).await {
                Ok(socket) => {
                    self.port = Some(port);
                    break socket;
                }
                // Someone else's port (a listening service): the next one.
                Err(e) if is_taken(&e) => self.port = None,
                Err(e) => return Err(refusal_code(&e)),
            }
        };
        let reply = socket
            .call(1, "join", &json!({ "room": self.room }))
            .await
            .map_err(|_| "connection lost".to_owned())?;
        match reply["ok"] {
            Value::Bool(true) => Ok(socket),
            _ => Err(reply["error"]["code"]
                .as_str()
                .unwrap_or("malformed")
                .to_owned()),
        }
    }

    /// Reads until the connection ends, counting the probe message.
    async fn listen(&self, socket: &mut Socket) {
        loop {
            match socket.next().await {
                Ok(Incoming::Event(event)) if event.json().contains(&self.probe) => {
                    self.probes.fetch_add(1, Ordering::SeqCst);
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }
}

/// The wait before try `attempt` (1, 2, …), as socket.io-client's backoff computes it.
fn backoff(attempt: u32) -> Duration {
    let base = DELAY.as_secs_f64() * 2f64.powi(attempt.saturating_sub(1).min(16) as i32);
    let jitter = rand::rng().random_range(-JITTER..=JITTER);
    Duration::from_secs_f64((base * (1.0 + jitter)).min(DELAY_MAX.as_secs_f64()))
}

fn is_taken(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::AddrInUse | std::io::ErrorKind::AddrNotAvailable
            )
        })
    })
}

/// A failed try as the statistics name it: the server's refusal code, an HTTP status, or the
/// connection being refused (the server is not up yet).
fn refusal_code(error: &anyhow::Error) -> String {
    if let Some(Refused(code)) = error.downcast_ref::<Refused>() {
        code.clone()
    } else if format!("{error:#}").contains("429") {
        "http 429".to_owned()
    } else {
        "not listening".to_owned()
    }
}
