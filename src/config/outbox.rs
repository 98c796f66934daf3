//! The outbox (issue 20): every stored message, edit and delete published on a broker for other
//! services, after its commit (docs/operations.md, "The outbox").

use crate::secret::SecretUrl;

section! {
    #[command(next_help_heading = "Outbox")]
    pub struct OutboxSettings {
        /// The broker every stored message, edit and delete is published on, after its commit:
        /// `nats://host:4222` (NATS JetStream) or `amqp://user:pass@host:5672/vhost` (RabbitMQ)
        /// [default: none].
        #[arg(long, env = "CHATOXIDE_OUTBOX_URL", hide_env_values = true)]
        pub outbox_url: Option<SecretUrl>,
        /// NATS: the subjects' first token (`<prefix>.rooms.<room>.messages`) and the stream's
        /// name; RabbitMQ: the topic exchange's name [default: chatoxide].
        #[arg(long, env = "CHATOXIDE_OUTBOX_PREFIX")]
        pub outbox_prefix: Option<String>,
    }
}

/// Which broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerKind {
    Nats,
    Amqp,
}

/// Where the outbox publishes.
#[derive(Clone, Debug)]
pub struct OutboxConfig {
    pub url: SecretUrl,
    pub broker: BrokerKind,
    pub prefix: String,
}

impl OutboxSettings {
    pub(super) fn resolve(self) -> anyhow::Result<Option<OutboxConfig>> {
        let Some(url) = self.outbox_url.filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let scheme = url.expose().split("://").next().unwrap_or_default();
        let broker = match scheme {
            "nats" | "tls" => BrokerKind::Nats,
            "amqp" | "amqps" => BrokerKind::Amqp,
            _ => anyhow::bail!("outbox_url must begin with nats:// or amqp:// (or amqps://)"),
        };
        let prefix = self.outbox_prefix.unwrap_or_else(|| "chatoxide".to_owned());
        anyhow::ensure!(
            !prefix.is_empty()
                && prefix.len() <= 64
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "outbox_prefix must be 1 to 64 letters, digits, _ or -"
        );
        Ok(Some(OutboxConfig {
            url,
            broker,
            prefix,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(url: &str, prefix: Option<&str>) -> anyhow::Result<Option<OutboxConfig>> {
        OutboxSettings {
            outbox_url: Some(SecretUrl::from(url)),
            outbox_prefix: prefix.map(str::to_owned),
        }
        .resolve()
    }

    #[test]
    fn the_scheme_names_the_broker_and_the_prefix_is_checked() {
        let broker = |url| resolve(url, None).ok().flatten().map(|c| c.broker);
        assert_eq!(broker("nats://127.0.0.1:4222"), Some(BrokerKind::Nats));
        assert_eq!(
            broker("amqp://guest:guest@127.0.0.1:5672/%2f"),
            Some(BrokerKind::Amqp)
        );
        assert!(resolve("kafka://x", None).is_err());
        assert!(resolve("nats://x", Some("a.b")).is_err());
        assert!(resolve("", None).is_ok_and(|c| c.is_none()));
    }
}
