//! Property tests over everything that reads client input: whatever arrives, each parser
//! answers with a value or one of the protocol's errors, and never panics. (The network fuzzer
//! in js-client-tests/test/fuzz.test.js drives the whole server the same way.)
//!
//! Longer run: PROPTEST_CASES=100000 cargo test --release --test parsing
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chatoxide::chat::{
    ClientId, ErrorCode, HistoryQuery, MessageId, MessageText, RoomName, RoomPatterns, TextLimit,
    UserId, UserName,
};
use chatoxide::identity::Credentials;
use proptest::prelude::*;
use serde_json::Value;

/// Any JSON value, nested a few levels.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::hash_map(any::<String>(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn is_input_error(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::BadRequest | ErrorCode::TooLarge | ErrorCode::Forbidden
    )
}

proptest! {
    #[test]
    fn names_and_ids(raw in any::<String>()) {
        for code in [
            RoomName::parse(&raw).err().map(|e| e.code),
            UserName::parse(&raw).err().map(|e| e.code),
            UserId::parse(&raw).err().map(|e| e.code),
            ClientId::parse(&raw).err().map(|e| e.code),
            MessageId::parse(&raw).err().map(|e| e.code),
        ]
        .into_iter()
        .flatten()
        {
            prop_assert!(is_input_error(code), "{code:?} for {raw:?}");
        }
    }

    #[test]
    fn texts(raw in any::<String>(), limit in 1usize..5000) {
        match MessageText::parse(&raw, TextLimit(limit)) {
            Ok(text) => prop_assert!(text.as_str().chars().count() <= limit),
            Err(e) => prop_assert!(is_input_error(e.code)),
        }
    }

    #[test]
    fn history_queries(
        before in proptest::option::of(any::<String>()),
        after in proptest::option::of("[0-9a-f]{32}"),
        limit in proptest::option::of(any::<i64>()),
    ) {
        match HistoryQuery::parse(before.as_deref(), after.as_deref(), limit) {
            Ok(_) => {}
            Err(e) => prop_assert!(is_input_error(e.code)),
        }
    }

    #[test]
    fn room_patterns(patterns in prop::collection::vec(any::<String>(), 0..120), room in any::<String>()) {
        if let Ok(p) = RoomPatterns::parse(&patterns) {
            let _ = p.allows(&room);
        }
    }

    #[test]
    fn handshakes(auth in json(), query in proptest::option::of(any::<String>())) {
        if let Err(e) = Credentials::from_handshake(&auth, query.as_deref()) {
            prop_assert!(is_input_error(e.code));
        }
    }
}
