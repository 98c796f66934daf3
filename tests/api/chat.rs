//! The chat contract through the Socket.IO face.

use crate::support::{spawn_app, spawn_app_with, unique};
use chatoxide::config::{AuthMode, Config};
use serde_json::json;

#[tokio::test]
async fn join_message_and_broadcast() {
    // Arrange
    let app = spawn_app().await;
    let room = unique("room");
    let (alice, bob) = (unique("alice"), unique("bob"));
    let mut a = app.connect_as(&alice).await;
    let mut b = app.connect_as(&bob).await;
    b.command("join", json!({ "room": room })).await;

    // Act
    let joined = a.command("join", json!({ "room": room })).await;
    let sent = a
        .command(
            "message",
            json!({ "room": room, "text": " hi ", "client_id": "c-1" }),
        )
        .await;

    // Assert
    assert_eq!(joined["ok"], true);
    // Members come in user id order, with the total.
    assert_eq!(
        joined["members"],
        json!([{ "id": alice, "name": alice }, { "id": bob, "name": bob }])
    );
    assert_eq!(joined["member_count"], 2);
    assert_eq!(
        b.event("user_joined").await,
        json!({ "room": room, "user": { "id": alice, "name": alice } })
    );
    assert_eq!(sent["ok"], true);
    assert_eq!(sent["message"]["text"], "hi");
    assert_eq!(b.event("message").await, sent["message"]);
}

#[tokio::test]
async fn a_retry_with_the_same_client_id_returns_the_first_message() {
    let app = spawn_app().await;
    let room = unique("retry");
    let mut a = app.connect_as(&unique("a")).await;
    a.command("join", json!({ "room": room })).await;

    let first = a
        .command(
            "message",
            json!({ "room": room, "text": "once", "client_id": "k" }),
        )
        .await;
    let again = a
        .command(
            "message",
            json!({ "room": room, "text": "once", "client_id": "k" }),
        )
        .await;
    let history = a.command("history", json!({ "room": room })).await;

    assert_eq!(first["message"], again["message"]);
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn errors_come_back_in_the_ack_or_as_an_error_event() {
    let app = spawn_app().await;
    let mut a = app.connect_as(&unique("a")).await;

    let not_member = a
        .command("message", json!({ "room": unique("x"), "text": "hi" }))
        .await;
    let not_object = a.command("join", json!("general")).await;
    a.emit("join", json!({ "room": "user:bob" })).await;

    assert_eq!(not_member["ok"], false);
    assert_eq!(not_member["error"]["code"], "forbidden");
    assert_eq!(not_object["error"]["code"], "bad_request");
    assert_eq!(a.event("error").await["code"], "forbidden");
}

#[tokio::test]
async fn token_mode_refuses_a_missing_token_with_unauthorized() {
    let mut config = Config::ephemeral();
    config.auth = AuthMode::Hs256Secret("secret".into());
    let app = spawn_app_with(config).await;

    let refused = app.connect(json!({ "username": "alice" })).await.err();

    assert_eq!(refused.as_deref(), Some("unauthorized"));
}

#[tokio::test]
async fn open_mode_refuses_a_bad_name_with_bad_request() {
    let app = spawn_app().await;

    let refused = app.connect(json!({ "username": "a\u{1}b" })).await.err();

    assert_eq!(refused.as_deref(), Some("bad_request"));
}
