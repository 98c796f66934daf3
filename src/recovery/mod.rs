//! Connection state recovery, as Node socket.io 4.x's `connectionStateRecovery`: a client that
//! lost its connection for a moment comes back, on any node, with its session (its rooms and
//! the id it knew) and the events it missed, in the order they were sent, and reads
//! `socket.recovered === true`.
//!
//! Model, as Node's adapters have it: on a recovering namespace every broadcast that is neither
//! volatile nor waiting for acknowledgements is written to the namespace's [`journal`] before
//! it is sent, and sent with its journal position, the *offset*, appended as its last argument
//! (socket.io-client keeps the last one). A socket that disconnects for a reason a client may
//! come back from leaves its session (pid, id, rooms; [`sessions`]) for the maximum
//! disconnection. A client that comes back sends its `pid` and last offset: its session is
//! found, and what the journal holds after the offset for its rooms is sent right after its CONNECT
//! answer. The journal and the sessions live in this process on a single node, and in Redis on
//! a cluster, so any node recovers any session.
//!
//! Seam: a broadcast of the namespace on this node is journaled and delivered in one turn of the
//! namespace's lock ([`Recovery::turn`]); a restore reads what was missed without it, then
//! takes it, reads what was journaled since, and holds it until the socket is live. What another
//! node broadcasts within the moment a restore reads the journal may reach the socket twice
//! (docs/migrating-from-node.md).

mod adapter;
mod journal;
mod sessions;

pub use adapter::{Recovering, RecoveringCtr};

use crate::cluster::Link;
use crate::config::RecoveryConfig;
use crate::telemetry::names;
use journal::{Entries, Journal};
use serde::{Deserialize, Serialize};
use sessions::Sessions;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;

/// The names open mode gives users that give none (src/identity.rs).
const GUEST_PREFIX: &str = crate::identity::GUEST_PREFIX;
/// Longest `pid` or offset a client may send.
const MAX_ID_LEN: usize = 64;
/// How long a restore may hold its namespace's turn for a socket that never goes live (its
/// connection failed between the handshake and the CONNECT answer).
const TURN_LIMIT: Duration = Duration::from_secs(5);

/// What a socket that may come back leaves behind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The session's private id (socket.io's `pid`).
    pub pid: String,
    /// The socket id its client knows.
    pub id: String,
    /// Whose session it is: only that user's credentials restore it.
    pub user: String,
    /// The rooms named by the socket's ids (Node's socket is in its id's room): the id its
    /// client knows and the socket's own. What reached them reaches the restored socket.
    pub ids: Vec<String>,
    /// Its other rooms when it went.
    pub rooms: Vec<String>,
}

/// A broadcast as the journal keeps it: whom it was for, and its payload (the JSON array of the
/// event's name and arguments) without its offset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// No room: every socket of the namespace.
    pub rooms: Vec<String>,
    pub except: Vec<String>,
    pub data: String,
}

impl Sent {
    /// Whether a socket in `rooms` was sent it.
    fn reaches(&self, rooms: &HashSet<&str>) -> bool {
        let to = self.rooms.is_empty() || self.rooms.iter().any(|r| rooms.contains(r.as_str()));
        to && !self.except.iter().any(|r| rooms.contains(r.as_str()))
    }
}

/// `data` (a JSON array) with `offset` appended as its last element.
pub fn with_offset(data: &str, offset: &str) -> Option<String> {
    let open = data.strip_suffix(']')?;
    let offset = serde_json::to_string(offset).ok()?;
    Some(if open.trim_end().ends_with('[') {
        format!("{open}{offset}]")
    } else {
        format!("{open},{offset}]")
    })
}

/// A restored session: what its client missed, and the namespace's turn, held until the socket
/// is live.
pub struct Restored {
    pub session: Session,
    /// Payloads with their offsets, oldest first.
    pub missed: Vec<String>,
    pub turn: Turn,
}

/// A namespace's turn, held by a restore until its socket is live ([`Turn::release`]), until
/// the socket is dropped (its connection failed before it was live), or for [`TURN_LIMIT`] at
/// most.
#[derive(Clone)]
pub struct Turn(Arc<Mutex<Option<OwnedMutexGuard<()>>>>);

impl Turn {
    fn hold(guard: OwnedMutexGuard<()>) -> Self {
        let turn = Self(Arc::new(Mutex::new(Some(guard))));
        let limit = Arc::downgrade(&turn.0);
        tokio::spawn(async move {
            tokio::time::sleep(TURN_LIMIT).await;
            if let Some(turn) = limit.upgrade() {
                Self(turn).release();
            }
        });
        turn
    }

    pub fn release(&self) {
        if let Ok(mut guard) = self.0.lock() {
            guard.take();
        }
    }
}

/// What became of a session a restore looks for on the socket of this node that held it.
pub enum Stale {
    /// Taken from the socket, which is ended.
    Taken(Session),
    /// The socket is going: its session is about to be kept.
    Leaving,
    /// The socket arrived after the one restoring: its client gave up on this connection and
    /// came back on another, which holds the session now.
    Newer,
    /// No such socket.
    Gone,
}

/// How long a restore waits, all told, for the session of a socket that is going to be kept.
const LEAVING_WAIT: Duration = Duration::from_secs(2);

/// Why a returning client was not recovered, in the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missed {
    /// No such session: never kept, expired, taken, or kept by a process that restarted.
    NoSession,
    /// The session is another user's.
    OtherUser,
    /// The journal no longer holds the offset (too old), or never did.
    UnknownOffset,
    /// More was missed than the socket's buffer holds.
    TooMuch,
    /// The journal or the sessions could not be read.
    Unavailable,
    /// A later connection of the same client holds the session.
    Superseded,
}

/// Every `why` of the failure metric.
pub const FAILURE_LABELS: [&str; 7] = [
    "no_session",
    "superseded",
    "other_user",
    "unknown_offset",
    "too_much",
    "unavailable",
    "journal",
];

impl Missed {
    fn label(self) -> &'static str {
        match self {
            Self::NoSession => "no_session",
            Self::OtherUser => "other_user",
            Self::UnknownOffset => "unknown_offset",
            Self::TooMuch => "too_much",
            Self::Unavailable => "unavailable",
            Self::Superseded => "superseded",
        }
    }
}

/// Connection state recovery for every namespace of this process (a cheap handle).
#[derive(Clone)]
pub struct Recovery(Arc<Inner>);

struct Inner {
    config: RecoveryConfig,
    journal: Journal,
    sessions: Sessions,
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The sessions of this node's live sockets, by namespace and pid: their socket id and user.
    live: Mutex<HashMap<(String, String), (String, String)>>,
    /// Most events a restore sends: what the socket's buffer holds, less room for its answers.
    most_missed: usize,
}

impl Recovery {
    /// On a cluster (`link`) the journal and sessions are in Redis under `prefix`, else here.
    pub fn new(config: RecoveryConfig, link: Option<(Link, String)>, socket_buffer: usize) -> Self {
        // Kept twice the maximum disconnection: a session kept that long may come back with an
        // offset as old again (a client that heard nothing for a while).
        let keep = config.max_disconnection * 2;
        let (journal, sessions) = match link {
            Some((link, prefix)) => (
                Journal::redis(link.clone(), &prefix, keep),
                Sessions::redis(link, &prefix),
            ),
            None => (Journal::memory(keep), Sessions::memory()),
        };
        Self(Arc::new(Inner {
            config,
            journal,
            sessions,
            turns: Mutex::default(),
            live: Mutex::default(),
            most_missed: socket_buffer.saturating_sub(16).max(1),
        }))
    }

    /// Recovery off everywhere (tests, embedding).
    pub fn off() -> Self {
        Self::new(
            RecoveryConfig {
                namespaces: crate::config::RecoveringNamespaces::None,
                max_disconnection: Duration::from_secs(120),
            },
            None,
            1024,
        )
    }

    /// Whether the sessions of namespace `ns` are recovered.
    pub fn covers(&self, ns: &str) -> bool {
        self.0.config.covers(ns)
    }

    /// A new session's private id.
    pub fn new_pid() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// The lock a broadcast of `ns` and a restore in `ns` take in turn.
    async fn turn(&self, ns: &str) -> OwnedMutexGuard<()> {
        let lock = match self.0.turns.lock() {
            Ok(mut turns) => turns.entry(ns.to_owned()).or_default().clone(),
            Err(poisoned) => poisoned
                .into_inner()
                .entry(ns.to_owned())
                .or_default()
                .clone(),
        };
        lock.lock_owned().await
    }

    /// Journals `sent` (a broadcast of `ns`, about to be delivered): its offset.
    async fn record(&self, ns: &str, sent: Sent) -> Result<String, journal::JournalError> {
        self.0.journal.append(ns, sent).await
    }

    /// Keeps the session of a socket of `ns` that went, for the maximum disconnection.
    pub async fn keep(&self, ns: &str, session: Session) {
        let ttl = self.0.config.max_disconnection;
        match self.0.sessions.keep(ns, &session, ttl).await {
            Ok(()) => metrics::counter!(names::RECOVERY_SESSIONS_KEPT).increment(1),
            Err(err) => {
                tracing::warn!(ns, error = %err, "could not keep a session for recovery: its client will start anew");
                metrics::counter!(names::RECOVERY_FAILURES, "why" => "unavailable").increment(1);
            }
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), (String, String)>> {
        self.0.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Socket `sid` of `user` on this node holds session `pid` of `ns`.
    pub fn register(&self, ns: &str, pid: &str, sid: &str, user: &str) {
        let key = (ns.to_owned(), pid.to_owned());
        self.live().insert(key, (sid.to_owned(), user.to_owned()));
    }

    /// Socket `sid` no longer holds session `pid` of `ns`.
    pub fn unregister(&self, ns: &str, pid: &str, sid: &str) {
        let mut live = self.live();
        let key = (ns.to_owned(), pid.to_owned());
        if live.get(&key).is_some_and(|(holder, _)| holder == sid) {
            live.remove(&key);
        }
    }

    /// The socket of this node that still holds session `pid` of `ns`, and its user.
    fn holder(&self, ns: &str, pid: &str) -> Option<(String, String)> {
        self.live().get(&(ns.to_owned(), pid.to_owned())).cloned()
    }

    /// The user of session `pid` in `ns` when it is a guest's (open mode, no name given): a
    /// guest that comes back without a name is the same guest, as its Node app saw it.
    pub async fn returning_guest(&self, ns: &str, pid: &str) -> Option<String> {
        if pid.len() > MAX_ID_LEN {
            return None;
        }
        let user = match self.0.sessions.get(ns, pid).await.ok()? {
            Some(session) => session.user,
            None => self.holder(ns, pid)?.1,
        };
        user.starts_with(GUEST_PREFIX).then_some(user)
    }

    /// Forgets session `pid` of `ns`: its socket is live again, and keeps it anew when it goes.
    pub async fn forget(&self, ns: &str, pid: &str) {
        if let Err(err) = self.0.sessions.forget(ns, pid).await {
            tracing::debug!(ns, error = %err, "could not forget a restored session: it expires by itself");
        }
    }

    /// The session `pid` of `user` in `ns`, with what its client missed after `offset`. The
    /// session stays kept until its socket is live ([`Recovery::forget`]). A session no socket
    /// left yet, because its socket on this node has not noticed its client went (a polling
    /// client's dropped request is seen at the next missed ping), is taken from that socket by
    /// `stale` (given its id), which ends it. `None`: start a new session.
    pub async fn restore(
        &self,
        ns: &str,
        pid: &str,
        offset: &str,
        user: &str,
        mut stale: impl FnMut(&str) -> Stale,
    ) -> Option<Restored> {
        match self.try_restore(ns, pid, offset, user, &mut stale).await {
            Ok(restored) => {
                metrics::counter!(names::RECOVERY_RESTORED).increment(1);
                metrics::counter!(names::RECOVERY_MISSED).increment(restored.missed.len() as u64);
                Some(restored)
            }
            Err(why) => {
                tracing::debug!(
                    ns,
                    why = why.label(),
                    "session not recovered: a new session starts"
                );
                metrics::counter!(names::RECOVERY_FAILURES, "why" => why.label()).increment(1);
                None
            }
        }
    }

    async fn try_restore(
        &self,
        ns: &str,
        pid: &str,
        offset: &str,
        user: &str,
        stale: &mut impl FnMut(&str) -> Stale,
    ) -> Result<Restored, Missed> {
        if pid.len() > MAX_ID_LEN || offset.len() > MAX_ID_LEN {
            return Err(Missed::NoSession);
        }
        let session = self.find(ns, pid, user, stale).await?;
        if session.user != user {
            return Err(Missed::OtherUser);
        }
        let rooms: HashSet<&str> = (session.ids.iter().chain(&session.rooms))
            .map(String::as_str)
            .collect();
        let reached = |sent: Entries| -> Vec<String> {
            (sent.iter())
                .filter(|(_, sent)| sent.reaches(&rooms))
                .filter_map(|(offset, sent)| with_offset(&sent.data, offset))
                .collect()
        };
        // What was missed, read without the namespace's turn (a crowd coming back at once
        // restores side by side); then, in the turn, what was sent since: that turn is held
        // until the socket is live, so each broadcast reaches it once, from here or live.
        let sent = self.missed_after(ns, offset, self.0.most_missed).await?;
        let last = sent
            .last()
            .map_or(offset, |(last, _)| last.as_str())
            .to_owned();
        let most = self.0.most_missed.saturating_sub(sent.len());
        let mut missed = reached(sent);
        let turn = self.turn(ns).await;
        missed.extend(reached(self.missed_after(ns, &last, most).await?));
        Ok(Restored {
            session,
            missed,
            turn: Turn::hold(turn),
        })
    }

    /// Session `pid` of `ns`: kept, or taken by `stale` from the socket of this node that still
    /// holds it (see [`Recovery::restore`]).
    async fn find(
        &self,
        ns: &str,
        pid: &str,
        user: &str,
        stale: &mut impl FnMut(&str) -> Stale,
    ) -> Result<Session, Missed> {
        let waited = tokio::time::Instant::now();
        loop {
            if let Some(session) = self.kept(ns, pid).await? {
                return Ok(session);
            }
            let Some((sid, holder)) = self.holder(ns, pid) else {
                // Its socket may have gone since: it keeps the session before it lets go of it.
                return self.kept(ns, pid).await?.ok_or(Missed::NoSession);
            };
            if holder != user {
                return Err(Missed::OtherUser);
            }
            match stale(&sid) {
                Stale::Taken(session) => {
                    // Kept as a session its socket left, until the socket restoring it is live:
                    // a handshake that fails from here on leaves it for the client's next try.
                    self.keep(ns, session.clone()).await;
                    return Ok(session);
                }
                Stale::Gone => return Err(Missed::NoSession),
                Stale::Newer => return Err(Missed::Superseded),
                // Its session is being kept: look again in a moment.
                Stale::Leaving if waited.elapsed() < LEAVING_WAIT => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Stale::Leaving => return Err(Missed::NoSession),
            }
        }
    }

    /// Session `pid` of `ns`, if it is kept.
    async fn kept(&self, ns: &str, pid: &str) -> Result<Option<Session>, Missed> {
        (self.0.sessions.get(ns, pid).await).map_err(|err| {
            tracing::warn!(ns, error = %err, "could not read a session for recovery");
            Missed::Unavailable
        })
    }

    /// What the journal of `ns` holds after `offset`, `most` entries at most.
    async fn missed_after(&self, ns: &str, offset: &str, most: usize) -> Result<Entries, Missed> {
        (self.0.journal.after(ns, offset, most).await)
            .map_err(|err| match err {
                journal::JournalError::TooMuch => Missed::TooMuch,
                err => {
                    tracing::warn!(ns, error = %err, "could not read the recovery journal");
                    Missed::Unavailable
                }
            })?
            .ok_or(Missed::UnknownOffset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_is_the_last_argument() {
        assert_eq!(
            with_offset(r#"["said","r1","hi"]"#, "1-2").as_deref(),
            Some(r#"["said","r1","hi","1-2"]"#)
        );
        assert_eq!(
            with_offset(r#"["ping"]"#, "a").as_deref(),
            Some(r#"["ping","a"]"#)
        );
        assert_eq!(with_offset("[]", "a").as_deref(), Some(r#"["a"]"#));
        assert_eq!(with_offset("{}", "a"), None);
    }

    #[test]
    fn a_broadcast_reaches_the_rooms_it_names_but_those_it_excepts() {
        let sent = |rooms: &[&str], except: &[&str]| Sent {
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
            except: except.iter().map(|r| r.to_string()).collect(),
            data: "[]".into(),
        };
        let mine: HashSet<&str> = ["r1", "me"].into();
        assert!(sent(&[], &[]).reaches(&mine));
        assert!(sent(&["r1", "r2"], &[]).reaches(&mine));
        assert!(!sent(&["r2"], &[]).reaches(&mine));
        assert!(!sent(&["r1"], &["me"]).reaches(&mine));
        assert!(!sent(&[], &["me"]).reaches(&mine));
    }

    fn session(pid: &str, user: &str) -> Session {
        Session {
            pid: pid.into(),
            id: "known".into(),
            user: user.into(),
            ids: vec!["known".into()],
            rooms: vec!["r1".into()],
        }
    }

    /// A recovery on one node with two broadcasts to `r1` journaled: the first's offset.
    async fn journaled() -> (Recovery, String) {
        let recovery = Recovery::off();
        let sent = Sent {
            rooms: vec!["r1".into()],
            except: vec![],
            data: r#"["said"]"#.into(),
        };
        let offset = recovery.record("/", sent.clone()).await.unwrap_or_default();
        let _ = recovery.record("/", sent).await;
        (recovery, offset)
    }

    #[tokio::test]
    async fn a_session_taken_over_stays_kept_until_its_socket_is_live() {
        let (recovery, offset) = journaled().await;
        recovery.register("/", "p1", "stale", "u1");
        let taken = |_: &str| Stale::Taken(session("p1", "u1"));
        let first = recovery.restore("/", "p1", &offset, "u1", taken).await;
        assert_eq!(first.map(|r| r.missed.len()), Some(1));
        // That handshake failed before its socket was live: the client's next try finds the
        // session kept, and is sent what it missed again.
        let again = recovery
            .restore("/", "p1", &offset, "u1", |_: &str| Stale::Gone)
            .await;
        assert_eq!(
            again.map(|r| (r.session, r.missed.len())),
            Some((session("p1", "u1"), 1))
        );
    }

    #[tokio::test]
    async fn a_later_connection_of_the_same_client_is_not_taken_over() {
        let (recovery, offset) = journaled().await;
        recovery.register("/", "p1", "later", "u1");
        let restored = recovery
            .restore("/", "p1", &offset, "u1", |_: &str| Stale::Newer)
            .await;
        assert!(restored.is_none());
        assert_eq!(
            recovery.holder("/", "p1").map(|(sid, _)| sid).as_deref(),
            Some("later")
        );
    }

    #[tokio::test]
    async fn another_users_session_is_not_restored() {
        let (recovery, offset) = journaled().await;
        recovery.keep("/", session("p1", "u1")).await;
        let restored = recovery
            .restore("/", "p1", &offset, "u2", |_: &str| Stale::Gone)
            .await;
        assert!(restored.is_none());
    }
}
