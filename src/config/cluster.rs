//! The cluster: Redis, and this node's name and presence in it (docs/cluster.md).

use crate::secret::SecretUrl;
use std::time::Duration;

section! {
    #[command(next_help_heading = "Cluster")]
    pub struct ClusterSettings {
        /// Redis 7 (RESP3) URL: set, this process is a node of a cluster.
        #[arg(long, env = "REDIS_URL", hide_env_values = true)]
        pub redis_url: Option<SecretUrl>,
        /// Prefix of every Redis key and channel, so that clusters can share a Redis; with
        /// `--redis-adapter node` it is the Node adapter's `key` [default: chatoxide; socket.io with node].
        #[arg(long, env = "REDIS_PREFIX")]
        pub redis_prefix: Option<String>,
        /// The format nodes speak on Redis: `socketioxide` (socketioxide-redis) or `node`
        /// (`@socket.io/redis-adapter` 8.x: Node socket.io servers and chatoxide nodes in one
        /// cluster) [default: socketioxide].
        #[arg(long, env = "REDIS_ADAPTER")]
        pub redis_adapter: Option<AdapterKind>,
        /// Milliseconds after which the users of a node that stopped sending heartbeats (it crashed
        /// or lost Redis) drop out of presence [default: 15000].
        #[arg(long, env = "CHATOXIDE_PRESENCE_TTL_MS")]
        pub presence_ttl_ms: Option<u64>,
        /// Messages from other nodes that may wait to be delivered here, per channel; past that the
        /// newest are dropped and counted in `chatoxide_redis_dropped_total` [default: 65536].
        #[arg(long, env = "CHATOXIDE_REDIS_BUFFER")]
        pub redis_buffer: Option<usize>,
        /// This node's name in presence and logs [default: a random id].
        #[arg(long, env = "CHATOXIDE_NODE_ID")]
        pub node_id: Option<String>,
    }
}

/// The format a cluster's nodes speak on Redis (docs/cluster.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AdapterKind {
    /// socketioxide-redis: chatoxide nodes only.
    Socketioxide,
    /// `@socket.io/redis-adapter` 8.x: Node socket.io servers and chatoxide nodes together.
    Node,
}

impl AdapterKind {
    /// The prefix of keys and channels when none is set: Node's default `key` in node mode.
    fn default_prefix(self) -> &'static str {
        match self {
            Self::Socketioxide => "chatoxide",
            Self::Node => "socket.io",
        }
    }
}

/// A cluster node's settings (docs/cluster.md).
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub redis_url: SecretUrl,
    /// The format of events and requests between nodes.
    pub adapter: AdapterKind,
    /// Prefix of every key and channel this cluster uses in Redis.
    pub prefix: String,
    /// How long a node's users stay in presence after its last heartbeat.
    pub presence_ttl: Duration,
    /// Messages from other nodes buffered per channel before some are dropped.
    pub buffer: usize,
    pub node_id: String,
}

impl ClusterSettings {
    /// Where and how this process joins a cluster; `None` without a Redis URL.
    pub(super) fn resolve(self) -> anyhow::Result<Option<ClusterConfig>> {
        let Some(redis_url) = self.redis_url.filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let adapter = self.redis_adapter.unwrap_or(AdapterKind::Socketioxide);
        let prefix = (self.redis_prefix).unwrap_or_else(|| adapter.default_prefix().to_owned());
        anyhow::ensure!(
            !prefix.is_empty() && !prefix.contains('#'),
            "REDIS_PREFIX must be non-empty and without '#'"
        );
        let presence_ttl = Duration::from_millis(self.presence_ttl_ms.unwrap_or(15_000));
        anyhow::ensure!(
            (Duration::from_secs(3)..=Duration::from_secs(3600)).contains(&presence_ttl),
            "presence_ttl_ms must be 3000 to 3600000"
        );
        let buffer = self.redis_buffer.unwrap_or(65_536);
        anyhow::ensure!(
            (16..=16_777_216).contains(&buffer),
            "redis_buffer must be 16 to 16777216"
        );
        let node_id = match self.node_id.filter(|n| !n.is_empty()) {
            Some(id) => id,
            None => uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
        };
        anyhow::ensure!(
            node_id.len() <= 64 && !node_id.contains(['#', ':']),
            "node_id must be at most 64 characters, without '#' or ':'"
        );
        Ok(Some(ClusterConfig {
            redis_url,
            adapter,
            prefix,
            presence_ttl,
            buffer,
            node_id,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(f: fn(&mut ClusterSettings)) -> anyhow::Result<Option<ClusterConfig>> {
        let mut s = ClusterSettings {
            redis_url: Some("redis://127.0.0.1:6379".into()),
            ..Default::default()
        };
        f(&mut s);
        s.resolve()
    }

    #[test]
    fn a_redis_url_makes_a_cluster_node() {
        assert!(
            ClusterSettings::default()
                .resolve()
                .is_ok_and(|c| c.is_none())
        );
        let node = node(|_| {}).ok().flatten();
        assert_eq!(
            node.as_ref()
                .map(|c| (c.prefix.as_str(), c.presence_ttl, c.node_id.len())),
            Some(("chatoxide", Duration::from_secs(15), 12))
        );
    }

    #[test]
    fn cluster_settings_are_checked() {
        assert!(node(|s| s.redis_prefix = Some("a#b".into())).is_err());
        let node_mode = node(|s| s.redis_adapter = Some(AdapterKind::Node))
            .ok()
            .flatten();
        assert_eq!(
            node_mode.map(|c| (c.adapter, c.prefix)),
            Some((AdapterKind::Node, "socket.io".to_owned()))
        );
        assert!(node(|s| s.presence_ttl_ms = Some(2999)).is_err());
        assert!(node(|s| s.redis_buffer = Some(0)).is_err());
        assert!(node(|s| s.node_id = Some("a:b".into())).is_err());
        assert!(node(|s| s.redis_url = Some("".into())).is_ok_and(|c| c.is_none()));
    }
}
