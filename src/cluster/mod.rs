//! A cluster node: with `REDIS_URL` set, this process shares rooms, events and presence with
//! every other process on the same Redis and prefix (docs/cluster.md).

mod link;
mod presence;

pub use link::{Link, LinkError};
pub use presence::Registry;

use crate::config::ClusterConfig;
use crate::presence::Counts;
use anyhow::Context;
use socketioxide::adapter::Emitter;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The Socket.IO adapter of a cluster node: socketioxide-redis over this node's Redis link.
pub type ClusterAdapter = socketioxide_redis::CustomRedisAdapter<Emitter, Link>;

/// This process as a member of the cluster: its Redis link and the tasks that keep it there.
pub struct Node {
    pub id: String,
    pub link: Link,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Connects to Redis and starts keeping this node's presence there. A node needs Redis to
    /// join; once running it outlives Redis outages.
    pub async fn join(config: &ClusterConfig, counts: Counts) -> anyhow::Result<(Self, Registry)> {
        let link = Link::connect(&config.redis_url)
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
        tracing::info!(node = %config.node_id, prefix = %config.prefix, "joined the cluster");
        Ok((
            Self {
                id: config.node_id.clone(),
                link,
                stop,
                tasks,
            },
            registry,
        ))
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
