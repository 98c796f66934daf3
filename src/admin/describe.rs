//! Sockets as the admin UI shows them: Node's serialized socket (id, namespace, transport,
//! handshake, rooms), credentials left out.

use crate::limits::RateLimits;
use serde_json::{Map, Value, json};
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use socketioxide::{SocketIo, TransportType};
use std::collections::BTreeSet;

/// Request headers the UI never shows: credentials.
const HIDDEN_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];
/// Query parameters the UI never shows: credentials (2.x clients send their token there).
const HIDDEN_QUERY: [&str; 2] = ["token", "password"];

/// A socket as last seen.
pub(super) struct Seen {
    pub(super) rooms: BTreeSet<String>,
    pub(super) transport: &'static str,
}

/// Every socket of the cluster, for an admin socket that just connected: this node's in full
/// (`here`, as its watcher last told them), other nodes' with what the adapter tells (id,
/// namespace, rooms; their own watchers tell the rest).
pub(super) async fn all_sockets<A: Adapter>(io: &SocketIo<A>, here: Vec<Value>) -> Vec<Value> {
    let mut all = here;
    let here: BTreeSet<String> = all
        .iter()
        .filter_map(|s| s.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect();
    for ns in io.nsps() {
        let nsp = ns.ns_path().to_owned();
        let remote = match ns.fetch_sockets().await {
            Ok(remote) => remote,
            Err(err) => {
                tracing::debug!(nsp, error = %err, "other nodes' sockets unknown to the admin UI");
                continue;
            }
        };
        for socket in remote
            .iter()
            .filter(|s| !here.contains(&s.data().id.to_string()))
        {
            let id = socket.data().id;
            let mut rooms: BTreeSet<String> = socket
                .rooms()
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.into_owned())
                .collect();
            rooms.insert(id.to_string());
            all.push(json!({
                "id": id,
                "clientId": client_id(id),
                "transport": "unknown",
                "nsp": nsp,
                "data": {},
                "handshake": { "address": "", "headers": {}, "query": {}, "issued": 0,
                               "time": "", "secure": false, "url": "", "xdomain": false },
                "rooms": rooms,
            }));
        }
    }
    all
}

/// A socket as the UI shows it (Node's serialized socket, credentials left out).
pub(super) fn describe<A: Adapter>(
    socket: &SocketRef<A>,
    limits: &RateLimits,
    seen: &Seen,
) -> Value {
    let request = socket.req_parts();
    let headers: Map<String, Value> = request
        .headers
        .iter()
        .map(|(name, value)| {
            let shown = if HIDDEN_HEADERS.contains(&name.as_str()) {
                "<hidden>".to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_owned(), Value::String(shown))
        })
        .collect();
    let query: Map<String, Value> =
        form_urlencoded::parse(request.uri.query().unwrap_or_default().as_bytes())
            .map(|(k, v)| {
                let shown = if is_hidden_query(&k) {
                    "<hidden>".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), Value::String(shown))
            })
            .collect();
    let user = socket
        .extensions
        .get::<crate::chat::User>()
        .map(|u| json!({ "user": u.id.as_str(), "name": u.name.as_str() }))
        .unwrap_or_else(|| json!({}));
    let now = chrono::Utc::now();
    json!({
        "id": socket.id,
        "clientId": client_id(socket.id),
        "transport": seen.transport,
        "nsp": socket.ns(),
        "data": user,
        "handshake": {
            "address": limits.client_address(&request.headers, &request.extensions),
            "headers": headers,
            "query": query,
            "issued": now.timestamp_millis(),
            "time": now.to_rfc2822(),
            "secure": false,
            "url": shown_url(&request.uri),
            "xdomain": request.headers.contains_key("origin"),
        },
        "rooms": seen.rooms,
    })
}

fn is_hidden_query(key: &str) -> bool {
    HIDDEN_QUERY.iter().any(|h| h.eq_ignore_ascii_case(key))
}

/// The handshake URL with credentials in its query hidden (2.x clients send their token there).
fn shown_url(uri: &axum::http::Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.path().to_owned();
    };
    let mut shown = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let v = if is_hidden_query(&k) {
            "<hidden>".into()
        } else {
            v
        };
        shown.append_pair(&k, &v);
    }
    format!("{}?{}", uri.path(), shown.finish())
}

/// The socket's rooms, and its own id, which the UI shows as the socket's private room.
pub(super) fn rooms_of<A: Adapter>(socket: &SocketRef<A>) -> BTreeSet<String> {
    let mut rooms: BTreeSet<String> = socket.rooms().into_iter().map(|r| r.into_owned()).collect();
    rooms.insert(socket.id.to_string());
    rooms
}

/// The UI groups sockets by client; each socket here stands for its own.
fn client_id(id: Sid) -> String {
    id.to_string().chars().take(12).collect()
}

pub(super) fn transport_name(transport: TransportType) -> &'static str {
    match transport {
        TransportType::Polling => "polling",
        TransportType::Websocket => "websocket",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_url_are_hidden() {
        let uri: axum::http::Uri =
            "/socket.io/?EIO=3&transport=polling&TOKEN=eyJsecret&username=al"
                .parse()
                .unwrap_or_default();
        let shown = shown_url(&uri);
        assert!(!shown.contains("eyJsecret"), "{shown}");
        assert!(
            shown.starts_with("/socket.io/?EIO=3&transport=polling&TOKEN="),
            "{shown}"
        );
        assert!(shown.ends_with("username=al"), "{shown}");
        let bare: axum::http::Uri = "/socket.io/".parse().unwrap_or_default();
        assert_eq!(shown_url(&bare), "/socket.io/");
    }
}
