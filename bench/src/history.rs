//! The history scenario: a room of many messages, written straight into the database, then
//! pages of 50 read at random places through `GET /api/rooms/{room}/messages`.

use crate::report::{histogram, percentiles, record};
use rand::Rng;
use sea_orm::{ConnectionTrait, Database, DbBackend};
use serde_json::json;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// The server's database (seeded directly: a million messages through the API would
    /// measure the writer, not history).
    #[arg(long)]
    database_url: String,
    /// Messages in the room.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Pages to read.
    #[arg(long, default_value_t = 2000)]
    pages: u64,
    /// The room's name.
    #[arg(long, default_value = "bench-history")]
    room: String,
    #[arg(long, default_value = "")]
    label: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let seeded = Instant::now();
    let room_id = seed(&args).await?;
    let seed_secs = seeded.elapsed().as_secs_f64();
    let http = reqwest::Client::new();
    let url = format!("{}/api/rooms/{}/messages", args.url, args.room);
    let mut latency = histogram();
    let mut rng = rand::rng();
    for i in 0..args.pages + 100 {
        let before = rng.random_range(51..=args.messages as i64);
        let cursor = format!("{room_id:016x}{before:016x}");
        let started = Instant::now();
        let page: serde_json::Value = http
            .get(&url)
            .query(&[("before", cursor.as_str()), ("limit", "50")])
            .send()
            .await?
            .json()
            .await?;
        let took = started.elapsed();
        anyhow::ensure!(
            page["messages"].as_array().map(Vec::len) == Some(50),
            "a full page: {page}"
        );
        if i >= 100 {
            record(&mut latency, took);
        }
    }
    let newest = Instant::now();
    let _ = http.get(&url).send().await?;
    let result = json!({
        "scenario": "history",
        "label": args.label,
        "messages": args.messages,
        "seed_secs": seed_secs,
        "page_latency": percentiles(&latency),
        "newest_page_ms": newest.elapsed().as_secs_f64() * 1000.0,
    });
    println!("{result}");
    Ok(())
}

/// Writes the room and its messages in one statement each; returns the room's number.
async fn seed(args: &Args) -> anyhow::Result<i64> {
    let db = Database::connect(&args.database_url).await?;
    let backend = db.get_database_backend();
    let (room, n) = (args.room.replace('\'', ""), args.messages);
    db.execute_unprepared(&format!(
        "INSERT INTO rooms (name, last_seq, created_at) VALUES ('{room}', {n}, 0)"
    ))
    .await?;
    let numbers = match backend {
        DbBackend::Postgres => format!("SELECT n FROM generate_series(1, {n}) AS n"),
        _ => format!(
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {n}) SELECT n FROM s"
        ),
    };
    db.execute_unprepared(&format!(
        "INSERT INTO messages (room_id, seq, user_id, user_name, text, client_id, created_at, edited_at, deleted) \
         SELECT r.id, s.n, 'seed', 'seed', 'seeded message ' || s.n, NULL, 0, NULL, false \
         FROM ({numbers}) AS s, rooms r WHERE r.name = '{room}'"
    ))
    .await?;
    if backend == DbBackend::Postgres {
        db.execute_unprepared("ANALYZE messages").await?;
    }
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            backend,
            format!("SELECT id FROM rooms WHERE name = '{room}'"),
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("the seeded room is missing"))?;
    let id: i64 = row.try_get("", "id")?;
    Ok(id)
}
