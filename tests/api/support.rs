//! `spawn_app()`, and a chat client on the shared Socket.IO client (`chatoxide-sio`).

use chatoxide::config::Config;
use chatoxide::startup::App;
use chatoxide_sio::{Incoming, Refused, Socket};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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

/// A Socket.IO client on namespace `/`, enough to speak the chat contract: ack ids of its own,
/// and the events that arrive while it waits for something else kept for later.
pub struct Client {
    socket: Socket,
    next_ack: u64,
    events: VecDeque<(String, Value)>,
}

impl Client {
    /// Opens the WebSocket transport and connects to `/` with `auth`; a refused handshake is
    /// `Err(connect_error message)`.
    pub async fn connect(port: u16, auth: Value) -> Result<Self, String> {
        let base = format!("http://127.0.0.1:{port}");
        let connected = tokio::time::timeout(WAIT, Socket::connect(&base, &auth))
            .await
            .expect("a handshake within the wait");
        match connected {
            Ok(socket) => Ok(Self {
                socket,
                next_ack: 0,
                events: VecDeque::new(),
            }),
            Err(err) => Err(err
                .downcast_ref::<Refused>()
                .map_or_else(|| err.to_string(), |refused| refused.0.clone())),
        }
    }

    /// Sends `event` with `arg` and returns its acknowledgement.
    pub async fn command(&mut self, event: &str, arg: Value) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        self.socket
            .emit_with_ack(id, event, &arg)
            .await
            .expect("sent");
        loop {
            match self.incoming().await {
                Incoming::Ack(got, reply) if got == id => return reply,
                Incoming::Ack(..) => {}
                Incoming::Event(event) => self.events.extend(event.parse()),
            }
        }
    }

    /// Sends `event` without asking for an acknowledgement.
    pub async fn emit(&mut self, event: &str, arg: Value) {
        self.socket.emit(event, &arg).await.expect("sent");
    }

    /// The next server event named `name` (earlier events of other names are kept).
    pub async fn event(&mut self, name: &str) -> Value {
        if let Some(i) = self.events.iter().position(|(n, _)| n == name) {
            return self.events.remove(i).map(|(_, v)| v).unwrap();
        }
        loop {
            if let Incoming::Event(event) = self.incoming().await
                && let Some((event, arg)) = event.parse()
            {
                if event == name {
                    return arg;
                }
                self.events.push_back((event, arg));
            }
        }
    }

    /// The next ack or event, answering engine.io pings on the way.
    async fn incoming(&mut self) -> Incoming {
        tokio::time::timeout(WAIT, self.socket.next())
            .await
            .expect("a packet within the wait")
            .expect("the socket is open and speaks Socket.IO")
    }
}
