//! The sessions of sockets that went and may come back, each kept for the maximum
//! disconnection: in this process on a single node, in Redis (with their expiry) on a cluster.

use super::Session;
use crate::cluster::{Link, LinkError};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum SessionsError {
    #[error("sessions are in Redis: {0}")]
    Redis(#[from] LinkError),
    #[error("a kept session is unreadable: {0}")]
    Unreadable(#[from] serde_json::Error),
}

pub enum Sessions {
    Memory(Mutex<HashMap<(String, String), (Session, Instant)>>),
    Redis { link: Link, prefix: String },
}

impl Sessions {
    pub fn memory() -> Self {
        Self::Memory(Mutex::default())
    }

    pub fn redis(link: Link, prefix: &str) -> Self {
        Self::Redis {
            link,
            prefix: prefix.to_owned(),
        }
    }

    fn key(prefix: &str, ns: &str, pid: &str) -> String {
        format!("{prefix}-recovery#{ns}#session#{pid}")
    }

    /// Keeps `session` of namespace `ns` for `ttl`.
    pub async fn keep(
        &self,
        ns: &str,
        session: &Session,
        ttl: Duration,
    ) -> Result<(), SessionsError> {
        match self {
            Self::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                map.retain(|_, (_, until)| *until > now);
                map.insert(
                    (ns.to_owned(), session.pid.clone()),
                    (session.clone(), now + ttl),
                );
                Ok(())
            }
            Self::Redis { link, prefix } => {
                let value = serde_json::to_string(session)?;
                let mut conn = link.commands()?;
                let res = redis::cmd("SET")
                    .arg(Self::key(prefix, ns, &session.pid))
                    .arg(value)
                    .arg("PX")
                    .arg(ttl.as_millis() as u64)
                    .query_async::<()>(&mut conn)
                    .await;
                Ok(link.observe("recovery_session", res)?)
            }
        }
    }

    /// The session `pid` of `ns`, if it is kept and has not expired. It stays kept (a client
    /// whose connection fails before it is live may try again) until [`Sessions::forget`] or
    /// its expiry.
    pub async fn get(&self, ns: &str, pid: &str) -> Result<Option<Session>, SessionsError> {
        match self {
            Self::Memory(map) => {
                let map = map.lock().unwrap_or_else(|p| p.into_inner());
                let kept = map.get(&(ns.to_owned(), pid.to_owned()));
                Ok(kept
                    .filter(|(_, until)| *until > Instant::now())
                    .map(|(session, _)| session.clone()))
            }
            Self::Redis { link, prefix } => {
                let mut conn = link.commands()?;
                let res = redis::cmd("GET")
                    .arg(Self::key(prefix, ns, pid))
                    .query_async::<Option<String>>(&mut conn)
                    .await;
                let kept = link.observe("recovery_session", res)?;
                Ok(kept.map(|s| serde_json::from_str(&s)).transpose()?)
            }
        }
    }

    /// Forgets the session `pid` of `ns`: its socket is live again.
    pub async fn forget(&self, ns: &str, pid: &str) -> Result<(), SessionsError> {
        match self {
            Self::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                map.remove(&(ns.to_owned(), pid.to_owned()));
                Ok(())
            }
            Self::Redis { link, prefix } => {
                let mut conn = link.commands()?;
                let res = redis::cmd("DEL")
                    .arg(Self::key(prefix, ns, pid))
                    .query_async::<()>(&mut conn)
                    .await;
                Ok(link.observe("recovery_session", res)?)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(pid: &str) -> Session {
        Session {
            pid: pid.into(),
            id: "id".into(),
            user: "ann".into(),
            ids: vec!["id".into()],
            rooms: vec!["r1".into()],
        }
    }

    #[tokio::test]
    async fn a_session_is_kept_until_forgotten_or_expired() {
        let sessions = Sessions::memory();
        let minute = Duration::from_secs(60);
        assert!(sessions.keep("/", &session("a"), minute).await.is_ok());
        assert!(
            (sessions
                .keep("/", &session("b"), Duration::from_millis(1))
                .await)
                .is_ok()
        );
        assert!(matches!(sessions.get("/other", "a").await, Ok(None)));
        assert!(matches!(sessions.get("/", "a").await, Ok(Some(s)) if s == session("a")));
        assert!(matches!(sessions.get("/", "a").await, Ok(Some(_))));
        assert!(sessions.forget("/", "a").await.is_ok());
        assert!(matches!(sessions.get("/", "a").await, Ok(None)));
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(matches!(sessions.get("/", "b").await, Ok(None)));
    }
}
