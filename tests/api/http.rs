//! Health, readiness and metrics over HTTP.

use crate::support::{spawn_app, unique};
use serde_json::{Value, json};

#[tokio::test]
async fn healthz_and_readyz_answer_200() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();

    let health = http.get(app.url("/healthz")).send().await.unwrap();
    let ready = http.get(app.url("/readyz")).send().await.unwrap();

    assert_eq!(health.status(), 200);
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
}

#[tokio::test]
async fn metrics_count_commands_by_name_and_outcome() {
    let app = spawn_app().await;
    let mut a = app.connect_as(&unique("m")).await;
    a.command("join", json!({ "room": "" })).await;

    let text = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert!(
        text.contains(r#"chatoxide_commands_total{command="join",outcome="bad_request"}"#),
        "{text}"
    );
    assert!(text.contains("chatoxide_connections"), "{text}");
}

#[tokio::test]
async fn publishing_without_a_configured_key_is_forbidden() {
    let app = spawn_app().await;

    let res = reqwest::Client::new()
        .post(app.url("/api/rooms/general/messages"))
        .json(&json!({ "user": { "id": "bot" }, "text": "hi" }))
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 403);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "forbidden"
    );
}
