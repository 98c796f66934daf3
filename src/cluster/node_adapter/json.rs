//! JSON text of msgpack values, as Node writes it, and back.
//!
//! Node's adapter sends most requests as `JSON.stringify` text and the rest as msgpack; both
//! are read here into one tree, [`rmpv::Value`], whose maps keep their keys in order. Binary
//! attachments appear in the tree as `Binary` nodes; in a Socket.IO packet's JSON text they are
//! `{"_placeholder":true,"num":N}` objects numbered depth first, in order, as socket.io-parser
//! numbers them, with the bytes beside the text.

use bytes::Bytes;
use rmpv::Value;
use std::collections::VecDeque;
use std::fmt::Write;

/// Reads JSON text into a tree (numbers become integers where they are whole).
pub fn parse(text: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice(text)
}

/// `JSON.stringify` of a tree; binary nodes are written as Node writes a `Buffer`.
pub fn stringify(value: &Value) -> String {
    let mut out = String::new();
    write(&mut out, value, &mut |out, bytes| {
        let data: Vec<String> = bytes.iter().map(u8::to_string).collect();
        let _ = write!(out, r#"{{"type":"Buffer","data":[{}]}}"#, data.join(","));
    });
    out
}

/// The JSON text of a packet's data with its attachments taken out, in placeholder order.
pub fn deconstruct(value: &Value) -> (String, VecDeque<Bytes>) {
    let mut out = String::new();
    let mut bins = VecDeque::new();
    write(&mut out, value, &mut |out, bytes| {
        let _ = write!(out, r#"{{"_placeholder":true,"num":{}}}"#, bins.len());
        bins.push_back(Bytes::copy_from_slice(bytes));
    });
    (out, bins)
}

/// A packet's data from its JSON text, with each placeholder replaced by its attachment. A
/// placeholder that names no attachment stays as it is.
pub fn reconstruct(text: &str, bins: &VecDeque<Bytes>) -> Result<Value, serde_json::Error> {
    let mut value = parse(text.as_bytes())?;
    if !bins.is_empty() {
        fill(&mut value, bins);
    }
    Ok(value)
}

fn fill(value: &mut Value, bins: &VecDeque<Bytes>) {
    if let Some(bytes) = placeholder(value).and_then(|n| bins.get(n)) {
        *value = Value::Binary(bytes.to_vec());
        return;
    }
    match value {
        Value::Array(items) => items.iter_mut().for_each(|v| fill(v, bins)),
        Value::Map(pairs) => pairs.iter_mut().for_each(|(_, v)| fill(v, bins)),
        _ => {}
    }
}

/// The attachment number of a `{"_placeholder":true,"num":N}` object.
fn placeholder(value: &Value) -> Option<usize> {
    let Value::Map(pairs) = value else {
        return None;
    };
    if pairs.len() != 2 {
        return None;
    }
    let field = |name: &str| pairs.iter().find(|(k, _)| k.as_str() == Some(name));
    let marked = field("_placeholder").is_some_and(|(_, v)| v.as_bool() == Some(true));
    let num = field("num").and_then(|(_, v)| v.as_u64())?;
    marked.then(|| usize::try_from(num).ok()).flatten()
}

fn write(out: &mut String, value: &Value, binary: &mut dyn FnMut(&mut String, &[u8])) {
    match value {
        Value::Nil | Value::Ext(..) => out.push_str("null"),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Value::F32(f) => number(out, f64::from(*f)),
        Value::F64(f) => number(out, *f),
        Value::String(s) => string(out, &String::from_utf8_lossy(s.as_bytes())),
        Value::Binary(bytes) => binary(out, bytes),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(out, item, binary);
            }
            out.push(']');
        }
        Value::Map(pairs) => {
            out.push('{');
            for (i, (key, item)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match key {
                    Value::String(s) => string(out, &String::from_utf8_lossy(s.as_bytes())),
                    other => string(out, &stringify(other)),
                }
                out.push(':');
                write(out, item, binary);
            }
            out.push('}');
        }
    }
}

/// A number as `JSON.stringify` writes it: whole floats without a fraction, no NaN or infinity.
fn number(out: &mut String, f: f64) {
    if !f.is_finite() {
        out.push_str("null");
    } else if f.fract() == 0.0 && f.abs() < 1e15 {
        let _ = write!(out, "{}", f as i64);
    } else {
        let _ = write!(out, "{f}");
    }
}

fn string(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_leave_and_return_in_placeholder_order() {
        let data = Value::Array(vec![
            "bin".into(),
            Value::Binary(vec![1, 2, 3]),
            Value::Map(vec![
                ("a".into(), Value::Binary(vec![4])),
                ("b".into(), Value::Array(vec![Value::Binary(vec![5, 6])])),
            ]),
        ]);
        let (text, bins) = deconstruct(&data);
        assert_eq!(
            text,
            r#"["bin",{"_placeholder":true,"num":0},{"a":{"_placeholder":true,"num":1},"b":[{"_placeholder":true,"num":2}]}]"#
        );
        assert_eq!(bins, [vec![1, 2, 3], vec![4], vec![5, 6]]);
        assert_eq!(reconstruct(&text, &bins).ok(), Some(data));
    }

    #[test]
    fn text_is_written_as_json_stringify_writes_it() {
        let value = parse(br#"{"z":1,"a":[3.5,-2,null,true,"\u00e9\n"],"n":1e400}"#);
        assert!(value.is_err(), "serde_json refuses 1e400");
        let value = parse(r#"{"z":1,"a":[3.5,-2,null,true,"é\n"],"f":2.0}"#.as_bytes()).ok();
        assert_eq!(
            value.map(|v| stringify(&v)).as_deref(),
            Some(r#"{"z":1,"a":[3.5,-2,null,true,"é\n"],"f":2}"#)
        );
        assert_eq!(
            stringify(&Value::Binary(vec![1, 2])),
            r#"{"type":"Buffer","data":[1,2]}"#
        );
        assert_eq!(stringify(&Value::F64(f64::NAN)), "null");
    }

    #[test]
    fn a_placeholder_without_its_attachment_stays() {
        let text = r#"[{"_placeholder":true,"num":3}]"#;
        let value = reconstruct(text, &VecDeque::from([Bytes::from_static(&[1])]));
        assert_eq!(value.map(|v| stringify(&v)).ok().as_deref(), Some(text));
    }
}
