//! Presence across the cluster, kept in Redis.
//!
//! Each node owns one hash, `{prefix}:presence:node:{node}:users`, of its online users and
//! their socket counts, and holds a lease on it: its entry in the sorted set
//! `{prefix}:presence:nodes`, scored with the time (Redis's clock) the lease ends. A node renews
//! the lease every third of the TTL. A user is online when some node with a live lease counts
//! them, so the users of a node that dies vanish when its lease ends, with nothing to clean up
//! first; live nodes delete the hashes of dead ones as they renew.
//!
//! This node's counts in memory are the truth; one task copies them to Redis, always as
//! absolute values (never increments), so a write that is retried, late or repeated cannot
//! make a count wrong, and a node that lost its lease (Redis was out of reach) rewrites its hash
//! whole when it comes back.

use super::link::{Link, LinkError};
use crate::presence::{Counts, Elsewhere};
use futures_util::future::BoxFuture;
use redis::Script;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Renews the lease, tells whether it had lapsed, and deletes the hashes of dead nodes.
/// KEYS: nodes, own hash. ARGV: node, ttl ms, hash key prefix.
const RENEW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local lease = redis.call('ZSCORE', KEYS[1], ARGV[1])
local lapsed = (not lease) or tonumber(lease) < now
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[2], ttl * 2)
if redis.call('PTTL', KEYS[1]) < ttl * 2 then
  redis.call('PEXPIRE', KEYS[1], ttl * 2)
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
for _, node in ipairs(dead) do
  redis.call('DEL', ARGV[3] .. node .. ':users')
  redis.call('ZREM', KEYS[1], node)
end
if lapsed then return 1 else return 0 end
";

/// The users among ARGV[2..] counted by a node whose lease has not ended.
/// KEYS: nodes. ARGV: hash key prefix, user ids...
const ONLINE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nodes = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
local online = {}
for _, node in ipairs(nodes) do
  local key = ARGV[1] .. node .. ':users'
  for first = 2, #ARGV, 1000 do
    local chunk = {}
    for i = first, math.min(first + 999, #ARGV) do chunk[#chunk + 1] = ARGV[i] end
    local counts = redis.call('HMGET', key, unpack(chunk))
    for j = 1, #chunk do
      if counts[j] then online[first + j - 1] = true end
    end
  end
end
local out = {}
for i = 2, #ARGV do
  if online[i] then out[#out + 1] = ARGV[i] end
end
return out
";

/// Users written per round trip when the hash is rewritten whole.
const CHUNK: usize = 1000;

#[derive(Clone)]
struct Keys {
    nodes: String,
    /// `{prefix}:presence:node:`; a node's hash is this, its id, and `:users`.
    hash_prefix: String,
    own: String,
}

impl Keys {
    fn new(prefix: &str, node: &str) -> Self {
        let hash_prefix = format!("{prefix}:presence:node:");
        Self {
            nodes: format!("{prefix}:presence:nodes"),
            own: format!("{hash_prefix}{node}:users"),
            hash_prefix,
        }
    }
}

/// This node's share of cluster presence. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    link: Link,
    keys: Arc<Keys>,
    online: Arc<Script>,
}

/// What the task that keeps this node's presence in Redis needs.
pub struct Keeper {
    link: Link,
    keys: Arc<Keys>,
    node: String,
    ttl: Duration,
    counts: Counts,
}

impl Registry {
    pub fn new(
        link: Link,
        prefix: &str,
        node: &str,
        ttl: Duration,
        counts: Counts,
    ) -> (Self, Keeper) {
        let keys = Arc::new(Keys::new(prefix, node));
        counts.track_changes();
        let registry = Self {
            link: link.clone(),
            keys: keys.clone(),
            online: Arc::new(Script::new(ONLINE)),
        };
        let keeper = Keeper {
            link,
            keys,
            node: node.to_owned(),
            ttl,
            counts,
        };
        (registry, keeper)
    }

    /// Which of `users` some live node counts as connected.
    pub async fn online(&self, users: &[&str]) -> Result<HashSet<String>, LinkError> {
        if users.is_empty() {
            return Ok(HashSet::new());
        }
        let mut conn = self.link.commands()?;
        let mut call = self.online.key(&self.keys.nodes);
        call.arg(&self.keys.hash_prefix);
        for user in users {
            call.arg(*user);
        }
        let res = call.invoke_async::<Vec<String>>(&mut conn).await;
        Ok(self.link.observe("presence", res)?.into_iter().collect())
    }
}

impl Keeper {
    /// Copies this node's counts to Redis and renews its lease until `stop`, then withdraws:
    /// a node that stops cleanly takes its users out of presence at once.
    pub async fn run(self, stop: CancellationToken) {
        let renew = Script::new(RENEW);
        let mut every = tokio::time::interval(self.ttl / 3);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Whether Redis may differ from this node's counts in a way single writes cannot mend.
        let mut stale = true;
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                _ = every.tick() => {
                    stale = match self.renew(&renew).await {
                        Ok(lapsed) => stale || lapsed,
                        Err(_) => true,
                    };
                    if stale {
                        stale = self.rewrite().await.is_err();
                    }
                }
                users = self.counts.changed() => {
                    if !stale && self.write(users).await.is_err() {
                        stale = true;
                    }
                }
            }
        }
        self.withdraw().await;
    }

    async fn renew(&self, script: &Script) -> Result<bool, LinkError> {
        let mut conn = self.link.commands()?;
        let res = script
            .key(&self.keys.nodes)
            .key(&self.keys.own)
            .arg(&self.node)
            .arg(u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX))
            .arg(&self.keys.hash_prefix)
            .invoke_async::<i64>(&mut conn)
            .await;
        Ok(self.link.observe("presence", res)? == 1)
    }

    /// The current counts of `users`, as one pipeline.
    async fn write(&self, users: HashSet<String>) -> Result<(), LinkError> {
        let mut conn = self.link.commands()?;
        let mut pipe = redis::pipe();
        for user in users {
            match self.counts.get(&user) {
                Some(n) => pipe.hset(&self.keys.own, user, n).ignore(),
                None => pipe.hdel(&self.keys.own, user).ignore(),
            };
        }
        // The hash may have been created just now: it must not outlive the cluster.
        pipe.pexpire(&self.keys.own, self.hash_ttl()).ignore();
        let res = pipe.query_async::<()>(&mut conn).await;
        self.link.observe("presence", res)
    }

    /// Replaces this node's hash with its counts now, atomically.
    async fn rewrite(&self) -> Result<(), LinkError> {
        let mut conn = self.link.commands()?;
        let snapshot = self.counts.snapshot();
        let mut pipe = redis::pipe();
        pipe.atomic().del(&self.keys.own).ignore();
        for chunk in snapshot.chunks(CHUNK) {
            pipe.hset_multiple(&self.keys.own, chunk).ignore();
        }
        pipe.pexpire(&self.keys.own, self.hash_ttl()).ignore();
        let res = pipe.query_async::<()>(&mut conn).await;
        self.link.observe("presence", res)?;
        tracing::debug!(users = snapshot.len(), "presence rewritten in Redis");
        Ok(())
    }

    /// Milliseconds a node's hash outlives its last write: two leases.
    fn hash_ttl(&self) -> i64 {
        i64::try_from(self.ttl.as_millis() * 2).unwrap_or(i64::MAX)
    }

    async fn withdraw(&self) {
        let Ok(mut conn) = self.link.commands() else {
            return;
        };
        let res = redis::pipe()
            .zrem(&self.keys.nodes, &self.node)
            .ignore()
            .del(&self.keys.own)
            .ignore()
            .query_async::<()>(&mut conn)
            .await;
        if self.link.observe("presence", res).is_err() {
            tracing::warn!(
                "could not withdraw from presence; this node's users leave it when its lease ends"
            );
        }
    }
}

impl Elsewhere for Registry {
    fn online<'a>(
        &'a self,
        users: &'a [&'a str],
    ) -> BoxFuture<'a, Result<HashSet<String>, String>> {
        Box::pin(async move {
            Registry::online(self, users)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
