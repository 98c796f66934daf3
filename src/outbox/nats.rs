//! NATS JetStream: each event on `<prefix>.rooms.<room>.messages`, in a stream named after the
//! prefix (made if missing, with a two-minute duplicate window), its stable id as `Nats-Msg-Id`
//! so that the stream stores a republished event once.

use super::{Stopped, body, room_token, stable_id};
use crate::config::OutboxConfig;
use crate::secret::SecretUrl;
use crate::store::Unsent;
use anyhow::Context as _;
use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use std::time::Duration;

/// How long a publication waits for the stream's acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// JetStream's duplicate window: a republished event within it is stored once.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

pub(super) struct Nats {
    url: SecretUrl,
    prefix: String,
    context: Option<jetstream::Context>,
}

impl Nats {
    pub(super) fn new(config: &OutboxConfig) -> Self {
        Self {
            url: config.url.clone(),
            prefix: config.prefix.clone(),
            context: None,
        }
    }

    /// Connects (the client reconnects by itself after that) and makes sure of the stream.
    async fn context(&mut self) -> anyhow::Result<jetstream::Context> {
        if let Some(context) = &self.context {
            return Ok(context.clone());
        }
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .name("chatoxide outbox")
            .connect(self.url.expose())
            .await
            .context("connecting to NATS")?;
        let mut context = jetstream::new(client);
        context.set_timeout(ACK_TIMEOUT);
        context
            .get_or_create_stream(jetstream::stream::Config {
                name: self.prefix.clone(),
                subjects: vec![format!("{}.rooms.>", self.prefix)],
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .context("making sure of the JetStream stream")?;
        self.context = Some(context.clone());
        Ok(context)
    }

    pub(super) async fn publish(&mut self, events: &[Unsent]) -> Result<(), Stopped> {
        let context = self.context().await.map_err(|error| Stopped {
            confirmed: 0,
            op: "connect",
            error,
        })?;
        // Sent one after another without waiting, so the server stores them in order; then
        // each acknowledgement, in order: what was confirmed is a prefix of the batch.
        let mut acks: Vec<PublishAckFuture> = Vec::with_capacity(events.len());
        let mut sending = None;
        for unsent in events {
            let subject = format!(
                "{}.rooms.{}.messages",
                self.prefix,
                room_token(&unsent.event.room)
            );
            let message = PublishMessage::build()
                .payload(body(unsent).into())
                .message_id(stable_id(unsent))
                .header("Chatoxide-Event", unsent.event.kind.event());
            match context.send_publish(subject, message).await {
                Ok(ack) => acks.push(ack),
                Err(err) => {
                    sending = Some(anyhow::Error::new(err).context("publishing on JetStream"));
                    break;
                }
            }
        }
        let sent = acks.len();
        for (confirmed, ack) in acks.into_iter().enumerate() {
            if let Err(err) = ack.await {
                return Err(Stopped {
                    confirmed,
                    op: "publish",
                    error: anyhow::Error::new(err).context("JetStream's acknowledgement"),
                });
            }
        }
        match sending {
            None => Ok(()),
            Some(error) => Err(Stopped {
                confirmed: sent,
                op: "publish",
                error,
            }),
        }
    }
}
