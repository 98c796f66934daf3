//! The import itself: the file read line by line, valid lines stored a batch at a time, the
//! rejected ones reported as they come, the summary at the end.

use super::line::{Entry, Rejected, parse_line, text_of};
use super::summary::Tally;
use crate::chat::TextLimit;
use crate::config::{Config, ImportArgs};
use crate::store::{Imported, Store};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::process::ExitCode;

/// Lines stored per transaction unless `--batch` says otherwise.
const DEFAULT_BATCH: usize = 500;
const MAX_BATCH: usize = 10_000;

/// Runs the import: status 0 if every line was stored or present already, 1 if any was
/// rejected. The summary is printed (stderr) even when storage fails half way; what was
/// committed by then stays, and running the import again completes it.
pub async fn run(config: &Config, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let batch = args.batch.unwrap_or(DEFAULT_BATCH);
    anyhow::ensure!(
        (1..=MAX_BATCH).contains(&batch),
        "--batch must be 1 to {MAX_BATCH}"
    );
    let path = args.file.display();
    let file = File::open(&args.file).with_context(|| format!("opening {path}"))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or_default();
    let store = Store::open(config.database_url.expose(), config.database_pool)
        .await
        .context("opening the database")?;
    let mut import = Import {
        store: &store,
        limit: config.text_limit,
        batch,
        progress: progress_bar(size),
        pending: Vec::with_capacity(batch),
        tally: Tally::default(),
    };
    let outcome = import
        .read(BufReader::new(file))
        .await
        .with_context(|| format!("importing {path}"));
    import.progress.finish_and_clear();
    eprintln!("{}", import.tally);
    let rejected = !import.tally.rejected.is_empty();
    store.close().await;
    outcome?;
    Ok(if rejected {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A bar of bytes read on stderr; indicatif hides it when stderr is not a terminal.
fn progress_bar(bytes: u64) -> ProgressBar {
    let bar = ProgressBar::new(bytes);
    let template = "{wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// An import under way.
struct Import<'a> {
    store: &'a Store,
    limit: TextLimit,
    batch: usize,
    progress: ProgressBar,
    /// Valid lines not stored yet, with their numbers; at most `batch`.
    pending: Vec<(u64, Entry)>,
    tally: Tally,
}

impl Import<'_> {
    /// Reads every line, storing a batch whenever one is full, and the rest at the end.
    async fn read(&mut self, mut reader: impl BufRead) -> anyhow::Result<()> {
        let mut buf = Vec::new();
        let mut number = 0;
        loop {
            buf.clear();
            let read = reader.read_until(b'\n', &mut buf).context("reading")?;
            if read == 0 {
                break;
            }
            number += 1;
            self.progress.inc(read as u64);
            match text_of(&buf, number).and_then(|line| parse_line(line, self.limit)) {
                Ok(None) => {}
                Ok(Some(entry)) => self.pending.push((number, entry)),
                Err(why) => self.reject(number, &why),
            }
            if self.pending.len() >= self.batch {
                self.flush().await?;
            }
        }
        self.flush().await
    }

    fn reject(&mut self, number: u64, why: &Rejected) {
        self.progress.suspend(|| eprintln!("line {number}: {why}"));
        self.tally.rejected.push(number);
    }

    /// Stores the pending entries in one transaction, creating their rooms first.
    async fn flush(&mut self) -> anyhow::Result<()> {
        let (Some((first, _)), Some((last, _))) = (self.pending.first(), self.pending.last())
        else {
            return Ok(());
        };
        let lines = format!("storing lines {first} to {last}");
        let mut messages = Vec::with_capacity(self.pending.len());
        for (_, entry) in self.pending.drain(..) {
            let room = self
                .store
                .open_room(&entry.room)
                .await
                .context(lines.clone())?;
            messages.push(Imported {
                room,
                author: entry.user,
                text: entry.text,
                client_id: entry.client_id,
                created_at: entry.created_at,
            });
        }
        let count = self.store.import_batch(&messages).await.context(lines)?;
        self.tally.add(count);
        Ok(())
    }
}
