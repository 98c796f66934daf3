//! Just enough Socket.IO v5 over WebSocket (Engine.IO v4 framing), on namespace `/`: connect
//! with an `auth` payload, send events with or without ack ids, read acks and events, answer
//! pings.

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::fmt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Message as Frame, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_with_config};

pub struct Socket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What arrived: an acknowledgement (id, first argument) or an event (its `[name, ...args]`
/// JSON, left unparsed and uncopied: fanout receivers read many thousands a second).
pub enum Incoming {
    Ack(u64, Value),
    Event(Event),
}

/// An event's frame, `42[name, ...args]`, as received.
pub struct Event(Utf8Bytes);

impl Event {
    /// The `[name, ...args]` JSON.
    pub fn json(&self) -> &str {
        &self.0[2..]
    }

    /// The event's name and first argument; `None` for an event without one.
    pub fn parse(&self) -> Option<(String, Value)> {
        let mut args: Vec<Value> = serde_json::from_str(self.json()).ok()?;
        if args.len() < 2 {
            return None;
        }
        let arg = args.swap_remove(1);
        Some((args[0].as_str()?.to_owned(), arg))
    }
}

/// A handshake the server refused with `connect_error`: its message (the error code).
#[derive(Debug)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connect refused: {}", self.0)
    }
}

impl std::error::Error for Refused {}

impl Socket {
    /// `base` is `http://host:port`. A refused handshake is an error holding [`Refused`].
    pub async fn connect(base: &str, auth: &Value) -> anyhow::Result<Self> {
        let socket = Self::open(base).await?;
        socket.handshake(auth).await
    }

    /// As [`Socket::connect`], from the local port `from` of 127.0.0.1.
    pub async fn connect_from(base: &str, auth: &Value, from: u16) -> anyhow::Result<Self> {
        let socket = Self::open_from(base, from).await?;
        socket.handshake(auth).await
    }

    /// Connects as `user` (open mode) and joins `room` (the ack id 1 is used).
    pub async fn join_as(base: &str, user: &str, room: &str) -> anyhow::Result<Self> {
        let mut socket = Self::connect(base, &serde_json::json!({ "username": user })).await?;
        let reply = socket
            .call(1, "join", &serde_json::json!({ "room": room }))
            .await?;
        anyhow::ensure!(reply["ok"] == Value::Bool(true), "join refused: {reply}");
        Ok(socket)
    }

    /// The Socket.IO `connect` of an open session.
    async fn handshake(mut self, auth: &Value) -> anyhow::Result<Self> {
        self.send(format!("40{auth}")).await?;
        loop {
            let frame = self.frame().await?;
            if let Some(connected) = frame.strip_prefix("40") {
                anyhow::ensure!(
                    connected.contains("sid"),
                    "a connect without a sid: {frame}"
                );
                return Ok(self);
            }
            if let Some(refusal) = frame.strip_prefix("44") {
                let message = serde_json::from_str::<Value>(refusal)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| refusal.to_owned());
                return Err(Refused(message).into());
            }
            if frame.as_str() == "2" {
                self.send("3".into()).await?;
            }
        }
    }

    /// An Engine.IO session over WebSocket, without the Socket.IO `connect` (for measuring
    /// what the transport alone costs).
    pub async fn open(base: &str) -> anyhow::Result<Self> {
        // No Nagle delay: browsers and socket.io-client send each frame at once too.
        let (ws, _) = connect_async_with_config(websocket_url(base), None, true)
            .await
            .context("websocket handshake")?;
        Self::opened(ws).await
    }

    /// An Engine.IO session over WebSocket from 127.0.0.1:`from`. Thousands of connections to
    /// one server port make the kernel's search for a free ephemeral port the load tool's main
    /// cost (most of a core at 10,000); a port chosen here is one lookup.
    pub async fn open_from(base: &str, from: u16) -> anyhow::Result<Self> {
        let server: std::net::SocketAddr = base
            .trim_start_matches("http://")
            .parse()
            .context("the server's address")?;
        let tcp = tokio::net::TcpSocket::new_v4()?;
        tcp.set_reuseaddr(true)?;
        tcp.bind(std::net::SocketAddr::from(([127, 0, 0, 1], from)))?;
        let stream = tcp.connect(server).await.context("connect")?;
        stream.set_nodelay(true)?;
        let (ws, _) =
            tokio_tungstenite::client_async(websocket_url(base), MaybeTlsStream::Plain(stream))
                .await
                .context("websocket handshake")?;
        Self::opened(ws).await
    }

    /// The session once its Engine.IO open packet is in.
    async fn opened(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> anyhow::Result<Self> {
        let mut socket = Self { ws };
        let open = socket.frame().await?;
        anyhow::ensure!(open.starts_with('0'), "no Engine.IO open packet: {open}");
        Ok(socket)
    }

    /// Sends `event` asking for an acknowledgement with ack id `id`.
    pub async fn emit_with_ack(&mut self, id: u64, event: &str, arg: &Value) -> anyhow::Result<()> {
        self.send(format!("42{id}[{},{arg}]", Value::from(event)))
            .await
    }

    /// Sends `event` without asking for an acknowledgement.
    pub async fn emit(&mut self, event: &str, arg: &Value) -> anyhow::Result<()> {
        self.send(format!("42[{},{arg}]", Value::from(event))).await
    }

    /// The next ack or event, answering pings on the way.
    pub async fn next(&mut self) -> anyhow::Result<Incoming> {
        loop {
            let frame = self.frame().await?;
            if frame.as_str() == "2" {
                self.send("3".into()).await?;
                continue;
            }
            if let Some(ack) = frame.strip_prefix("43") {
                let digits = ack.bytes().take_while(u8::is_ascii_digit).count();
                let id: u64 = ack[..digits].parse().context("ack id")?;
                let mut args: Vec<Value> =
                    serde_json::from_str(&ack[digits..]).context("ack args")?;
                let first = if args.is_empty() {
                    Value::Null
                } else {
                    args.swap_remove(0)
                };
                return Ok(Incoming::Ack(id, first));
            }
            if frame.starts_with("42") {
                return Ok(Incoming::Event(Event(frame)));
            }
        }
    }

    /// Sends `event` and waits for its ack, skipping events meanwhile.
    pub async fn call(&mut self, id: u64, event: &str, arg: &Value) -> anyhow::Result<Value> {
        self.emit_with_ack(id, event, arg).await?;
        loop {
            if let Incoming::Ack(got, reply) = self.next().await?
                && got == id
            {
                return Ok(reply);
            }
        }
    }

    async fn frame(&mut self) -> anyhow::Result<Utf8Bytes> {
        loop {
            match self.ws.next().await {
                Some(Ok(Frame::Text(t))) => return Ok(t),
                Some(Ok(Frame::Close(_))) | None => bail!("connection closed"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    async fn send(&mut self, text: String) -> anyhow::Result<()> {
        self.ws.send(Frame::text(text)).await.context("send")
    }
}

fn websocket_url(base: &str) -> String {
    format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        base.replacen("http", "ws", 1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_its_name_and_first_argument() {
        let event = |frame: &'static str| Event(Utf8Bytes::from_static(frame)).parse();
        assert_eq!(
            event(r#"42["message",{"text":"hi"},2]"#),
            Some(("message".to_owned(), serde_json::json!({"text": "hi"})))
        );
        assert_eq!(event(r#"42["ping"]"#), None);
        assert_eq!(event(r#"42[7,1]"#), None);
        assert_eq!(event("42[oops"), None);
    }
}
