//! `spawn_app()` and a minimal Socket.IO v5 client over WebSocket (Engine.IO v4 framing).

use chatoxide::config::Config;
use chatoxide::startup::App;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

const WAIT: Duration = Duration::from_secs(5);

/// A running app and the means to stop it.
pub struct TestApp {
    pub port: u16,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn connect(&self, auth: Value) -> Result<Client, String> {
        Client::connect(self.port, auth).await
    }

    pub async fn connect_as(&self, name: &str) -> Client {
        self.connect(json!({ "username": name }))
            .await
            .expect("handshake accepted")
    }

    /// Triggers the shutdown sequence and waits for `run_until_stopped` to return.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(20), &mut self.task).await??
    }
}

/// Starts the app on a free port with `config` (see [`Config::ephemeral`]).
pub async fn spawn_app_with(config: Config) -> TestApp {
    let app = App::build(config).await.expect("app builds");
    let port = app.local_addr().expect("bound").port();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        port,
        stop: Some(stop),
        task,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Config::ephemeral()).await
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// A Socket.IO client on namespace `/`, enough to speak the chat contract.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_ack: u64,
    events: VecDeque<(String, Value)>,
}

impl Client {
    /// Opens the WebSocket transport and connects to `/` with `auth`; a refused handshake is
    /// `Err(connect_error message)`.
    pub async fn connect(port: u16, auth: Value) -> Result<Self, String> {
        let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = connect_async(url).await.map_err(|e| e.to_string())?;
        let mut client = Self {
            ws,
            next_ack: 0,
            events: VecDeque::new(),
        };
        let open = client.frame().await;
        assert!(open.starts_with('0'), "engine.io open, got {open}");
        client.send(format!("40{auth}")).await;
        loop {
            let packet = client.frame().await;
            if let Some(ok) = packet.strip_prefix("40") {
                assert!(ok.contains("sid"), "connect packet carries a sid: {packet}");
                return Ok(client);
            }
            if let Some(err) = packet.strip_prefix("44") {
                let err: Value = serde_json::from_str(err).expect("connect_error is JSON");
                return Err(err["message"].as_str().unwrap_or_default().to_owned());
            }
        }
    }

    /// Sends `event` with `arg` and returns its acknowledgement.
    pub async fn command(&mut self, event: &str, arg: Value) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        self.send(format!("42{id}{}", json!([event, arg]))).await;
        let prefix = format!("3{id}");
        loop {
            let packet = self.packet().await;
            if let Some(body) = packet.strip_prefix(&prefix) {
                let mut args: Vec<Value> = serde_json::from_str(body).expect("ack args");
                return args.swap_remove(0);
            }
            self.keep_event(&packet);
        }
    }

    /// Sends `event` without asking for an acknowledgement.
    pub async fn emit(&mut self, event: &str, arg: Value) {
        self.send(format!("42{}", json!([event, arg]))).await;
    }

    /// The next server event named `name` (earlier events of other names are kept).
    pub async fn event(&mut self, name: &str) -> Value {
        if let Some(i) = self.events.iter().position(|(n, _)| n == name) {
            return self.events.remove(i).map(|(_, v)| v).unwrap();
        }
        loop {
            let packet = self.packet().await;
            if let Some((event, arg)) = parse_event(&packet) {
                if event == name {
                    return arg;
                }
                self.events.push_back((event, arg));
            }
        }
    }

    fn keep_event(&mut self, packet: &str) {
        if let Some(event) = parse_event(packet) {
            self.events.push_back(event);
        }
    }

    /// The next Socket.IO packet, answering engine.io pings on the way.
    async fn packet(&mut self) -> String {
        loop {
            let frame = self.frame().await;
            if frame == "2" {
                self.send("3".to_owned()).await;
                continue;
            }
            if let Some(packet) = frame.strip_prefix('4') {
                return packet.to_owned();
            }
        }
    }

    async fn frame(&mut self) -> String {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame within the wait")
                .expect("the socket is open")
                .expect("a readable frame");
            if let Frame::Text(text) = frame {
                return text.to_string();
            }
        }
    }

    async fn send(&mut self, text: String) {
        self.ws.send(Frame::text(text)).await.expect("sent");
    }
}

fn parse_event(packet: &str) -> Option<(String, Value)> {
    let body = packet.strip_prefix('2')?;
    let start = body.find('[')?;
    let mut args: Vec<Value> = serde_json::from_str(&body[start..]).ok()?;
    if args.len() < 2 {
        return None;
    }
    let arg = args.swap_remove(1);
    Some((args[0].as_str()?.to_owned(), arg))
}
