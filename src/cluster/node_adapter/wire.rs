//! Reading and writing the trees Node's adapter exchanges: what can go wrong, and the small
//! steps every message is taken apart with. Nothing here trusts a peer: a message of the
//! wrong shape is an error, never a panic.

use rmpv::Value;

/// Why a message from another node cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("msgpack: {0}")]
    Msgpack(#[from] rmpv::decode::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("expected {0}")]
    Shape(&'static str),
}

/// The tree of a message: JSON text when it starts with `{`, else msgpack, as Node decides.
pub fn read(bytes: &[u8]) -> Result<Value, WireError> {
    if bytes.first() == Some(&b'{') {
        Ok(super::json::parse(bytes)?)
    } else {
        Ok(rmpv::decode::read_value(&mut &bytes[..])?)
    }
}

/// The msgpack bytes of a tree (notepack.io's choice of the shortest form, as rmp makes it).
pub fn msgpack(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, value);
    out
}

pub fn array(value: Value, what: &'static str) -> Result<Vec<Value>, WireError> {
    match value {
        Value::Array(items) => Ok(items),
        _ => Err(WireError::Shape(what)),
    }
}

pub fn map(value: Value, what: &'static str) -> Result<Vec<(Value, Value)>, WireError> {
    match value {
        Value::Map(pairs) => Ok(pairs),
        _ => Err(WireError::Shape(what)),
    }
}

/// Takes the value of `name` out of a map's pairs.
pub fn field(pairs: &mut Vec<(Value, Value)>, name: &str) -> Option<Value> {
    let at = pairs.iter().position(|(k, _)| k.as_str() == Some(name))?;
    Some(pairs.swap_remove(at).1)
}

pub fn text(value: Value, what: &'static str) -> Result<String, WireError> {
    match value {
        Value::String(s) => s.into_str().ok_or(WireError::Shape(what)),
        _ => Err(WireError::Shape(what)),
    }
}

/// A list of names; Node turns a number used as a room into the same number, so numbers are
/// read as their text.
pub fn string_list(value: Value, what: &'static str) -> Result<Vec<String>, WireError> {
    array(value, what)?
        .into_iter()
        .map(|v| match v {
            Value::Integer(i) => Ok(i.to_string()),
            other => text(other, what),
        })
        .collect()
}
