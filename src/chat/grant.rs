//! What a token grants: the rooms its `rooms` claim allows (patterns such as `general` or
//! `team-*`) and when the session ends. Open mode and tokens without the claim grant every room.

use super::{ChatError, RoomName};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Room patterns: room-name characters, with `*` standing for any run of characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomPatterns(Arc<[String]>);

impl RoomPatterns {
    /// At most 100 patterns of at most 64 characters each.
    pub fn parse(patterns: &[String]) -> Result<Self, String> {
        if patterns.len() > 100 {
            return Err("the rooms claim holds more than 100 patterns".to_owned());
        }
        for p in patterns {
            let valid = !p.is_empty()
                && p.len() <= 64
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.:*".contains(&b));
            if !valid {
                return Err(format!("'{p}' in the rooms claim is not a room pattern"));
            }
        }
        Ok(Self(patterns.iter().cloned().collect()))
    }

    pub fn allows(&self, room: &str) -> bool {
        self.0.iter().any(|p| glob(p.as_bytes(), room.as_bytes()))
    }
}

/// Whether `name` matches `pattern`, where `*` matches any run of bytes (including none).
/// Linear backtracking over the last `*`: no pattern can make it slow.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// What a socket may do beyond being its user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grant {
    /// `None`: every room.
    pub rooms: Option<RoomPatterns>,
    /// When the token stops being valid (its `exp`), if it says.
    pub expires_at: Option<SystemTime>,
}

impl Grant {
    /// `forbidden` for a room the token does not allow.
    pub fn ensure_room(&self, room: &RoomName) -> Result<(), ChatError> {
        match &self.rooms {
            Some(patterns) if !patterns.allows(room.as_str()) => Err(ChatError::forbidden(
                format!("your token does not allow room '{room}'"),
            )),
            _ => Ok(()),
        }
    }

    /// Whether the token allows a room, for memberships restored at connect.
    pub fn allows(&self, room: &str) -> bool {
        self.rooms.as_ref().is_none_or(|p| p.allows(room))
    }

    /// How long until the token expires, from now (zero if it has).
    pub fn remaining(&self) -> Option<Duration> {
        self.expires_at.map(|at| {
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        })
    }

    /// `exp` as a JWT gives it: seconds since the Unix epoch.
    pub fn expiring_at(seconds: u64) -> Option<SystemTime> {
        UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(p: &[&str]) -> RoomPatterns {
        let owned: Vec<String> = p.iter().map(|s| (*s).to_owned()).collect();
        RoomPatterns::parse(&owned).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn exact_names_and_stars() {
        let p = patterns(&["general", "team-*", "*-ops", "a*b*c"]);
        for yes in [
            "general", "team-", "team-red", "db-ops", "-ops", "abc", "axxbyyc",
        ] {
            assert!(p.allows(yes), "{yes}");
        }
        for no in ["general2", "generalx", "tea", "ops", "ab", "acb", "random"] {
            assert!(!p.allows(no), "{no}");
        }
    }

    #[test]
    fn only_room_characters_and_stars() {
        assert!(RoomPatterns::parse(&["team *".to_owned()]).is_err());
        assert!(RoomPatterns::parse(&[String::new()]).is_err());
        assert!(RoomPatterns::parse(&vec!["a".to_owned(); 101]).is_err());
        assert!(patterns(&["*"]).allows("anything"));
    }

    #[test]
    fn a_grant_without_rooms_allows_every_room() {
        let everything = Grant::default();
        let some = Grant {
            rooms: Some(patterns(&["team-*"])),
            expires_at: None,
        };
        let room = RoomName::parse("random").unwrap_or_else(|e| panic!("{e:?}"));
        assert!(everything.ensure_room(&room).is_ok());
        assert!(some.ensure_room(&room).is_err());
        assert!(some.allows("team-a") && !some.allows("random"));
    }
}
