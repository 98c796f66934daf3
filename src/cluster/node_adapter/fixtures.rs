//! Byte fixtures recorded from the real `@socket.io/redis-adapter` 8.3.0 (socket.io 4.8,
//! node-redis 4, notepack.io 3): `node js-client-tests/fixtures/node-adapter.mjs` (Redis on
//! 127.0.0.1:6379) starts two Node servers on key `fx`, a client on each (the second in room
//! `r1`), listens to `fx*` and prints every message as channel and hex; each constant is one
//! message, named after the call that published it. Ids (`uid` IGFMhh, socket ids, request ids)
//! are the ones that run drew.
//!
//! Each test decodes Node's bytes, checks what they say, and encodes the same value again: the
//! result must be Node's bytes exactly.

use super::envelope::{Envelope, Flags, NodePacket, Opts};
use super::json;
use super::request::{FetchedSocket, Incoming, Request, Response, Target};
use rmpv::Value;
use socketioxide_core::adapter::{BroadcastFlags, BroadcastOptions};
use socketioxide_core::packet::PacketData;
use socketioxide_core::{Sid, Value as SioValue};
use std::str::FromStr;

/// `emit-all`, on `fx#/#`
const EMIT_ALL: &str = concat!(
    "93a64947464d686883a47479706502a46461746196a2657601a374776f81a57468726565cb400c0000000000",
    "00c0c3a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677380",
);
/// `to-room`, on `fx#/#r1#`
const TO_ROOM: &str = concat!(
    "93a64947464d686883a47479706502a46461746192a26576a178a36e7370a12f83a5726f6f6d7391a27231a6",
    "65786365707490a5666c61677380",
);
/// `rooms-except`, on `fx#/#`
const ROOMS_EXCEPT: &str = concat!(
    "93a64947464d686883a47479706502a46461746192a2657690a36e7370a12f83a5726f6f6d7392a27231a272",
    "32a665786365707491a27233a5666c61677380",
);
/// `volatile`, on `fx#/#`
const VOLATILE: &str = concat!(
    "93a64947464d686883a47479706502a46461746192a26576ffa36e7370a12f83a5726f6f6d7390a665786365",
    "707490a5666c61677381a8766f6c6174696c65c3",
);
/// `compress`, on `fx#/#`
const COMPRESS: &str = concat!(
    "93a64947464d686883a47479706502a46461746192a26576cd012ca36e7370a12f83a5726f6f6d7390a66578",
    "6365707490a5666c61677381a8636f6d7072657373c2",
);
/// `binary`, on `fx#/#`
const BINARY: &str = concat!(
    "93a64947464d686883a47479706502a46461746193a362696ec40301020382a161c40104a16291c4020506a3",
    "6e7370a12f83a5726f6f6d7390a665786365707490a5666c61677380",
);
/// `socket-broadcast`, on `fx#/#`
const SOCKET_BROADCAST: &str = concat!(
    "93a64947464d686883a47479706502a46461746192a26576ab66726f6d2d736f636b6574a36e7370a12f83a5",
    "726f6f6d7390a665786365707491b44d3233443166684e39556f6b6d73394a41414142a5666c61677380",
);
/// `socket-to-room`, on `fx#/#r1#`
const SOCKET_TO_ROOM: &str = concat!(
    "93a64947464d686883a47479706502a46461746192a26576ce00010000a36e7370a12f83a5726f6f6d7391a2",
    "7231a665786365707491b44d3233443166684e39556f6b6d73394a41414142a5666c61677380",
);
/// `to-sid`, on `fx#/#_PbBnpdEF83dxTPgAAAA#`
const TO_SID: &str = concat!(
    "93a64947464d686883a47479706502a46461746192a26576a86a7573742d796f75a36e7370a12f83a5726f6f",
    "6d7391b45f5062426e706445463833647854506741414141a665786365707490a5666c61677380",
);
/// `ack`, on `fx-request#/#`
const ACK_REQUEST: &str = concat!(
    "85a3756964a64947464d6868a9726571756573744964a64552616b507aa47479706507a67061636b657483a4",
    "7479706502a46461746192a361736b01a36e7370a12fa46f70747383a5726f6f6d7390a665786365707490a5",
    "666c61677381a774696d656f7574cd03e8",
);
/// `ack`, on `fx-response#/#`
const ACK_COUNT: &str = concat!(
    "7b2274797065223a382c22726571756573744964223a224552616b507a222c22636c69656e74436f756e7422",
    "3a317d",
);
/// `ack`, on `fx-response#/#`
const ACK_REPLY: &str = concat!(
    "83a47479706509a9726571756573744964a64552616b507aa67061636b657482a466726f6da162a362696ec4",
    "0109",
);
/// `ack-to-room`, on `fx-request#/#`
const ACK_TO_ROOM_REQUEST: &str = concat!(
    "85a3756964a64947464d6868a9726571756573744964a66a334b577242a47479706507a67061636b657483a4",
    "7479706502a46461746192a361736b02a36e7370a12fa46f70747383a5726f6f6d7391a27231a66578636570",
    "7490a5666c61677381a774696d656f7574cd03e8",
);
/// `ack-to-room`, on `fx-response#/#`
const ACK_TO_ROOM_COUNT: &str = concat!(
    "7b2274797065223a382c22726571756573744964223a226a334b577242222c22636c69656e74436f756e7422",
    "3a317d",
);
/// `ack-to-room`, on `fx-response#/#`
const ACK_TO_ROOM_REPLY: &str =
    "83a47479706509a9726571756573744964a66a334b577242a67061636b6574a4706f6e67";
/// `ack-empty`, on `fx-request#/#`
const ACK_EMPTY_REQUEST: &str = concat!(
    "85a3756964a64947464d6868a9726571756573744964a64265386c354ea47479706507a67061636b657483a4",
    "7479706502a46461746192a361736b03a36e7370a12fa46f70747383a5726f6f6d7391a27231a66578636570",
    "7490a5666c61677381a774696d656f7574cd03e8",
);
/// `ack-empty`, on `fx-response#/#`
const ACK_EMPTY_COUNT: &str = concat!(
    "7b2274797065223a382c22726571756573744964223a224265386c354e222c22636c69656e74436f756e7422",
    "3a317d",
);
/// `ack-empty`, on `fx-response#/#`
const ACK_EMPTY_REPLY: &str = "82a47479706509a9726571756573744964a64265386c354e";
/// `fetch`, on `fx-request#/#`
const FETCH_REQUEST: &str = concat!(
    "7b22756964223a224947464d6868222c22726571756573744964223a22555766495155222c2274797065223a",
    "352c226f707473223a7b22726f6f6d73223a5b227231225d2c22657863657074223a5b227230225d7d7d",
);
/// `fetch`, on `fx-response#/#`
const FETCH_ANSWER: &str = concat!(
    "7b22726571756573744964223a22555766495155222c22736f636b657473223a5b7b226964223a225f506242",
    "6e706445463833647854506741414141222c2268616e647368616b65223a7b2268656164657273223a7b2273",
    "65632d776562736f636b65742d76657273696f6e223a223133222c227365632d776562736f636b65742d6b65",
    "79223a224f657970684e7a6753747667524264384338325469413d3d222c22636f6e6e656374696f6e223a22",
    "55706772616465222c2275706772616465223a22776562736f636b6574222c227365632d776562736f636b65",
    "742d657874656e73696f6e73223a227065726d6573736167652d6465666c6174653b20636c69656e745f6d61",
    "785f77696e646f775f62697473222c22686f7374223a226c6f63616c686f73743a3336343935227d2c227469",
    "6d65223a2253756e204e6f7620323920323032362031383a31353a323220474d542b303030302028436f6f72",
    "64696e6174656420556e6976657273616c2054696d6529222c2261646472657373223a223a3a666666663a31",
    "32372e302e302e31222c2278646f6d61696e223a66616c73652c22736563757265223a66616c73652c226973",
    "73756564223a313739353937363132323731312c2275726c223a222f736f636b65742e696f2f3f45494f3d34",
    "267472616e73706f72743d776562736f636b6574222c227175657279223a7b2245494f223a2234222c227472",
    "616e73706f7274223a22776562736f636b6574227d2c2261757468223a7b7d7d2c22726f6f6d73223a5b225f",
    "5062426e706445463833647854506741414141222c227231225d2c2264617461223a7b7d7d5d7d",
);
/// `all-rooms`, on `fx-request#/#`
const ALL_ROOMS_REQUEST: &str = concat!(
    "7b22756964223a224947464d6868222c22726571756573744964223a22376a78524562222c2274797065223a",
    "317d",
);
/// `all-rooms`, on `fx-response#/#`
const ALL_ROOMS_ANSWER: &str = concat!(
    "7b22726571756573744964223a22376a78524562222c22726f6f6d73223a5b225f5062426e70644546383364",
    "7854506741414141222c227231225d7d",
);
/// `join`, on `fx-request#/#`
const JOIN: &str = concat!(
    "7b22756964223a224947464d6868222c2274797065223a322c226f707473223a7b22726f6f6d73223a5b2272",
    "31225d2c22657863657074223a5b5d7d2c22726f6f6d73223a5b227239222c227238225d7d",
);
/// `leave`, on `fx-request#/#`
const LEAVE: &str = concat!(
    "7b22756964223a224947464d6868222c2274797065223a332c226f707473223a7b22726f6f6d73223a5b2272",
    "31225d2c22657863657074223a5b227237225d7d2c22726f6f6d73223a5b227239225d7d",
);
/// `server-side-emit`, on `fx-request#/#`
const SERVER_SIDE_EMIT: &str = concat!(
    "7b22756964223a224947464d6868222c2274797065223a362c2264617461223a5b2268656c6c6f222c312c22",
    "61225d7d",
);
/// `server-side-emit-ack`, on `fx-request#/#`
const SERVER_SIDE_EMIT_ACK_REQUEST: &str = concat!(
    "7b22756964223a224947464d6868222c22726571756573744964223a2278756e786c62222c2274797065223a",
    "362c2264617461223a5b2268656c6c6f222c325d7d",
);
/// `server-side-emit-ack`, on `fx-response#/#`
const SERVER_SIDE_EMIT_ACK_ANSWER: &str = concat!(
    "7b2274797065223a362c22726571756573744964223a2278756e786c62222c2264617461223a226869206261",
    "636b227d",
);
/// `disconnect`, on `fx-request#/#`
const DISCONNECT: &str = concat!(
    "7b22756964223a224947464d6868222c2274797065223a342c226f707473223a7b22726f6f6d73223a5b2272",
    "31225d2c22657863657074223a5b5d7d2c22636c6f7365223a747275657d",
);
/// `disconnect-keep`, on `fx-request#/#`
const DISCONNECT_KEEP: &str = concat!(
    "7b22756964223a224947464d6868222c2274797065223a342c226f707473223a7b22726f6f6d73223a5b5d2c",
    "22657863657074223a5b5d7d2c22636c6f7365223a66616c73657d",
);

const UID: &str = "IGFMhh";
/// The socket of the second server's client, in room `r1`.
const SID_B: &str = "_PbBnpdEF83dxTPgAAAA";
/// The socket of the first server's client.
const SID_A: &str = "M23D1fhN9Uokms9JAAAB";

fn bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn envelope(hex: &str) -> Envelope {
    let decoded = Envelope::decode(&bytes(hex));
    assert!(decoded.is_ok(), "{decoded:?}");
    let envelope = decoded.unwrap_or_else(|_| unreachable!());
    assert_eq!(envelope.encode(), bytes(hex), "re-encoded envelope");
    assert_eq!(envelope.uid, UID);
    assert_eq!(envelope.packet.nsp, "/");
    envelope
}

fn request(hex: &str) -> Request {
    let decoded = Incoming::decode(&bytes(hex));
    assert!(decoded.is_ok(), "{decoded:?}");
    let Incoming { uid, request } = decoded.unwrap_or_else(|_| unreachable!());
    assert_eq!(uid.as_deref(), Some(UID));
    assert_eq!(request.encode(UID), bytes(hex), "re-encoded request");
    request
}

fn response(hex: &str) -> Response {
    let decoded = Response::decode(&bytes(hex));
    assert!(decoded.is_ok(), "{decoded:?}");
    let response = decoded.unwrap_or_else(|_| unreachable!());
    assert_eq!(response.encode(), bytes(hex), "re-encoded response");
    response
}

fn text(packet: &NodePacket) -> String {
    match packet.to_packet().inner {
        PacketData::Event(SioValue::Str(text, None), None) => text.to_string(),
        other => format!("unexpected {other:?}"),
    }
}

fn opts(rooms: &[&str], except: &[&str], flags: Flags) -> Opts {
    let owned = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
    Opts {
        rooms: owned(rooms),
        except: owned(except),
        flags,
    }
}

#[test]
fn a_broadcast_to_everyone() {
    let e = envelope(EMIT_ALL);
    assert_eq!(text(&e.packet), r#"["ev",1,"two",{"three":3.5},null,true]"#);
    assert_eq!(e.opts, Opts::default());
    let local = e.opts.to_broadcast_options();
    assert!(local.has_flag(BroadcastFlags::Broadcast) && local.rooms.is_empty());
}

#[test]
fn a_broadcast_to_one_room_and_to_rooms_except_one() {
    let e = envelope(TO_ROOM);
    assert_eq!(
        (text(&e.packet), e.opts),
        (r#"["ev","x"]"#.into(), opts(&["r1"], &[], Flags::default()))
    );
    let e = envelope(ROOMS_EXCEPT);
    assert_eq!(e.opts, opts(&["r1", "r2"], &["r3"], Flags::default()));
    let local = e.opts.to_broadcast_options();
    assert!(!local.has_flag(BroadcastFlags::Broadcast));
    assert_eq!((local.rooms.len(), local.except.len()), (2, 1));
}

#[test]
fn flags_volatile_and_compress() {
    let e = envelope(VOLATILE);
    assert_eq!(text(&e.packet), r#"["ev",-1]"#);
    assert!(e.opts.flags.volatile);
    assert!(
        e.opts
            .to_broadcast_options()
            .has_flag(BroadcastFlags::Volatile)
    );
    let e = envelope(COMPRESS);
    assert_eq!(
        (text(&e.packet), e.opts.flags.compress),
        (r#"["ev",300]"#.into(), Some(false))
    );
}

#[test]
fn binary_arguments_become_attachments_and_back() {
    let e = envelope(BINARY);
    let packet = e.packet.to_packet();
    let PacketData::BinaryEvent(SioValue::Str(text, Some(bins)), None) = &packet.inner else {
        unreachable!("{packet:?}")
    };
    assert_eq!(
        text.as_str(),
        r#"["bin",{"_placeholder":true,"num":0},{"a":{"_placeholder":true,"num":1},"b":[{"_placeholder":true,"num":2}]}]"#
    );
    assert_eq!(bins, &[vec![1, 2, 3], vec![4], vec![5, 6]]);
    assert_eq!(NodePacket::from_packet(&packet), Some(e.packet));
}

#[test]
fn a_socket_s_broadcast_excepts_its_id_and_an_id_is_a_room() {
    let e = envelope(SOCKET_BROADCAST);
    assert_eq!(e.opts, opts(&[], &[SID_A], Flags::default()));
    let e = envelope(SOCKET_TO_ROOM);
    assert_eq!(
        (text(&e.packet), e.opts),
        (
            r#"["ev",65536]"#.into(),
            opts(&["r1"], &[SID_A], Flags::default())
        )
    );
    let e = envelope(TO_SID);
    assert_eq!(e.opts, opts(&[SID_B], &[], Flags::default()));
}

#[test]
fn a_socketioxide_broadcast_is_written_as_node_writes_it() {
    // `socket.broadcast.emit` on a chatoxide socket: everyone but the sender.
    let sid = Sid::from_str("AAAAAAAAAAAAAAAA").unwrap_or_default();
    let mut sender = BroadcastOptions::new(sid);
    sender.add_flag(BroadcastFlags::Broadcast);
    assert_eq!(
        Opts::from_broadcast_options(&sender),
        Some(opts(&[], &[&sid.to_string()], Flags::default()))
    );
    // `io.to(room).volatile()`.
    let mut room = BroadcastOptions::default();
    room.rooms.push("r1".into());
    room.add_flag(BroadcastFlags::Volatile);
    let volatile = Flags {
        volatile: true,
        ..Flags::default()
    };
    assert_eq!(
        Opts::from_broadcast_options(&room),
        Some(opts(&["r1"], &[], volatile))
    );
    // One remote socket: the room of its id. Nobody at all: nothing is published.
    assert_eq!(
        Opts::from_broadcast_options(&BroadcastOptions::new(sid)),
        Some(opts(&[&sid.to_string()], &[], Flags::default()))
    );
    assert_eq!(
        Opts::from_broadcast_options(&BroadcastOptions::default()),
        None
    );
}

#[test]
fn a_broadcast_with_acks_its_client_count_and_its_acks() {
    let Request::Broadcast {
        request_id,
        packet,
        opts: o,
    } = request(ACK_REQUEST)
    else {
        unreachable!()
    };
    assert_eq!(
        (request_id.as_str(), text(&packet)),
        ("ERakPz", r#"["ask",1]"#.into())
    );
    assert_eq!(
        o,
        opts(
            &[],
            &[],
            Flags {
                timeout: Some(1000),
                ..Flags::default()
            }
        )
    );
    assert_eq!(
        response(ACK_COUNT),
        Response::ClientCount {
            request_id: request_id.clone(),
            client_count: 1
        }
    );
    let Response::Ack {
        packet: Some(ack), ..
    } = response(ACK_REPLY)
    else {
        unreachable!()
    };
    assert_eq!(
        json::deconstruct(&ack).0,
        r#"{"from":"b","bin":{"_placeholder":true,"num":0}}"#
    );

    let Request::Broadcast { opts: o, .. } = request(ACK_TO_ROOM_REQUEST) else {
        unreachable!()
    };
    assert_eq!(o.rooms, ["r1"]);
    assert!(matches!(
        response(ACK_TO_ROOM_COUNT),
        Response::ClientCount {
            client_count: 1,
            ..
        }
    ));
    assert!(matches!(
        response(ACK_TO_ROOM_REPLY),
        Response::Ack {
            packet: Some(Value::String(_)),
            ..
        }
    ));
    request(ACK_EMPTY_REQUEST);
    response(ACK_EMPTY_COUNT);
    // `callback()` with no argument: Node leaves `packet` out.
    assert!(matches!(
        response(ACK_EMPTY_REPLY),
        Response::Ack { packet: None, .. }
    ));
}

#[test]
fn fetch_sockets_and_its_answer() {
    let Request::Fetch {
        request_id,
        opts: o,
    } = request(FETCH_REQUEST)
    else {
        unreachable!()
    };
    assert_eq!(o, opts(&["r1"], &["r0"], Flags::default()));
    let Response::Fetched {
        request_id: answered,
        sockets,
    } = response(FETCH_ANSWER)
    else {
        unreachable!()
    };
    assert_eq!(answered, request_id);
    let [
        FetchedSocket {
            id,
            handshake,
            rooms,
            data,
        },
    ] = sockets.as_slice()
    else {
        unreachable!("{sockets:?}")
    };
    assert_eq!(
        (id.as_str(), rooms.as_slice()),
        (SID_B, &[SID_B.to_owned(), "r1".to_owned()][..])
    );
    assert_eq!(data, &Value::Map(Vec::new()));
    let fields: Vec<&str> = match handshake {
        Value::Map(pairs) => pairs.iter().filter_map(|(k, _)| k.as_str()).collect(),
        _ => Vec::new(),
    };
    assert_eq!(
        fields,
        [
            "headers", "time", "address", "xdomain", "secure", "issued", "url", "query", "auth"
        ]
    );
}

#[test]
fn all_rooms_and_its_answer() {
    let Request::AllRooms { request_id } = request(ALL_ROOMS_REQUEST) else {
        unreachable!()
    };
    let rooms = vec![SID_B.to_owned(), "r1".to_owned()];
    assert_eq!(
        response(ALL_ROOMS_ANSWER),
        Response::Rooms { request_id, rooms }
    );
}

#[test]
fn sockets_join_leave_and_disconnect() {
    let rooms = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        request(JOIN),
        Request::Join {
            target: Target::Select(opts(&["r1"], &[], Flags::default())),
            rooms: rooms(&["r9", "r8"])
        }
    );
    assert_eq!(
        request(LEAVE),
        Request::Leave {
            target: Target::Select(opts(&["r1"], &["r7"], Flags::default())),
            rooms: rooms(&["r9"])
        }
    );
    assert_eq!(
        request(DISCONNECT),
        Request::Disconnect {
            target: Target::Select(opts(&["r1"], &[], Flags::default())),
            close: true
        }
    );
    assert_eq!(
        request(DISCONNECT_KEEP),
        Request::Disconnect {
            target: Target::Select(Opts::default()),
            close: false
        }
    );
}

#[test]
fn server_side_emits() {
    let Request::ServerSideEmit {
        request_id: None,
        data,
    } = request(SERVER_SIDE_EMIT)
    else {
        unreachable!()
    };
    assert_eq!(json::stringify(&data), r#"["hello",1,"a"]"#);
    let Request::ServerSideEmit {
        request_id: Some(id),
        ..
    } = request(SERVER_SIDE_EMIT_ACK_REQUEST)
    else {
        unreachable!()
    };
    let Response::ServerSideEmit { request_id, data } = response(SERVER_SIDE_EMIT_ACK_ANSWER)
    else {
        unreachable!()
    };
    assert_eq!(
        (request_id, json::stringify(&data)),
        (id, r#""hi back""#.into())
    );
}

#[test]
fn the_older_one_socket_requests_are_read() {
    let join = br#"{"uid":"u","requestId":"q","type":2,"sid":"s","room":"r"}"#;
    let read = Incoming::decode(join).map(|i| i.request);
    let target = Target::Socket {
        request_id: "q".into(),
        sid: "s".into(),
    };
    assert_eq!(
        read.ok(),
        Some(Request::Join {
            target,
            rooms: vec!["r".into()]
        })
    );
    assert_eq!(
        Response::decode(br#"{"requestId":"q"}"#).ok(),
        Some(Response::Done {
            request_id: "q".into()
        })
    );
}

#[test]
fn what_is_not_node_s_is_refused_without_panic() {
    for junk in [
        &b""[..],
        b"{",
        b"\x93\xa1u",
        b"\x93\xa1u\x80\x80",
        b"{\"type\":99}",
        b"\xc1",
        b"[1,2]",
    ] {
        assert!(Envelope::decode(junk).is_err());
        assert!(Incoming::decode(junk).is_err());
    }
    // An envelope whose packet is not an event.
    let connect = Value::Array(vec![
        "u".into(),
        Value::Map(vec![("type".into(), 0.into())]),
        Value::Map(vec![]),
    ]);
    assert!(Envelope::decode(&super::wire::msgpack(&connect)).is_err());
}
