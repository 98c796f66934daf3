// A network fuzzer: random and mutated Engine.IO / Socket.IO packets over WebSocket and HTTP
// long-polling, for a bounded time, at a running server. Afterwards the server must answer a
// normal client, and its memory must be back near where it started.
//
// Longer run:  FUZZ_SECONDS=300 FUZZ_SEED=42 node --test test/fuzz.test.js   (after cargo build)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { startServer, NO_RATE_LIMITS } from "../harness/server.js";
import { connectAs, ok, next, unique, closeAll } from "../harness/client.js";

/** Seconds per round and transport, two rounds. */
const SECONDS = Number(process.env.FUZZ_SECONDS ?? 4);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);

/** mulberry32: a small seeded PRNG, so a failing run can be replayed with its seed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = prng(SEED);
const pick = (xs) => xs[Math.floor(random() * xs.length)];
const int = (n) => Math.floor(random() * n);

// Valid packets of the protocol, to mutate.
const seeds = [
  '40{"username":"fuzz"}',
  "40",
  '40/admin,{"username":"fuzz"}',
  '42["join",{"room":"fuzz"}]',
  '421["message",{"room":"fuzz","text":"hi","client_id":"c1"}]',
  '422["history",{"room":"fuzz","before":"00000000000000010000000000000001","limit":5}]',
  '423["edit",{"message_id":"00000000000000010000000000000001","text":"x"}]',
  '424["typing",{"room":"fuzz","typing":true}]',
  '451-["message",{"room":"fuzz","text":{"_placeholder":true,"num":0}}]',
  '43["ack"]',
  "41",
  "2",
  "3",
  "5",
  "6",
  "1",
  '4{"a":[[[[[[[]]]]]]]}',
];
const junk = ['"', "[", "]", "{", "}", ",", ":", "-", "/", "#", "\u0000", "\uffff", "\ud800", "9", "0", "-1", "1e309", "null", "💥", "\u202e"];

function mutate(packet) {
  let s = packet;
  for (let i = 0, n = 1 + int(4); i < n; i++) {
    const at = int(s.length + 1);
    switch (int(5)) {
      case 0: s = s.slice(0, at) + pick(junk) + s.slice(at); break; // insert
      case 1: s = s.slice(0, at) + s.slice(at + 1 + int(5)); break; // delete
      case 2: s = s.slice(0, at) + pick(junk) + s.slice(at + 1); break; // replace
      case 3: s = s + s.slice(int(s.length)); break; // duplicate a tail
      default: s = pick(seeds).slice(0, int(20)) + s.slice(at); break; // splice two packets
    }
  }
  return s;
}

function fuzzPacket() {
  switch (int(4)) {
    case 0: return pick(seeds);
    case 1: return mutate(pick(seeds));
    case 2: return Array.from({ length: int(64) }, () => String.fromCharCode(int(0x3000))).join("");
    default: return Buffer.from(Array.from({ length: int(256) }, () => int(256)));
  }
}

let server;
// Rate limits off so that the packets reach the parsers (on, most sessions would be refused at
// the door); abandoned sessions are reaped after 1 s instead of 10.
before(
  async () =>
    (server = await startServer({ env: { ...NO_RATE_LIMITS, CHATOXIDE_CONNECT_TIMEOUT_MS: "1000" } })),
);
after(() => server.close());

async function fuzzWebSocket(until) {
  let sent = 0;
  while (Date.now() < until) {
    await new Promise((resolve) => {
      const ws = new WebSocket(`${server.url.replace("http", "ws")}/socket.io/?EIO=${pick(["4", "3", "9", "x"])}&transport=websocket`);
      const done = () => {
        ws.terminate();
        resolve();
      };
      ws.on("error", done);
      ws.on("close", done);
      ws.on("open", () => {
        for (let i = 0, n = 1 + int(30); i < n && ws.readyState === WebSocket.OPEN; i++) {
          ws.send(fuzzPacket());
          sent++;
        }
        setTimeout(done, int(20));
      });
    });
  }
  return sent;
}

async function fuzzPolling(until) {
  let sent = 0;
  while (Date.now() < until) {
    const open = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`).then((r) => r.text(), () => "");
    const sid = /"sid":"([^"]+)"/.exec(open)?.[1] ?? pick(["", "nope", "\u0000"]);
    for (let i = 0, n = 1 + int(10); i < n; i++) {
      const body = Array.from({ length: 1 + int(4) }, fuzzPacket)
        .map((p) => (typeof p === "string" ? p : p.toString("latin1")))
        .join(pick(["\x1e", "", "\x1e\x1e", ":"]));
      const query = pick([`EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`, `EIO=3&transport=polling&sid=${sid}`, `transport=polling`, `EIO=4&transport=polling&sid=${sid}&t=${mutate("x")}`]);
      const method = pick(["POST", "POST", "GET", "PUT"]);
      await fetch(`${server.url}/socket.io/?${query}`, {
        method,
        body: method === "GET" ? undefined : body,
        headers: { "content-type": pick(["text/plain;charset=UTF-8", "application/octet-stream", "application/json"]) },
        signal: AbortSignal.timeout(1000),
      }).then((r) => r.arrayBuffer(), () => undefined);
      sent++;
    }
  }
  return sent;
}

test(`fuzzing for 2 × ${SECONDS} s per transport (seed ${SEED}) leaves the server serving, its memory back near the start`, async () => {
  const room = unique("after-fuzz");
  // A healthy client the whole way through.
  const healthy = await connectAs(server, unique("healthy"));
  const buddy = await connectAs(server, unique("buddy"));
  try {
    await ok(healthy, "join", { room });
    await ok(buddy, "join", { room });
    // Two rounds: the first brings the allocator to its working size, the second must not
    // grow it much further (a leak grows with the traffic; a high-water mark does not).
    const round = async () => {
      const ws = await fuzzWebSocket(Date.now() + (SECONDS * 1000) / 2);
      const polling = await fuzzPolling(Date.now() + (SECONDS * 1000) / 2);
      console.log(`# fuzz seed ${SEED}: ${ws} WebSocket frames, ${polling} polling requests`);
      assert.ok(ws > 0 && polling > 0);
    };
    const settle = () => new Promise((r) => setTimeout(r, 1500));
    await round();
    await settle();
    const before = server.rssKiB();
    await round();
    await settle();

    assert.equal((await server.fetch("/healthz")).status, 200);
    const arrived = next(buddy, "message");
    const { message } = await ok(healthy, "message", { room, text: "still here" });
    assert.deepEqual(await arrived, message);
    const fresh = await connectAs(server, unique("fresh"), { transports: ["polling"] });
    await ok(fresh, "join", { room });
    fresh.close();

    const afterKiB = server.rssKiB();
    console.log(`# server RSS: ${before} KiB after the first round, ${afterKiB} KiB after the second`);
    assert.ok(afterKiB < before + 16 * 1024, `RSS grew from ${before} to ${afterKiB} KiB`);
  } finally {
    closeAll(healthy, buddy);
  }
});
