//! The arguments of an event as they came, for handlers that pass them on (relay rules, the
//! admin UI's `emit`) rather than read them as a command.

use crate::chat::ChatError;
use serde::ser::SerializeTuple;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Every argument of an event as it came, JSON and binary attachments alike, so that a relay
/// passes on exactly what the frontend sent (Node's `(...args)`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Args(Vec<rmpv::Value>);

impl Serialize for Args {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A tuple is what Socket.IO's serializer sends as separate arguments.
        let mut tuple = serializer.serialize_tuple(self.0.len())?;
        for arg in &self.0 {
            tuple.serialize_element(arg)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Every;
        impl<'de> serde::de::Visitor<'de> for Every {
            type Value = Args;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the arguments of an event")
            }
            fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<Args, S::Error> {
                let mut args = Vec::new();
                while let Some(arg) = seq.next_element()? {
                    args.push(arg);
                }
                Ok(Args(args))
            }
        }
        // Asked for as a tuple (of any length), so that Socket.IO's parser hands over every
        // argument rather than the first.
        deserializer.deserialize_tuple(usize::MAX, Every)
    }
}

impl Args {
    pub fn from_values(values: Vec<rmpv::Value>) -> Self {
        Self(values)
    }

    pub fn into_values(self) -> Vec<rmpv::Value> {
        self.0
    }

    /// The argument at `index`, if the event has that many.
    pub fn get(&self, index: usize) -> Option<&rmpv::Value> {
        self.0.get(index)
    }

    /// The first argument, when it is a string.
    pub fn first_str(&self) -> Option<&str> {
        self.0.first().and_then(rmpv::Value::as_str)
    }

    /// A string field of the first argument, when that is an object.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.field_of(0, name)
    }

    /// A string field of the argument at `index`, when that is an object.
    pub fn field_of(&self, index: usize, name: &str) -> Option<&str> {
        let rmpv::Value::Map(pairs) = self.0.get(index)? else {
            return None;
        };
        pairs
            .iter()
            .find(|(key, _)| key.as_str() == Some(name))
            .and_then(|(_, value)| value.as_str())
    }

    /// The text a rule stores: the argument at `index` itself, or a field of it.
    pub fn text(&self, index: usize, field: Option<&str>) -> Result<&str, ChatError> {
        match field {
            None => self
                .0
                .get(index)
                .and_then(rmpv::Value::as_str)
                .ok_or_else(|| {
                    ChatError::bad_request(format!(
                        "the event's argument {index} must be the text to store"
                    ))
                }),
            Some(field) => self.field_of(index, field).ok_or_else(|| {
                ChatError::bad_request(format!(
                    "the event's argument {index} must be an object with a text field '{field}'"
                ))
            }),
        }
    }
}
