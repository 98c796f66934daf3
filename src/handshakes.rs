//! The handshakes of this node's sockets as Node's socket.io describes them (`socket.handshake`),
//! and the `data` a fetch reports: what a Node node's `fetchSockets()` gets for a chatoxide
//! socket in a mixed cluster (`REDIS_ADAPTER=node`). Kept only in that mode: elsewhere nobody
//! asks, and a connection costs nothing more.
//!
//! Node sends `handshake.auth` as the client gave it; here a `token` in it is left out, so that
//! no credential travels over Redis to other processes.

use crate::chat::User;
use chrono::Utc;
use dashmap::DashMap;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// A socket as a fetch describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Described {
    pub handshake: Value,
    pub data: Value,
}

/// This node's sockets' handshakes by socket id, when kept. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Handshakes(Option<Arc<DashMap<String, Described>>>);

/// What a handshake request carried.
pub struct Request<'a> {
    pub parts: &'a axum::http::request::Parts,
    /// The client's address (behind a trusted balancer, the one it forwarded).
    pub address: String,
    pub auth: Option<&'a Value>,
}

impl Handshakes {
    /// Handshakes that are kept.
    pub fn kept() -> Self {
        Self(Some(Arc::default()))
    }

    pub fn are_kept(&self) -> bool {
        self.0.is_some()
    }

    /// Keeps the handshake of socket `sid`, of `user`.
    pub fn keep(&self, sid: &str, request: Request<'_>, user: &User) {
        if let Some(all) = &self.0 {
            all.insert(sid.to_owned(), describe(request, user));
        }
    }

    pub fn forget(&self, sid: &str) {
        if let Some(all) = &self.0 {
            all.remove(sid);
        }
    }

    /// The socket `sid`, if its handshake is kept.
    pub fn of(&self, sid: &str) -> Option<Described> {
        self.0.as_ref()?.get(sid).map(|d| d.clone())
    }
}

/// Node's `socket.handshake` fields, and chatoxide's identity of the socket as its `data`.
fn describe(request: Request<'_>, user: &User) -> Described {
    let parts = request.parts;
    let headers: Map<String, Value> = parts
        .headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.into())))
        .collect();
    let query: Map<String, Value> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
    let mut auth = request
        .auth
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    auth.remove("token");
    let now = Utc::now();
    Described {
        handshake: json!({
            "headers": headers,
            // As JavaScript's `new Date().toString()` writes it.
            "time": now.format("%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)").to_string(),
            "address": request.address,
            "xdomain": parts.headers.contains_key(axum::http::header::ORIGIN),
            "secure": false,
            "issued": now.timestamp_millis(),
            "url": parts.uri.path_and_query().map_or("/", |pq| pq.as_str()),
            "query": query,
            "auth": auth,
        }),
        data: json!({ "user": { "id": user.id, "name": user.name } }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handshake_reads_as_node_s_without_the_token() {
        let request = axum::http::Request::builder()
            .uri("/socket.io/?EIO=4&transport=websocket&room=a")
            .header("origin", "http://example.test")
            .header("user-agent", "test")
            .body(())
            .unwrap_or_default();
        let (parts, ()) = request.into_parts();
        let auth = json!({ "username": "ann", "token": "secret", "serverOffset": 0 });
        let user = User {
            id: "ann".to_owned(),
            name: "ann".to_owned(),
        };
        let kept = Handshakes::kept();
        kept.keep(
            "sid1",
            Request {
                parts: &parts,
                address: "127.0.0.1".to_owned(),
                auth: Some(&auth),
            },
            &user,
        );
        let Some(Described { handshake, data }) = kept.of("sid1") else {
            panic!("not kept");
        };
        assert_eq!(
            handshake["auth"],
            json!({ "username": "ann", "serverOffset": 0 })
        );
        assert_eq!(handshake["address"], "127.0.0.1");
        assert_eq!(handshake["xdomain"], true);
        assert_eq!(
            handshake["url"],
            "/socket.io/?EIO=4&transport=websocket&room=a"
        );
        assert_eq!(handshake["query"]["room"], "a");
        assert_eq!(handshake["headers"]["user-agent"], "test");
        assert!(
            handshake["time"]
                .as_str()
                .is_some_and(|t| t.ends_with("(Coordinated Universal Time)"))
        );
        assert_eq!(data, json!({ "user": { "id": "ann", "name": "ann" } }));
        kept.forget("sid1");
        assert_eq!(kept.of("sid1"), None);
        assert!(!Handshakes::default().are_kept());
    }
}
