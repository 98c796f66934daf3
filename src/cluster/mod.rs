//! A cluster node: with `REDIS_URL` set, this process shares rooms, events and presence with
//! every other process on the same Redis and prefix (docs/cluster.md).

mod link;
mod node_adapter;
mod presence;

pub use link::{Link, LinkError};
pub use node_adapter::{NodeAdapter, NodeAdapterCtr, NodeAdapterError};
pub use presence::Registry;

use crate::config::{AdapterKind, ClusterConfig};
use crate::handshakes::Handshakes;
use crate::presence::Counts;
use crate::telemetry::{self, names};
use anyhow::Context;
use socketioxide::adapter::Emitter;
use socketioxide_redis::{RedisAdapterConfig, RedisAdapterCtr};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The Socket.IO adapter of a cluster node: socketioxide-redis over this node's Redis link.
pub type ClusterAdapter = socketioxide_redis::CustomRedisAdapter<Emitter, Link>;

/// This process as a member of the cluster: its Redis link and the tasks that keep it there.
pub struct Node {
    pub link: Link,
    config: ClusterConfig,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Connects to Redis and starts keeping this node's presence there. A node needs Redis to
    /// join; once running it outlives Redis outages.
    pub async fn join(config: &ClusterConfig, counts: Counts) -> anyhow::Result<(Self, Registry)> {
        telemetry::count_from_zero(names::REDIS_ERRORS, "op", link::OPERATIONS);
        for counter in [
            names::REDIS_PUBLISHED,
            names::REDIS_RECEIVED,
            names::REDIS_DROPPED,
        ] {
            telemetry::counter_from_zero(counter);
        }
        let link = Link::connect(config.redis_url.expose())
            .await
            .context("connecting to Redis (REDIS_URL)")?;
        let (registry, keeper) = Registry::new(
            link.clone(),
            &config.prefix,
            &config.node_id,
            config.presence_ttl,
            counts,
        );
        let stop = CancellationToken::new();
        let tasks = vec![
            tokio::spawn(link.clone().watch(stop.clone())),
            tokio::spawn(keeper.run(stop.clone())),
        ];
        tracing::info!(node = %config.node_id, prefix = %config.prefix, adapter = ?config.adapter, "joined the cluster");
        Ok((
            Self {
                link,
                config: config.clone(),
                stop,
                tasks,
            },
            registry,
        ))
    }

    /// The Socket.IO adapter's constructor: channels under the cluster's prefix, buffers sized
    /// by configuration, over this node's link.
    pub fn adapter(&self) -> RedisAdapterCtr<Link> {
        let config = RedisAdapterConfig::new()
            .with_prefix(self.config.prefix.clone())
            .with_stream_buffer(self.config.buffer);
        RedisAdapterCtr::new_with_driver(self.link.clone(), config)
    }

    /// The format this node speaks on Redis.
    pub fn adapter_kind(&self) -> AdapterKind {
        self.config.adapter
    }

    /// The constructor of the Node-format adapter (`REDIS_ADAPTER=node`): Node's channels under
    /// the cluster's prefix as its `key`, over this node's link.
    pub fn node_adapter(&self, handshakes: Handshakes) -> NodeAdapterCtr {
        NodeAdapterCtr::new(
            self.link.clone(),
            self.config.prefix.clone(),
            self.config.buffer,
            handshakes,
        )
    }

    /// Cancelled when this node leaves: tasks tied to its membership end then.
    pub fn leaving(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Withdraws this node's users from presence and stops its tasks.
    pub async fn leave(self) {
        self.stop.cancel();
        for task in self.tasks {
            if let Err(err) = task.await {
                tracing::error!(error = %err, "a cluster task failed");
            }
        }
    }
}
