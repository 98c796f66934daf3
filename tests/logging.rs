//! The server binary's logs at start: a log filter that does not parse stops it, and pretty logs
//! written to a pipe carry no colour codes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// The server binary with nothing from this environment but what a test gives it.
fn chatoxide() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chatoxide"));
    command
        .env_clear()
        .env("DATABASE_URL", "sqlite::memory:")
        .env("HOST", "127.0.0.1")
        .env("PORT", "0");
    command
}

#[test]
fn a_log_filter_that_does_not_parse_stops_the_start_and_says_why() {
    for filter in ["chatoxide=loud", "info,=debug", "chatoxide[=info"] {
        let Err(why) = tracing_subscriber::EnvFilter::try_new(filter) else {
            panic!("{filter} parses");
        };
        // `import` of a missing file, should the filter be taken: it exits rather than serves.
        let output = chatoxide()
            .env("RUST_LOG", filter)
            .args(["import", "/nonexistent/history.ndjson"])
            .output();
        let Ok(output) = output else {
            panic!("{filter}: {output:?}");
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{filter}: {stderr}");
        for needed in ["RUST_LOG", filter, &why.to_string()] {
            assert!(
                stderr.contains(needed),
                "{filter}: no {needed:?} in {stderr}"
            );
        }
        assert!(
            !stderr.contains("nonexistent"),
            "{filter}: the import ran: {stderr}"
        );
    }
}

#[test]
fn pretty_logs_in_a_pipe_carry_no_colour_codes() {
    let child = chatoxide()
        .env("LOG_FORMAT", "pretty")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        panic!("{child:?}");
    };
    let mut lines = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let listening = line.contains("listening");
            lines.push(line);
            if listening {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = lines.join("\n");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("listening") && l.contains("addr=")),
        "the server never said it listens:\n{log}"
    );
    assert!(!log.contains('\x1b'), "colour codes in a pipe:\n{log}");
}
