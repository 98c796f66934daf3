//! Two apps in one process on one Redis and one SQLite file: a cluster of two nodes.
//! (The full cluster suite, with killed nodes and Redis outages, is js-client-tests/test/cluster.test.js.)

use crate::support::{TestApp, spawn_app_with, unique};
use chatoxide::config::{AdapterKind, ClusterConfig, Config};
use serde_json::json;
use std::time::Duration;

/// REDIS_URL (default 127.0.0.1:6379) if Redis answers; `None` (and a loud message) if it does
/// not, except under CI=true, where a missing Redis fails the test.
async fn redis_url() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL")
        .or_else(|_| std::env::var("REDIS_URL"))
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let addr = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let reachable =
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
            .await
            .is_ok_and(|c| c.is_ok());
    if reachable {
        return Some(url);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "Redis does not answer at {url}: the cluster tests need it under CI=true"
    );
    eprintln!("\n!!! SKIPPING A CLUSTER TEST: Redis does not answer at {url} !!!\n");
    None
}

async fn two_nodes(url: &str, db: &std::path::Path, adapter: AdapterKind) -> (TestApp, TestApp) {
    let prefix = unique("chatoxide-test");
    let mut nodes = Vec::new();
    for id in ["a", "b"] {
        let mut config = Config::ephemeral();
        config.database_url = format!("sqlite://{}?mode=rwc", db.display()).into();
        config.cluster = Some(ClusterConfig {
            redis_url: url.into(),
            adapter,
            prefix: prefix.clone(),
            presence_ttl: Duration::from_secs(3),
            buffer: 1024,
            node_id: id.to_owned(),
        });
        nodes.push(spawn_app_with(config).await);
    }
    let b = nodes.pop().unwrap();
    (nodes.pop().unwrap(), b)
}

#[tokio::test]
async fn a_message_sent_on_one_node_reaches_a_member_on_the_other() {
    across_two_nodes(AdapterKind::Socketioxide).await;
}

#[tokio::test]
async fn node_format_nodes_deliver_across_as_well() {
    across_two_nodes(AdapterKind::Node).await;
}

async fn across_two_nodes(adapter: AdapterKind) {
    let Some(url) = redis_url().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_nodes(&url, &dir.path().join("chat.db"), adapter).await;
    let (room, alice, bob) = (unique("cross"), unique("alice"), unique("bob"));
    let mut on_a = a.connect_as(&alice).await;
    let mut on_b = b.connect_as(&bob).await;
    on_a.command("join", json!({ "room": room })).await;
    on_b.command("join", json!({ "room": room })).await;

    let sent = on_a
        .command("message", json!({ "room": room, "text": "across" }))
        .await;
    let received = on_b.event("message").await;
    let online = on_b.command("presence", json!({ "room": room })).await;

    assert_eq!(received, sent["message"]);
    let mut ids: Vec<&str> = online["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![alice.as_str(), bob.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
