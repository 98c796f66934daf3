//! Listening and serving: the address, the chat page, a frontend's own files, CORS, the
//! transport's buffers and timeouts, and the shutdown's grace.

use super::compat::Defaults;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

section! {
    #[command(next_help_heading = "Serving")]
    pub struct ServerSettings {
        /// Address to listen on [default: 0.0.0.0].
        #[arg(long, env = "HOST")]
        pub host: Option<IpAddr>,
        /// Port to listen on; 0 picks a free one [default: 3000].
        #[arg(long, env = "PORT")]
        pub port: Option<u16>,
        /// Allowed CORS origins, comma-separated; `*` allows any [default: *].
        #[arg(long, env = "CHATOXIDE_CORS_ORIGINS", value_delimiter = ',')]
        pub cors_origins: Option<Vec<String>>,
        /// Seconds a shutdown may take to finish what is in flight [default: 10].
        #[arg(long, env = "CHATOXIDE_SHUTDOWN_GRACE_SECS")]
        pub shutdown_grace_secs: Option<u64>,
        /// Packets that may wait to be sent to one socket; a client that lets more pile up is
        /// disconnected when an answer is due [default: 1024].
        #[arg(long, env = "CHATOXIDE_SOCKET_BUFFER")]
        pub socket_buffer: Option<usize>,
        /// Bytes of the read buffer each WebSocket connection holds; larger messages take several
        /// reads [default: 1024].
        #[arg(long, env = "CHATOXIDE_WS_READ_BUFFER")]
        pub ws_read_buffer: Option<usize>,
        /// Largest Socket.IO payload a client may send, in bytes: per HTTP long-polling request and
        /// per WebSocket message; binary attachments together count too [default: 100000].
        #[arg(long, env = "CHATOXIDE_MAX_PAYLOAD")]
        pub max_payload: Option<usize>,
        /// Milliseconds a new session may take to send its Socket.IO `connect` before it is closed
        /// (Node's socket.io waits 45 s; clients send it at once) [default: 10000].
        #[arg(long, env = "CHATOXIDE_CONNECT_TIMEOUT_MS")]
        pub connect_timeout_ms: Option<u64>,
        /// Milliseconds between Engine.IO pings [default: 25000, as Node's socket.io].
        #[arg(long, env = "CHATOXIDE_PING_INTERVAL_MS")]
        pub ping_interval_ms: Option<u64>,
        /// Milliseconds a client has to answer a ping; one that does not (it stopped reading) is
        /// disconnected [default: 20000, as Node's socket.io].
        #[arg(long, env = "CHATOXIDE_PING_TIMEOUT_MS")]
        pub ping_timeout_ms: Option<u64>,
        /// Milliseconds data sent to a client may stay unacknowledged (a client that stopped
        /// reading, a dead peer) before the connection is dropped, TCP_USER_TIMEOUT [default: 30000].
        #[arg(long, env = "CHATOXIDE_TCP_USER_TIMEOUT_MS")]
        pub tcp_user_timeout_ms: Option<u64>,
        /// Serve the chat page (plain HTML and JavaScript embedded in the binary) at `/`; false:
        /// `/` answers 404, or the static directory's index.html [default: true].
        #[arg(long, env = "CHATOXIDE_CHAT_PAGE")]
        pub chat_page: Option<bool>,
        /// Folder of a frontend's own files, served at `/` as Node's `express.static` serves one
        /// (index.html, ETag, no listing, no dotfiles); chatoxide's own routes win over it, and a
        /// path it lacks falls through to the chat page; it must exist [default: unset].
        #[arg(long, env = "CHATOXIDE_STATIC_DIR")]
        pub static_dir: Option<PathBuf>,
    }
}

/// How the server listens and serves (each field is the [`super::Config`] field of that name).
pub(super) struct Server {
    pub host: IpAddr,
    pub port: u16,
    pub cors_origins: Vec<String>,
    pub shutdown_grace: Duration,
    pub socket_buffer: usize,
    pub ws_read_buffer: usize,
    pub max_payload: usize,
    pub connect_timeout: Duration,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub tcp_user_timeout: Duration,
    pub chat_page: bool,
    pub static_dir: Option<PathBuf>,
}

impl ServerSettings {
    /// The defaults where unset, numbers clamped to what the transport can work with.
    pub(super) fn resolve(self, defaults: &Defaults) -> Server {
        let millis = |set: Option<u64>, default: u64, min: u64, max: u64| {
            Duration::from_millis(set.unwrap_or(default).clamp(min, max))
        };
        Server {
            host: self.host.unwrap_or(IpAddr::from([0, 0, 0, 0])),
            port: self.port.unwrap_or(3000),
            // `*` is the same as no list: any origin.
            cors_origins: (self.cors_origins.unwrap_or_default().into_iter())
                .filter(|o| o != "*")
                .collect(),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs.unwrap_or(10)),
            socket_buffer: self.socket_buffer.unwrap_or(1024).max(16),
            ws_read_buffer: self.ws_read_buffer.unwrap_or(1024).clamp(256, 1 << 20),
            max_payload: (self.max_payload.unwrap_or(defaults.max_payload))
                .clamp(1_000, 100_000_000),
            connect_timeout: millis(
                self.connect_timeout_ms,
                defaults.connect_timeout_ms,
                100,
                300_000,
            ),
            ping_interval: millis(self.ping_interval_ms, 25_000, 100, 600_000),
            ping_timeout: millis(self.ping_timeout_ms, 20_000, 100, 600_000),
            tcp_user_timeout: millis(self.tcp_user_timeout_ms, 30_000, 1_000, 3_600_000),
            chat_page: self.chat_page.unwrap_or(true),
            static_dir: self.static_dir,
        }
    }
}
