//! The journal of a recovering namespace's broadcasts: each with its offset, kept for twice the
//! maximum disconnection. In this process on a single node; on a cluster a Redis stream per
//! namespace, whose entry ids are the offsets (as Node's Redis Streams adapter has them).

use super::Sent;
use crate::cluster::{Link, LinkError};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Most broadcasts a namespace's journal keeps in this process, whatever their age.
const MOST_KEPT: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("the recovery journal is in Redis: {0}")]
    Redis(#[from] LinkError),
    #[error("more was missed than a socket's buffer holds")]
    TooMuch,
    #[error("a journal entry is unreadable: {0}")]
    Unreadable(String),
}

/// Offsets and what they were sent to, oldest first.
pub type Entries = Vec<(String, Sent)>;

pub enum Journal {
    Memory(Memory),
    Redis(Redis),
}

impl Journal {
    pub fn memory(keep: Duration) -> Self {
        Self::Memory(Memory {
            keep,
            boot: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
            logs: Mutex::default(),
        })
    }

    pub fn redis(link: Link, prefix: &str, keep: Duration) -> Self {
        Self::Redis(Redis {
            link,
            prefix: prefix.to_owned(),
            keep,
        })
    }

    /// Journals `sent`: its offset.
    pub async fn append(&self, ns: &str, sent: Sent) -> Result<String, JournalError> {
        match self {
            Self::Memory(memory) => Ok(memory.append(ns, sent)),
            Self::Redis(redis) => redis.append(ns, sent).await,
        }
    }

    /// What was journaled in `ns` after `offset`, at most `most` entries; `None` when the
    /// journal does not hold `offset` or lost entries after it.
    pub async fn after(
        &self,
        ns: &str,
        offset: &str,
        most: usize,
    ) -> Result<Option<Entries>, JournalError> {
        match self {
            Self::Memory(memory) => memory.after(ns, offset, most),
            Self::Redis(redis) => redis.after(ns, offset, most).await,
        }
    }
}

/// A single node's journal. Offsets are `<boot>-<n>`: `boot` tells this process's offsets from
/// those of a process that ran before it.
pub struct Memory {
    keep: Duration,
    boot: String,
    logs: Mutex<HashMap<String, Log>>,
}

#[derive(Default)]
struct Log {
    entries: VecDeque<(u64, Instant, Sent)>,
    /// The next entry's number.
    next: u64,
}

impl Log {
    fn trim(&mut self, keep: Duration) {
        let now = Instant::now();
        while let Some((_, at, _)) = self.entries.front() {
            if self.entries.len() > MOST_KEPT || now.duration_since(*at) > keep {
                self.entries.pop_front();
            } else {
                break;
            }
        }
    }
}

impl Memory {
    fn logs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Log>> {
        self.logs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn append(&self, ns: &str, sent: Sent) -> String {
        let mut logs = self.logs();
        let log = logs.entry(ns.to_owned()).or_default();
        log.next = log.next.max(1);
        let n = log.next;
        log.next += 1;
        log.entries.push_back((n, Instant::now(), sent));
        log.trim(self.keep);
        format!("{}-{n}", self.boot)
    }

    fn after(&self, ns: &str, offset: &str, most: usize) -> Result<Option<Entries>, JournalError> {
        let Some(n) = (offset.split_once('-'))
            .filter(|(boot, _)| *boot == self.boot)
            .and_then(|(_, n)| n.parse::<u64>().ok())
        else {
            return Ok(None);
        };
        let mut logs = self.logs();
        let Some(log) = logs.get_mut(ns) else {
            return Ok(None);
        };
        log.trim(self.keep);
        let first = log.entries.front().map_or(log.next, |(first, ..)| *first);
        // Every entry after `n` must still be here: `n` itself may have been trimmed.
        if n == 0 || n >= log.next || first > n + 1 {
            return Ok(None);
        }
        // Entries are numbered without gaps: those after `n` are the log's tail.
        let skip = usize::try_from(n + 1 - first).unwrap_or(usize::MAX);
        if log.entries.len().saturating_sub(skip) > most {
            return Err(JournalError::TooMuch);
        }
        Ok(Some(
            (log.entries.iter().skip(skip))
                .map(|(m, _, sent)| (format!("{}-{m}", self.boot), sent.clone()))
                .collect(),
        ))
    }
}

/// A cluster's journal: one Redis stream per namespace, trimmed by age as it grows, and gone
/// when nothing was journaled for as long as it keeps entries.
pub struct Redis {
    link: Link,
    prefix: String,
    keep: Duration,
}

/// The stream field holding a [`Sent`], as JSON.
const FIELD: &str = "sent";

impl Redis {
    fn key(&self, ns: &str) -> String {
        format!("{}-recovery#{ns}#journal", self.prefix)
    }

    async fn append(&self, ns: &str, sent: Sent) -> Result<String, JournalError> {
        let key = self.key(ns);
        let keep_ms = self.keep.as_millis() as u64;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let entry =
            serde_json::to_string(&sent).map_err(|e| JournalError::Unreadable(e.to_string()))?;
        let mut conn = self.link.commands()?;
        let mut pipe = redis::pipe();
        pipe.cmd("XADD")
            .arg(&key)
            .arg("MINID")
            .arg("~")
            .arg(format!("{}-0", now_ms.saturating_sub(keep_ms)))
            .arg("*")
            .arg(FIELD)
            .arg(entry)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(keep_ms)
            .ignore();
        let res = pipe.query_async::<(String,)>(&mut conn).await;
        let (offset,) = self.link.observe("recovery_journal", res)?;
        Ok(offset)
    }

    async fn after(
        &self,
        ns: &str,
        offset: &str,
        most: usize,
    ) -> Result<Option<Entries>, JournalError> {
        let is_stream_id = offset.split_once('-').is_some_and(|(ms, seq)| {
            [ms, seq]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        });
        if !is_stream_id {
            return Ok(None);
        }
        let mut conn = self.link.commands()?;
        // The offset itself first, to know the stream still holds it; then one more than
        // `most`, to know when there are too many.
        let res = redis::cmd("XRANGE")
            .arg(self.key(ns))
            .arg(offset)
            .arg("+")
            .arg("COUNT")
            .arg(most + 2)
            .query_async::<Vec<(String, Vec<(String, String)>)>>(&mut conn)
            .await;
        let entries = self.link.observe("recovery_journal", res)?;
        let mut entries = entries.into_iter();
        if entries.next().is_none_or(|(first, _)| first != offset) {
            return Ok(None);
        }
        let missed: Vec<_> = entries.collect();
        if missed.len() > most {
            return Err(JournalError::TooMuch);
        }
        (missed.into_iter())
            .map(|(id, fields)| {
                let (_, entry) = (fields.into_iter())
                    .find(|(field, _)| field == FIELD)
                    .ok_or_else(|| {
                        JournalError::Unreadable(format!("entry {id} has no {FIELD}"))
                    })?;
                let sent = serde_json::from_str::<Sent>(&entry)
                    .map_err(|e| JournalError::Unreadable(format!("entry {id}: {e}")))?;
                Ok((id, sent))
            })
            .collect::<Result<Entries, _>>()
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(data: &str) -> Sent {
        Sent {
            rooms: vec![],
            except: vec![],
            data: data.to_owned(),
        }
    }

    #[tokio::test]
    async fn what_follows_an_offset_in_order_and_nothing_for_offsets_it_never_gave() {
        let journal = Journal::memory(Duration::from_secs(60));
        let mut offsets = vec![];
        for i in 0..5 {
            offsets.push(journal.append("/", sent(&format!("[{i}]"))).await.ok());
        }
        let after = |offset: &str, most: usize| {
            let journal = &journal;
            let offset = offset.to_owned();
            async move { journal.after("/", &offset, most).await }
        };
        let Some(second) = offsets[1].clone() else {
            panic!("no offset");
        };
        let rest = after(&second, 10).await.ok().flatten().unwrap_or_default();
        let data: Vec<&str> = rest.iter().map(|(_, s)| s.data.as_str()).collect();
        assert_eq!(data, ["[2]", "[3]", "[4]"]);
        assert_eq!(rest.first().map(|(o, _)| o.clone()), offsets[2]);
        assert!(matches!(
            after(&second, 2).await,
            Err(JournalError::TooMuch)
        ));
        assert!(matches!(after("nope-1", 10).await, Ok(None)));
        assert!(matches!(after("", 10).await, Ok(None)));
        let last = offsets[4].clone().unwrap_or_default();
        assert!(matches!(after(&last, 10).await, Ok(Some(v)) if v.is_empty()));
        assert!(matches!(journal.after("/other", &last, 10).await, Ok(None)));
    }

    #[tokio::test]
    async fn an_offset_whose_followers_were_trimmed_is_not_recovered() {
        let journal = Journal::memory(Duration::from_millis(1));
        let first = journal.append("/", sent("[1]")).await.unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let _ = journal.append("/", sent("[2]")).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let _ = journal.append("/", sent("[3]")).await;
        assert!(matches!(journal.after("/", &first, 10).await, Ok(None)));
    }
}
