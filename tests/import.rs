//! `chatoxide import`: the built binary on a file of good and bad lines, again on the same file,
//! then on a file with one more line; the history is read back through the server's HTTP API.
//! On a SQLite file of its own, and on a PostgreSQL database of its own when PostgreSQL answers
//! (TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres; required under
//! CI=true, skipped loudly otherwise).

use anyhow::{Context, anyhow, ensure};
use chatoxide_sio::ServerProcess;
use sea_orm::{ConnectOptions, ConnectionTrait, Database};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_chatoxide");

#[tokio::test]
async fn import_on_sqlite() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("chat.db").display());
    // The settings come from a TOML file here, from the environment on PostgreSQL.
    let config = dir.path().join("chatoxide.toml");
    std::fs::write(
        &config,
        format!("database_url = \"{url}\"\nmax_text_len = {TEXT_LIMIT}\n"),
    )?;
    let via_file = Via::ConfigFile(config);
    scenario(dir.path(), &via_file, &url).await
}

#[tokio::test]
async fn import_on_postgres() -> anyhow::Result<()> {
    let Some(admin_url) = postgres().await? else {
        return Ok(());
    };
    let db = TestDatabase::create(&admin_url).await?;
    let dir = tempfile::tempdir()?;
    let outcome = scenario(dir.path(), &Via::Environment(db.url.clone()), &db.url).await;
    db.drop().await?;
    outcome
}

/// The longest text the imports allow (set in their configuration).
const TEXT_LIMIT: usize = 10;

/// How the import is told where the database is.
enum Via {
    /// `chatoxide --config FILE import …`, the file naming the database.
    ConfigFile(PathBuf),
    /// `DATABASE_URL=… CHATOXIDE_MAX_TEXT_LEN=… chatoxide import …`.
    Environment(String),
}

async fn scenario(dir: &Path, via: &Via, url: &str) -> anyhow::Result<()> {
    let room = format!("import-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let file = dir.join("history.ndjson");
    std::fs::write(&file, history(&room).join("\n"))?;
    let more = dir.join("more.ndjson");
    let mut good = good_lines(&room).to_vec();
    good.push(line(
        &room,
        "dave",
        "fourth",
        r#""2024-05-01T10:03:00Z""#,
        None,
    ));
    std::fs::write(&more, good.join("\r\n") + "\r\n")?;

    let first = import(via, &file)?;
    let again = import(via, &file)?;
    let last = import(via, &more)?;

    let rejected = "rejected 5 (lines: 3, 5, 6, 7, 8)";
    assert_outcome(
        &first,
        1,
        &format!("imported 3, already present 0, {rejected}"),
    )?;
    let stderr = String::from_utf8_lossy(&first.stderr);
    for (n, why) in [
        (3, "invalid JSON"),
        (5, "user is missing"),
        (6, "room may contain only"),
        (7, "text is longer than 10 characters"),
        (8, "created_at is not an RFC 3339 time"),
    ] {
        ensure!(stderr.contains(&format!("line {n}: {why}")), "{stderr}");
    }
    ensure!(!stderr.contains("line 2:"), "{stderr}");
    assert_outcome(
        &again,
        1,
        &format!("imported 0, already present 3, {rejected}"),
    )?;
    assert_outcome(&last, 0, "imported 1, already present 3, rejected 0")?;

    let stored: Vec<Stored> = stored_history(url, &room)
        .await?
        .iter()
        .map(Stored::of)
        .collect();
    // Dense sequence numbers in file order: importing again took none.
    let seqs: Vec<u64> = stored.iter().map(|m| m.seq).collect();
    ensure!(seqs == [1, 2, 3, 4], "{stored:?}");
    let expected = [
        (
            "alice",
            "first",
            "2024-05-01T10:00:00.000Z",
            Some("import:m-1"),
        ),
        ("bob", "second", "2024-05-01T10:01:00.000Z", None),
        (
            "carol",
            "third",
            "2024-05-01T08:02:00.250Z",
            Some("import:7"),
        ),
        ("dave", "fourth", "2024-05-01T10:03:00.000Z", None),
    ];
    for (got, (user, text, created_at, key)) in stored.iter().zip(expected) {
        let seen = (
            got.user.as_str(),
            got.text.as_str(),
            got.created_at.as_str(),
        );
        ensure!(seen == (user, text, created_at), "{got:?}");
        // Without an `id`: `import:` and 40 hex digits of a hash.
        let key_ok = match key {
            Some(key) => got.client_id == key,
            None => got.client_id.starts_with("import:") && got.client_id.len() == 47,
        };
        ensure!(key_ok, "client_id of {got:?}");
    }
    Ok(())
}

/// A message as history shows it, the part this test checks.
#[derive(Debug)]
struct Stored {
    /// The second half of the id.
    seq: u64,
    user: String,
    text: String,
    created_at: String,
    client_id: String,
}

impl Stored {
    fn of(m: &Value) -> Self {
        let field = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let id = field(&m["id"]);
        Self {
            seq: u64::from_str_radix(id.get(16..).unwrap_or_default(), 16).unwrap_or_default(),
            user: field(&m["user"]["id"]),
            text: field(&m["text"]),
            created_at: field(&m["created_at"]),
            client_id: field(&m["client_id"]),
        }
    }
}

/// The lines of [`history`] the import accepts (its lines 1, 4 and 9; keys it does not know
/// are ignored).
fn good_lines(room: &str) -> [String; 3] {
    [
        line(
            room,
            "alice",
            "first",
            r#""2024-05-01T10:00:00Z""#,
            Some(r#""m-1""#),
        ),
        line(room, "bob", "second", "1714557660000", None),
        format!(
            r#"{{"room":"{room}","user":"carol","text":"third","created_at":"2024-05-01T10:02:00.25+02:00","id":7,"source":"mongo"}}"#
        ),
    ]
}

/// Nine lines: 2 is blank; 3, 5, 6, 7 and 8 are rejected.
fn history(room: &str) -> Vec<String> {
    let [first, second, third] = good_lines(room);
    vec![
        first,
        "   ".to_owned(),
        format!(r#"{{"room": "{room}""#),
        second,
        format!(r#"{{"room":"{room}","text":"no user","created_at":1714557660000}}"#),
        line("bad room", "bob", "x", "1714557660000", None),
        line(room, "bob", "far too long", "1714557660000", None),
        line(room, "alice", "when?", r#""yesterday""#, None),
        third,
    ]
}

/// One line; `created_at` and `id` as JSON.
fn line(room: &str, user: &str, text: &str, created_at: &str, id: Option<&str>) -> String {
    let id = id.map(|id| format!(r#","id":{id}"#)).unwrap_or_default();
    format!(r#"{{"room":"{room}","user":"{user}","text":"{text}","created_at":{created_at}{id}}}"#)
}

fn import(via: &Via, file: &Path) -> anyhow::Result<Output> {
    let mut command = Command::new(BIN);
    command.env_clear().env("PATH", std::env::var("PATH")?);
    match via {
        Via::ConfigFile(config) => command.arg("--config").arg(config),
        Via::Environment(url) => command
            .env("DATABASE_URL", url)
            .env("CHATOXIDE_MAX_TEXT_LEN", TEXT_LIMIT.to_string()),
    };
    let output = command
        .args(["import", "--batch", "2"])
        .arg(file)
        .output()
        .context("running chatoxide import")?;
    Ok(output)
}

/// The exit status, and the summary as the last line of stderr.
fn assert_outcome(output: &Output, status: i32, summary: &str) -> anyhow::Result<()> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.code() == Some(status),
        "{:?}: {stderr}",
        output.status
    );
    ensure!(stderr.lines().last() == Some(summary), "{stderr}");
    Ok(())
}

/// Starts the server on `url` and reads the room's history over HTTP.
async fn stored_history(url: &str, room: &str) -> anyhow::Result<Vec<Value>> {
    let server = ServerProcess::start(Path::new(BIN), [("DATABASE_URL", url)])?;
    let page: Value = reqwest::get(format!("{}/api/rooms/{room}/messages", server.url()))
        .await?
        .json()
        .await?;
    ensure!(page["ok"] == true && page["has_more"] == false, "{page}");
    page["messages"]
        .as_array()
        .cloned()
        .ok_or_else(|| anyhow!("no messages in {page}"))
}

/// TEST_POSTGRES_URL (or the default) if PostgreSQL answers there; `None`, loudly, if it does
/// not, unless CI=true, where that is a failure.
async fn postgres() -> anyhow::Result<Option<String>> {
    let url = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let mut options = ConnectOptions::new(url.clone());
    options
        .connect_timeout(Duration::from_secs(3))
        .sqlx_logging(false);
    match Database::connect(options).await {
        Ok(db) => {
            db.close().await?;
            Ok(Some(url))
        }
        Err(err) if std::env::var("CI").as_deref() == Ok("true") => Err(anyhow!(
            "PostgreSQL does not answer ({err}): the import test needs it under CI=true"
        )),
        Err(err) => {
            eprintln!(
                "\n!!! SKIPPING THE IMPORT TEST ON POSTGRESQL: it does not answer ({err}) !!!\n"
            );
            Ok(None)
        }
    }
}

/// A PostgreSQL database of this test's own, dropped at the end.
struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let name = format!(
            "chatoxide_test_import_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        admin(admin_url, &format!("CREATE DATABASE {name}")).await?;
        let mut url = reqwest::Url::parse(admin_url)?;
        url.set_path(&format!("/{name}"));
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
            url: url.to_string(),
        })
    }

    async fn drop(self) -> anyhow::Result<()> {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        admin(&self.admin_url, &sql).await
    }
}

async fn admin(url: &str, sql: &str) -> anyhow::Result<()> {
    let db = Database::connect(url).await?;
    db.execute_unprepared(sql).await?;
    db.close().await?;
    Ok(())
}
