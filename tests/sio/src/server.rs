//! A chatoxide server binary in a process of its own, on a free port of 127.0.0.1: started
//! with only the settings it is given, known to listen once it logs so, killed when dropped.

use anyhow::Context;
use serde_json::Value;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The longest a server may take to say it listens (migrations run first).
const START: Duration = Duration::from_secs(20);

/// A running server process, killed when dropped.
pub struct ServerProcess {
    child: Child,
    /// `host:port` where it listens.
    pub addr: String,
}

impl ServerProcess {
    /// Starts `binary` with an empty environment but `PATH`, `HOST=127.0.0.1`, `PORT=0`,
    /// `LOG_FORMAT=json` and `env`, and waits for its `listening` log line.
    pub fn start<K, V>(binary: &Path, env: impl IntoIterator<Item = (K, V)>) -> anyhow::Result<Self>
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let mut child = Command::new(binary)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs([("HOST", "127.0.0.1"), ("PORT", "0"), ("LOG_FORMAT", "json")])
            .envs(env)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let (tx, rx) = mpsc::channel();
        // Reads every line, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let entry: Value = serde_json::from_str(&line).unwrap_or_default();
                if entry["message"] == "listening" {
                    let _ = tx.send(entry["addr"].as_str().unwrap_or_default().to_owned());
                }
            }
        });
        let mut server = Self {
            child,
            addr: String::new(),
        };
        server.addr = rx
            .recv_timeout(START)
            .context("the server did not say it listens")?;
        Ok(server)
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
