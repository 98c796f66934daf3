//! The Redis channels of one namespace, named as `@socket.io/redis-adapter` 8.x names them.
//!
//! With `key` the adapter's key (chatoxide's `REDIS_PREFIX`) and `nsp` the namespace:
//! broadcasts go to `key#nsp#`, or to `key#nsp#room#` when they target exactly one room (every
//! node listens to the pattern `key#nsp#*`); requests to `key-request#nsp#`, whose subscribers
//! Redis counts to tell how many nodes there are; responses to `key-response#nsp#` (and, from
//! nodes set to answer each requester apart, `key-response#nsp#uid#`).

/// The channels of one namespace.
#[derive(Debug, Clone)]
pub struct Channels {
    broadcast: String,
    pub request: String,
    pub response: String,
    /// Where nodes with `publishOnSpecificResponseChannel` answer this node.
    pub own_response: String,
}

impl Channels {
    pub fn new(key: &str, nsp: &str, uid: &str) -> Self {
        let response = format!("{key}-response#{nsp}#");
        Self {
            broadcast: format!("{key}#{nsp}#"),
            request: format!("{key}-request#{nsp}#"),
            own_response: format!("{response}{uid}#"),
            response,
        }
    }

    /// The channel a broadcast to `rooms` is published on.
    pub fn broadcast(&self, rooms: &[String]) -> String {
        match rooms {
            [room] => format!("{}{room}#", self.broadcast),
            _ => self.broadcast.clone(),
        }
    }

    /// The pattern every broadcast of the namespace matches.
    pub fn broadcasts(&self) -> String {
        format!("{}*", self.broadcast)
    }

    /// Whether a message on `chan` is a broadcast of this namespace (a pattern also matches
    /// the channels of a namespace whose name starts with this one's).
    pub fn is_broadcast(&self, chan: &str) -> bool {
        chan.starts_with(&self.broadcast)
    }

    pub fn is_response(&self, chan: &str) -> bool {
        chan == self.response || chan == self.own_response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_named_as_node_names_them() {
        let c = Channels::new("socket.io", "/", "abc");
        assert_eq!(c.broadcast(&[]), "socket.io#/#");
        assert_eq!(c.broadcast(&["r1".into()]), "socket.io#/#r1#");
        assert_eq!(c.broadcast(&["a".into(), "b".into()]), "socket.io#/#");
        assert_eq!(c.broadcasts(), "socket.io#/#*");
        assert_eq!(c.request, "socket.io-request#/#");
        assert_eq!(c.response, "socket.io-response#/#");
        assert_eq!(c.own_response, "socket.io-response#/#abc#");
    }
}
