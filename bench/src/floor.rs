//! The floor: what one small `send()` to each receiver costs on this machine with no server in
//! between, so that a server's CPU per delivery (the fanout scenario) can be read as a multiple
//! of it.
//!
//! The sender is this process: it listens on loopback, starts the receivers (this binary again,
//! `floor-receivers`, a process of its own: 10,000 connections are 20,000 open files in one
//! process), accepts their connections with a real WebSocket handshake, then sends at stepped
//! fixed rates (open loop) one "message" at a time: one WebSocket frame to every receiver, one
//! write each, as a server's fan-out does with one frame per write. The frame is what tungstenite
//! (the version under engineioxide) writes for a server's text message whose payload is a fanout
//! delivery: a `message` event of the same size. The receivers read and discard.
//!
//! The sender runs on one thread pinned to `--sender-core` (0, where bench/run.sh pins the
//! servers), the receivers on `--receiver-core` (1, the load tool's). Per step, the sender
//! thread's CPU time (user + system as the kernel charges it, `getrusage(RUSAGE_THREAD)`) over
//! the measured window is divided by the sends of that window; beside it, the sender core's busy
//! time from /proc/stat (whatever ran there) per send.
//!
//! `--via` picks how a frame is written: `write`, one non-blocking `send()` per receiver from a
//! plain loop; `tokio`, `TcpStream::write_all` per receiver from one task of a current-thread
//! tokio runtime. Both wait for the next message on tokio's timer.

use crate::report::Run;
use anyhow::{Context, anyhow};
use clap::ValueEnum;
use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::TimeValLike;
use nix::unistd::Pid;
use serde_json::json;
use std::io::{self, Cursor, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tungstenite::protocol::{Message, Role, WebSocket};

/// A fanout delivery as chatoxide's receivers get it: the `message` event of one stored message
/// (235 bytes).
const PAYLOAD: &str = r#"42["message",{"id":"0000000000000001000000000000002a","room":"r1-room","user":{"id":"r1-tx0","name":"r1-tx0"},"text":"t=12345678 from sender 0","client_id":null,"created_at":"2026-11-29T10:00:00.000Z","edited_at":null,"deleted":false}]"#;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Receiving connections.
    #[arg(long, default_value_t = 1000)]
    receivers: usize,
    /// The steps: messages per second (each one frame to every receiver), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10,30,100,200")]
    rates: Vec<f64>,
    /// How each frame is written.
    #[arg(long, value_enum, default_value_t = Via::Write)]
    via: Via,
    /// The sender's core.
    #[arg(long, default_value_t = 0)]
    sender_core: usize,
    /// The receivers' core.
    #[arg(long, default_value_t = 1)]
    receiver_core: usize,
    /// Seconds between steps.
    #[arg(long, default_value_t = 1.0)]
    gap: f64,
    /// Seconds run before measuring (per step), seconds measured (per step), names.
    #[command(flatten)]
    run: Run,
}

/// The receivers' side, started by `floor` itself.
#[derive(clap::Args)]
pub struct ReceiverArgs {
    /// The sender's address.
    #[arg(long)]
    to: SocketAddr,
    /// Connections to open.
    #[arg(long)]
    receivers: usize,
    /// The core to run on.
    #[arg(long)]
    core: usize,
}

#[derive(clap::ValueEnum, Clone, Copy)]
enum Via {
    /// One non-blocking `send()` per receiver from a plain loop.
    Write,
    /// `tokio::net::TcpStream::write_all` per receiver from one task.
    Tokio,
}

/// One step's measured window, as the sender saw it.
struct Step {
    sends: u64,
    /// The CPU time the window cost: `.thread` the sender thread's, `.core` the sender core's.
    cpu: Usage,
    /// The window's length: its scheduled seconds, or until the last fan-out ended if later.
    wall_secs: f64,
    /// How late the last measured message's fan-out ended, after its scheduled time.
    lag: Duration,
    /// Frames that did not go out whole in their own write (the socket's buffer was full).
    blocked: u64,
    /// Messages sent in the whole step, warm-up included.
    messages: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(!args.rates.is_empty(), "--rates names no step");
    anyhow::ensure!(args.receivers > 0, "--receivers must be at least 1");
    let frame = server_frame(PAYLOAD)?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let to = listener.local_addr()?;
    let receivers = Command::new(std::env::current_exe()?)
        .arg("floor-receivers")
        .args(["--to", &to.to_string()])
        .args(["--receivers", &args.receivers.to_string()])
        .args(["--core", &args.receiver_core.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the receivers")?;
    let sender = args.clone();
    let sent = frame.clone();
    let (connect_secs, steps) = pinned(args.sender_core, move |rt| {
        rt.block_on(send(listener, &sender, &sent))
    })
    .await?;
    let out = tokio::task::spawn_blocking(move || receivers.wait_with_output()).await??;
    anyhow::ensure!(out.status.success(), "the receivers failed");
    let received: u64 = String::from_utf8(out.stdout)?.trim().parse()?;
    let messages: u64 = steps.iter().map(|step| step.messages).sum();
    let sent_bytes = frame.len() as u64 * args.receivers as u64 * messages;
    let via = args
        .via
        .to_possible_value()
        .map(|v| v.get_name().to_owned());
    for (rate, step) in args.rates.iter().zip(&steps) {
        let target = rate * args.receivers as f64;
        let sends_per_sec = step.sends as f64 / step.wall_secs;
        let result = json!({
            "scenario": "floor",
            "label": format!("{} {rate}/s", args.run.label),
            "via": via,
            "receivers": args.receivers,
            "target_rate": rate,
            "target_sends_per_sec": target,
            "sends_per_sec": sends_per_sec,
            "sender_cpu_us_per_send": step.cpu.thread * 1e6 / step.sends as f64,
            "sender_cpu_util": step.cpu.thread / step.wall_secs,
            "core_busy_us_per_send": step.cpu.core * 1e6 / step.sends as f64,
            "lag_ms": step.lag.as_secs_f64() * 1e3,
            // Behind, the sender's backlog grows through the window (and its lag with it).
            "kept_up": sends_per_sec >= 0.99 * target,
            "blocked_writes": step.blocked,
            "frame_bytes": frame.len(),
            "lost_bytes": sent_bytes.saturating_sub(received),
            "connect_secs": connect_secs,
        });
        println!("{result}");
    }
    Ok(())
}

/// The receivers: `--receivers` connections to the sender, each after a WebSocket client
/// handshake, read until the sender closes them. Prints the bytes received in all.
pub async fn receivers(args: ReceiverArgs) -> anyhow::Result<()> {
    let total = pinned(args.core, move |rt| {
        let mut streams = Vec::with_capacity(args.receivers);
        for _ in 0..args.receivers {
            let stream = TcpStream::connect(args.to)?;
            stream.set_nodelay(true)?;
            let (ws, _) = tungstenite::client(format!("ws://{}/", args.to), stream)
                .map_err(|e| anyhow!("WebSocket handshake: {e}"))?;
            streams.push(ws.into_inner());
        }
        rt.block_on(discard(streams))
    })
    .await?;
    println!("{total}");
    Ok(())
}

/// Reads every stream to its end, one task each; the bytes read in all.
async fn discard(streams: Vec<TcpStream>) -> anyhow::Result<u64> {
    let mut tasks = tokio::task::JoinSet::new();
    for stream in streams {
        stream.set_nonblocking(true)?;
        let mut stream = tokio::net::TcpStream::from_std(stream)?;
        tasks.spawn(async move {
            let (mut buf, mut total) = (vec![0; 4096], 0);
            loop {
                match stream.read(&mut buf).await? {
                    0 => return io::Result::Ok(total),
                    n => total += n as u64,
                }
            }
        });
    }
    let mut total = 0;
    while let Some(read) = tasks.join_next().await {
        total += read??;
    }
    Ok(total)
}

/// Runs `work` on a new thread pinned to `core`, with a current-thread runtime of its own.
async fn pinned<T, F>(core: usize, work: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce(&tokio::runtime::Runtime) -> anyhow::Result<T> + Send + 'static,
{
    let thread = std::thread::spawn(move || {
        let mut cpus = CpuSet::new();
        cpus.set(core)?;
        sched_setaffinity(Pid::from_raw(0), &cpus).context("pinning to a core")?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        work(&rt)
    });
    tokio::task::spawn_blocking(move || thread.join())
        .await?
        .map_err(|_| anyhow!("the pinned thread panicked"))?
}

/// Accepts the receivers, then runs every step: the seconds connecting took, and the steps.
async fn send(
    listener: std::net::TcpListener,
    args: &Args,
    frame: &[u8],
) -> anyhow::Result<(f64, Vec<Step>)> {
    let connecting = Instant::now();
    let mut writers = Writers::new(args.via, accepted(listener, args.receivers).await?)?;
    let connect_secs = connecting.elapsed().as_secs_f64();
    let mut steps = Vec::with_capacity(args.rates.len());
    for &rate in &args.rates {
        steps.push(step(&mut writers, frame, rate, args).await?);
        tokio::time::sleep(Duration::from_secs_f64(args.gap)).await;
    }
    writers.finish().await?;
    Ok((connect_secs, steps))
}

/// `n` connections, each after a WebSocket server handshake; blocking, TCP_NODELAY (as the
/// servers set it).
async fn accepted(listener: std::net::TcpListener, n: usize) -> anyhow::Result<Vec<TcpStream>> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let (stream, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
            .await
            .context("the receivers stopped connecting")??;
        let stream = stream.into_std()?;
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        let ws = tungstenite::accept(stream).map_err(|e| anyhow!("WebSocket handshake: {e}"))?;
        streams.push(ws.into_inner());
    }
    Ok(streams)
}

/// One step: a message every `1 / rate` seconds, warm-up then the measured window.
async fn step(writers: &mut Writers, frame: &[u8], rate: f64, args: &Args) -> anyhow::Result<Step> {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let measured_from = start + Duration::from_secs_f64(args.run.warmup);
    let measured_until = measured_from + Duration::from_secs_f64(args.run.seconds);
    let (mut at, mut messages, mut before) = (start, 0, None);
    let (mut sends, mut blocked) = (0, 0);
    while at < measured_until {
        tokio::time::sleep_until(at).await;
        if at >= measured_from && before.is_none() {
            before = Some(Usage::now(args.sender_core)?);
        }
        let stalled = writers.fan_out(frame).await?;
        messages += 1;
        if before.is_some() {
            sends += writers.len();
            blocked += stalled;
        }
        at += interval;
    }
    let (after, done) = (Usage::now(args.sender_core)?, Instant::now());
    let before = before.context("no message in the measured window")?;
    Ok(Step {
        sends,
        cpu: Usage {
            thread: after.thread - before.thread,
            core: after.core - before.core,
        },
        wall_secs: (done.max(measured_until) - measured_from).as_secs_f64(),
        lag: done.saturating_duration_since(at - interval),
        blocked,
        messages,
    })
}

/// The sender's connections, written one way or the other.
enum Writers {
    /// Non-blocking sockets, each with the bytes it did not take yet.
    Write(Vec<(TcpStream, Vec<u8>)>),
    Tokio(Vec<tokio::net::TcpStream>),
}

impl Writers {
    fn new(via: Via, streams: Vec<TcpStream>) -> anyhow::Result<Self> {
        for stream in &streams {
            stream.set_nonblocking(true)?;
        }
        Ok(match via {
            Via::Write => Self::Write(streams.into_iter().map(|s| (s, Vec::new())).collect()),
            Via::Tokio => Self::Tokio(
                streams
                    .into_iter()
                    .map(tokio::net::TcpStream::from_std)
                    .collect::<io::Result<_>>()?,
            ),
        })
    }

    fn len(&self) -> u64 {
        match self {
            Self::Write(streams) => streams.len() as u64,
            Self::Tokio(streams) => streams.len() as u64,
        }
    }

    /// One frame to every receiver; the frames that did not go out whole in their own write.
    async fn fan_out(&mut self, frame: &[u8]) -> io::Result<u64> {
        match self {
            Self::Write(streams) => {
                let mut blocked = 0;
                for (stream, backlog) in streams {
                    blocked += u64::from(deliver(stream, backlog, frame)?);
                }
                Ok(blocked)
            }
            Self::Tokio(streams) => {
                for stream in streams {
                    stream.write_all(frame).await?;
                }
                Ok(0)
            }
        }
    }

    /// Writes what the sockets have not taken yet (blocking).
    async fn finish(self) -> io::Result<()> {
        if let Self::Write(streams) = self {
            for (mut stream, backlog) in streams {
                stream.set_nonblocking(false)?;
                stream.write_all(&backlog)?;
            }
        }
        Ok(())
    }
}

/// One frame to one receiver in one `send()`; what the socket does not take waits in front of
/// the receiver's next frame, as in a server's queue. Whether the frame did not go out whole.
fn deliver(stream: &mut TcpStream, backlog: &mut Vec<u8>, frame: &[u8]) -> io::Result<bool> {
    if backlog.is_empty() {
        let sent = taken(stream.write(frame))?;
        backlog.extend_from_slice(&frame[sent..]);
        return Ok(sent < frame.len());
    }
    backlog.extend_from_slice(frame);
    let sent = taken(stream.write(backlog))?;
    backlog.drain(..sent);
    Ok(true)
}

/// The bytes a non-blocking write took: none when the socket's buffer is full.
fn taken(written: io::Result<usize>) -> io::Result<usize> {
    match written {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
        other => other,
    }
}

/// CPU seconds used so far.
struct Usage {
    /// By the calling thread, user + system (`getrusage`, microseconds).
    thread: f64,
    /// On a core, by everything: its busy time in /proc/stat (clock ticks), software interrupts
    /// included.
    core: f64,
}

impl Usage {
    fn now(core: usize) -> anyhow::Result<Self> {
        let usage = getrusage(UsageWho::RUSAGE_THREAD)?;
        let micros = usage.user_time().num_microseconds() + usage.system_time().num_microseconds();
        Ok(Self {
            thread: micros as f64 / 1e6,
            core: core_busy_secs(core)?,
        })
    }
}

/// A core's busy time so far (/proc/stat: user, nice, system, irq and softirq; not idle,
/// iowait, nor steal, the hypervisor's).
fn core_busy_secs(core: usize) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = stat
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cpu{core} ")))
        .with_context(|| format!("no cpu{core} in /proc/stat"))?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let [user, nice, system, _idle, _iowait, irq, softirq, ..] = ticks[..] else {
        anyhow::bail!("a short cpu{core} line in /proc/stat");
    };
    Ok((user + nice + system + irq + softirq) / crate::server::TICKS_PER_SEC)
}

/// The bytes tungstenite writes for a server's text message (unmasked) of `payload`.
fn server_frame(payload: &str) -> anyhow::Result<Vec<u8>> {
    let mut ws = WebSocket::from_raw_socket(Cursor::new(Vec::new()), Role::Server, None);
    ws.send(Message::text(payload))?;
    Ok(ws.into_inner().into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_is_one_unmasked_text_message_of_the_payload() -> anyhow::Result<()> {
        let frame = server_frame(PAYLOAD)?;
        assert_eq!(PAYLOAD.len(), 235);
        assert_eq!(frame.len(), PAYLOAD.len() + 4); // FIN + text, 126, a 16-bit length
        let mut client = WebSocket::from_raw_socket(Cursor::new(frame), Role::Client, None);
        assert_eq!(client.read()?, Message::text(PAYLOAD));
        Ok(())
    }
}
