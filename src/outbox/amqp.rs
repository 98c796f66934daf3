//! RabbitMQ (AMQP 0.9.1): each event on a durable topic exchange named after the prefix, routing
//! key `rooms.<room>.messages`, persistent, its stable id as the message's `message_id` and its
//! event as its `type`; publisher confirms say when the broker has it.

use super::{Stopped, body, room_token, stable_id};
use crate::config::OutboxConfig;
use crate::secret::SecretUrl;
use crate::store::Unsent;
use anyhow::Context as _;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use std::time::Duration;

/// How long a publication waits for the broker's confirmation.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);
/// Persistent: the broker writes the message to disk (for durable queues).
const PERSISTENT: u8 = 2;

pub(super) struct Amqp {
    url: SecretUrl,
    exchange: String,
    /// The connection and its confirming channel, while they last.
    open: Option<(Connection, Channel)>,
}

impl Amqp {
    pub(super) fn new(config: &OutboxConfig) -> Self {
        Self {
            url: config.url.clone(),
            exchange: config.prefix.clone(),
            open: None,
        }
    }

    async fn channel(&mut self) -> anyhow::Result<Channel> {
        if let Some((connection, channel)) = &self.open
            && connection.status().connected()
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        self.open = None;
        let connect = Connection::connect(self.url.expose(), ConnectionProperties::default());
        let connection = tokio::time::timeout(Duration::from_secs(5), connect)
            .await
            .context("connecting to RabbitMQ: no answer")?
            .context("connecting to RabbitMQ")?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        channel
            .exchange_declare(
                self.exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .context("declaring the exchange")?;
        self.open = Some((connection, channel.clone()));
        Ok(channel)
    }

    pub(super) async fn publish(&mut self, events: &[Unsent]) -> Result<(), Stopped> {
        let channel = self.channel().await.map_err(|error| Stopped {
            confirmed: 0,
            op: "connect",
            error,
        })?;
        let mut confirms = Vec::with_capacity(events.len());
        let mut sending = None;
        for unsent in events {
            let properties = BasicProperties::default()
                .with_message_id(stable_id(unsent).into())
                .with_type(unsent.event.kind.event().into())
                .with_content_type("application/json".into())
                .with_delivery_mode(PERSISTENT);
            let routing_key = format!("rooms.{}.messages", room_token(&unsent.event.room));
            let published = channel
                .basic_publish(
                    self.exchange.as_str().into(),
                    routing_key.into(),
                    BasicPublishOptions::default(),
                    &body(unsent),
                    properties,
                )
                .await;
            match published {
                Ok(confirm) => confirms.push(confirm),
                Err(err) => {
                    sending = Some(anyhow::Error::new(err).context("publishing on RabbitMQ"));
                    break;
                }
            }
        }
        let sent = confirms.len();
        for (confirmed, confirm) in confirms.into_iter().enumerate() {
            let stopped = |error: anyhow::Error| Stopped {
                confirmed,
                op: "publish",
                error,
            };
            match tokio::time::timeout(CONFIRM_TIMEOUT, confirm).await {
                Ok(Ok(Confirmation::Ack(_))) => {}
                Ok(Ok(other)) => {
                    return Err(stopped(anyhow::anyhow!(
                        "RabbitMQ did not confirm: {other:?}"
                    )));
                }
                Ok(Err(err)) => {
                    self.open = None;
                    return Err(stopped(
                        anyhow::Error::new(err).context("RabbitMQ's confirmation"),
                    ));
                }
                Err(_) => {
                    self.open = None;
                    return Err(stopped(anyhow::anyhow!(
                        "no confirmation from RabbitMQ in time"
                    )));
                }
            }
        }
        match sending {
            None => Ok(()),
            Some(error) => {
                self.open = None;
                Err(Stopped {
                    confirmed: sent,
                    op: "publish",
                    error,
                })
            }
        }
    }
}
