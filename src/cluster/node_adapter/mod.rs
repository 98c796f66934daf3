//! The cluster adapter for a cluster shared with Node socket.io servers
//! (`REDIS_ADAPTER=node`): `@socket.io/redis-adapter` 8.x's channels, envelope and requests,
//! byte for byte, so that Node nodes and chatoxide nodes on one Redis and `key` are one
//! cluster (docs/migrating-from-node.md, "Rolling migration").

mod acks;
mod adapter;
mod answers;
mod channels;
mod envelope;
mod json;
mod request;
mod wire;

#[cfg(test)]
mod fixtures;

pub use adapter::{NodeAdapter, NodeAdapterCtr, NodeAdapterError};
