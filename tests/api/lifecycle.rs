//! Shutdown and durability: what was acknowledged is there after a restart.

use crate::support::{spawn_app_with, unique};
use chatoxide::config::Config;
use serde_json::json;

#[tokio::test]
async fn acknowledged_messages_and_memberships_survive_a_restart() {
    // Arrange: a SQLite file that outlives the first app.
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::ephemeral();
    config.database_url =
        format!("sqlite://{}?mode=rwc", dir.path().join("chat.db").display()).into();
    let (room, user) = (unique("durable"), unique("keeper"));
    let app = spawn_app_with(config.clone()).await;
    let mut a = app.connect_as(&user).await;
    a.command("join", json!({ "room": room })).await;
    let sent = a
        .command("message", json!({ "room": room, "text": "still here" }))
        .await;

    // Act
    app.stop().await.unwrap();
    let app = spawn_app_with(config).await;
    let mut a = app.connect_as(&user).await;
    // No join: the membership is stored.
    let history = a.command("history", json!({ "room": room })).await;

    // Assert
    assert_eq!(history["messages"], json!([sent["message"]]));
}

#[tokio::test]
async fn draining_refuses_new_handshakes_and_stops_cleanly() {
    let app = spawn_app_with(Config::ephemeral()).await;
    let port = app.port;

    let stopped = app.stop().await;
    let after = crate::support::Client::connect(port, json!({})).await;

    assert!(stopped.is_ok());
    assert!(after.is_err(), "nothing listens after the stop");
}
