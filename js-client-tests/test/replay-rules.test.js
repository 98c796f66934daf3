// Relay rules that replay, with default settings: the Socket.IO tutorial's server as one rule
// (examples/socketio-tutorial/chatoxide.toml), over the wire with socket.io-client: to everyone
// with the stored id appended, an acknowledgement with no value (for a retry too, from a new
// connection), a replay after `auth.serverOffset`, failures answered truthfully; and the rule's
// parts in general terms on a namespace of their own.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { io } from "socket.io-client";
import { startServer } from "../harness/server.js";
import { createDatabase, holdWriteLock } from "../harness/database.js";
import { TUTORIAL_CONFIG, tutorialClient, send, receivedAll, stored, seqOf } from "../harness/replay.js";
import { unique, closeAll, eventually, WAIT_MS } from "../harness/client.js";
import jwt from "jsonwebtoken";

/** The offset of a client that has seen everything stored so far. */
async function latest(server) {
  return (await stored(server)).at(-1)?.[1] ?? 0;
}

describe("the tutorial's rule, default settings", () => {
  let server;
  before(async () => {
    server = await startServer({ args: ["--config", TUTORIAL_CONFIG] });
  });
  after(() => server.close());

  test("a message reaches everyone, the sender too, with its id; the ack has no value", async () => {
    const a = await tutorialClient(server, { serverOffset: await latest(server) });
    const b = await tutorialClient(server, { serverOffset: await latest(server), transports: ["polling"] });
    try {
      const before = (await stored(server)).length;
      const text = unique("hello");
      const ack = await send(a, text, `${a.id}-0`);
      assert.deepEqual(ack, [], "callback(): an acknowledgement without arguments");
      await receivedAll(a, 1);
      await receivedAll(b, 1);
      const [[sentText, id]] = a.received;
      assert.equal(sentText, text);
      assert.match(id, /^[0-9a-f]{32}$/);
      assert.deepEqual(b.received, a.received);
      const history = await stored(server);
      assert.equal(history.length, before + 1);
      assert.deepEqual(history.at(-1), [text, id]);
    } finally {
      closeAll(a, b);
    }
  });

  test("a retry with a stored key, from a new connection (a new guest), stores nothing and is acknowledged", async () => {
    const a = await tutorialClient(server);
    const watcher = await tutorialClient(server, { serverOffset: await latest(server) });
    try {
      const key = `${a.id}-0`;
      const text = unique("once");
      await send(a, text, key);
      await receivedAll(watcher, 1);
      a.close();
      // The page reconnects (a new socket id, a new guest name) and sends the same packet.
      const again = await tutorialClient(server, { serverOffset: watcher.received[0][1] });
      try {
        assert.deepEqual(await send(again, text, key), []);
        // The next message is the barrier: nothing was relayed before it.
        const next = unique("next");
        await send(again, next, `${again.id}-1`);
        await receivedAll(watcher, 2);
        assert.deepEqual(watcher.received.map(([t]) => t), [text, next]);
        assert.equal((await stored(server)).filter(([t]) => t === text).length, 1);
      } finally {
        again.close();
      }
    } finally {
      closeAll(a, watcher);
    }
  });

  test("a socket is sent what was stored after its offset, in order: from 0, an id, a number, nothing", async () => {
    const a = await tutorialClient(server);
    try {
      for (let i = 0; i < 3; i++) await send(a, unique(`m${i}`), `${a.id}-${i}`);
      const all = await stored(server);
      const room = all[0][1].slice(0, 16);
      // What a replay from `offset` sends, by the documented rules.
      const replayOf = (now, offset) => {
        if (offset === undefined || offset === 0 || offset === "0") return now;
        if (typeof offset === "number") return now.filter(([, id]) => seqOf(id) > offset);
        if (offset.slice(0, 16) !== room) return now;
        return now.filter(([, id]) => seqOf(id) > seqOf(offset));
      };
      const offsets = [
        0,
        undefined,
        "0",
        all.at(-3)[1],
        "latest",
        // A number is a sequence number of the room (a Node app's integer ids).
        seqOf(all.at(-2)[1]),
        // An id of another room says nothing of this one: everything.
        "00000000000003e70000000000000001",
      ];
      for (const given of offsets) {
        const now = await stored(server);
        const serverOffset = given === "latest" ? now.at(-1)[1] : given;
        const expected = replayOf(now, serverOffset);
        const c = await tutorialClient(server, { serverOffset });
        try {
          if (expected.length) await receivedAll(c, expected.length);
          // A barrier: a message sent now arrives after everything replayed.
          const mark = unique("mark");
          await send(a, mark, unique("k"));
          await eventually(() => c.received.some(([t]) => t === mark));
          assert.deepEqual(c.received.slice(0, -1), expected, `serverOffset ${serverOffset}`);
        } finally {
          c.close();
        }
      }
    } finally {
      a.close();
    }
  });

  test("an offset the server never gave is refused with the handshake", async () => {
    for (const serverOffset of ["not-an-offset", -1, 1.5, { id: 1 }]) {
      const socket = io(server.url, { auth: { serverOffset }, forceNew: true, reconnection: false });
      try {
        const err = await new Promise((resolve, reject) => {
          socket.once("connect", () => reject(new Error(`connected with ${JSON.stringify(serverOffset)}`)));
          socket.once("connect_error", resolve);
        });
        assert.equal(err.message, "bad_request");
      } finally {
        socket.close();
      }
    }
  });

  test("bad input is answered { ok: false, error }, not left to the client's retries", async () => {
    const a = await tutorialClient(server);
    try {
      assert.deepEqual((await send(a, 42, `${a.id}-0`))[0]?.error?.code, "bad_request");
      assert.deepEqual((await send(a, "", `${a.id}-1`))[0]?.error?.code, "bad_request");
      assert.deepEqual((await send(a, "x", { not: "a key" }))[0]?.error?.code, "bad_request");
      // A client that sends no key is served: nothing to recognise a retry by.
      assert.deepEqual(await send(a, unique("keyless")), []);
    } finally {
      a.close();
    }
  });
});

describe("the tutorial's rule when storage does not answer", () => {
  let server;
  let db;
  before(async () => {
    db = await createDatabase();
    server = await startServer({
      database: db,
      args: ["--config", TUTORIAL_CONFIG],
      env: { CHATOXIDE_WRITE_DEADLINE_MS: "1000", CHATOXIDE_COMMIT_TIMEOUT_MS: "300" },
    });
  });
  after(() => server.close());

  test("`unavailable` is not answered: the client's retries store the message once", async () => {
    // Retries every 1.5 s, more of them than the lock lasts.
    const a = await tutorialClient(server, { ackTimeout: 1500, retries: 20 });
    const watcher = await tutorialClient(server, { serverOffset: await latest(server) });
    const lock = await holdWriteLock(db);
    let released = false;
    try {
      const text = unique("patient");
      let acked = false;
      a.emit("chat message", text, `${a.id}-0`, () => {
        acked = true;
      });
      // Not answered while storage is locked: the writer gives up on it after 1.3 s at most,
      // and the client's retries keep coming.
      await new Promise((r) => setTimeout(r, 3500));
      assert.equal(acked, false, "acknowledged while nothing could be stored");
      await lock.release();
      released = true;
      await eventually(() => acked, WAIT_MS * 3, "the acknowledgement of a retry");
      await receivedAll(watcher, 1);
      await eventually(async () => (await stored(server)).filter(([t]) => t === text).length === 1);
      const later = unique("later");
      await send(a, later, `${a.id}-1`);
      await receivedAll(watcher, 2);
      assert.deepEqual(watcher.received.map(([t]) => t), [text, later], "stored once, relayed once");
    } finally {
      if (!released) await lock.release();
      closeAll(a, watcher);
    }
  });
});

describe("the tutorial's rule with send buffers smaller than a burst", () => {
  let server;
  before(async () => {
    // 16 packets per socket: a burst of 300 overflows every receiver many times over.
    server = await startServer({ args: ["--config", TUTORIAL_CONFIG], env: { CHATOXIDE_SOCKET_BUFFER: "16", CHATOXIDE_RATE_LIMITS: "false" } });
  });
  after(() => server.close());

  test("a socket whose buffer is full catches up from the store: every message once, in order, nobody cut", async () => {
    const sockets = [];
    try {
      for (let i = 0; i < 20; i++) sockets.push(await tutorialClient(server, { retries: 0 }));
      const disconnects = sockets.map(() => 0);
      sockets.forEach((s, i) => s.on("disconnect", () => (disconnects[i] += 1)));
      // Sent without acknowledgements: an answer due to a full buffer disconnects its client
      // (an answer must not vanish), and this test is about what the feed does with them.
      for (let i = 0; i < 300; i++) {
        const from = sockets[i % sockets.length];
        from.emit("chat message", `burst-${i}`, `${from.id}-${i}`);
      }
      let history = [];
      await eventually(async () => (history = await stored(server)).length === 300, undefined, "300 stored");
      for (const s of sockets) assert.deepEqual(await receivedAll(s, 300), history);
      assert.deepEqual(disconnects, sockets.map(() => 0), "nobody was disconnected");
      const scraped = await (await server.fetch("/metrics")).text();
      const caughtUp = Number(/^chatoxide_feed_catch_ups_total (\d+)/m.exec(scraped)?.[1]);
      assert.ok(caughtUp > 0, "the full buffers were caught up from the store");
    } finally {
      closeAll(...sockets);
    }
  });
});

describe("the tutorial's rule in token mode", () => {
  const secret = "replay-rules-secret";
  const token = (sub, rooms) =>
    jwt.sign({ sub, exp: Math.floor(Date.now() / 1000) + 300, ...(rooms ? { rooms } : {}) }, secret, { algorithm: "HS256" });
  let server;
  before(async () => {
    server = await startServer({ args: ["--config", TUTORIAL_CONFIG], env: { JWT_SECRET: secret, API_KEY: "k" } });
  });
  after(() => server.close());

  test("a token that does not allow the rule's room is sent none of it, replayed or live, and cannot store in it", async () => {
    const connectWith = (tok) =>
      new Promise((resolve, reject) => {
        const s = io(server.url, { auth: { token: tok, serverOffset: 0 }, forceNew: true, reconnection: false, transports: ["websocket"] });
        s.received = [];
        s.on("chat message", (...args) => s.received.push(args));
        s.once("connect", () => resolve(s)).once("connect_error", reject);
      });
    const allowed = await connectWith(token(unique("ann")));
    const limited = await connectWith(token(unique("bob"), ["elsewhere"]));
    try {
      const text = unique("members-only");
      assert.deepEqual(await allowed.timeout(WAIT_MS).emitWithAck("chat message", text, "k-1"), undefined);
      await eventually(() => allowed.received.length === 1);
      const refused = await limited.timeout(WAIT_MS).emitWithAck("chat message", "no", "k-2");
      assert.equal(refused?.error?.code, "forbidden");
      const late = await connectWith(token(unique("cat"), ["elsewhere"]));
      const lateAllowed = await connectWith(token(unique("dan"), ["tutorial"]));
      try {
        await eventually(() => lateAllowed.received.length === 1);
        // A barrier: another message reaches the allowed sockets; the limited ones had nothing.
        await allowed.timeout(WAIT_MS).emitWithAck("chat message", unique("after"), "k-3");
        await eventually(() => lateAllowed.received.length === 2 && allowed.received.length === 2);
        assert.deepEqual(limited.received, []);
        assert.deepEqual(late.received, []);
      } finally {
        closeAll(late, lateAllowed);
      }
    } finally {
      closeAll(allowed, limited);
    }
  });
});

describe("the rule's parts in general terms", () => {
  let server;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), "chatoxide-rules-"));
    const config = join(dir, "rules.toml");
    writeFileSync(
      config,
      `
[[rules]]
namespace = "/app"
on = "post"
emit = "posted"
to = "everyone"
store = "board"
text_argument = 1
key_argument = 2
append = ["user", "created_at", "id"]

[[rules]]
namespace = "/app"
on = "feed"
to = "everyone"
store = "feed"
key_argument = 1
append = ["id"]
ack = "empty"
replay = { auth = "after" }
`,
    );
    server = await startServer({ args: ["--config", config] });
  });
  after(() => server.close());

  test("to everyone, the text and key where the rule says, stored fields appended, the key not relayed", async () => {
    const connectNs = (auth) =>
      new Promise((resolve, reject) => {
        const s = io(`${server.url}/app`, { auth, forceNew: true, reconnection: false, transports: ["websocket"] });
        s.once("connect", () => resolve(s)).once("connect_error", reject);
      });
    const a = await connectNs({ username: unique("ann") });
    const b = await connectNs({});
    try {
      const got = [];
      b.on("posted", (...args) => got.push(args));
      const own = new Promise((resolve) => a.once("posted", (...args) => resolve(args)));
      const text = unique("notice");
      const ack = await a.timeout(WAIT_MS).emitWithAck("post", "general", text, "k-1");
      assert.equal(ack.ok, true);
      assert.equal(ack.message.text, text);
      const relayed = ["general", text, ack.message.user.name, ack.message.created_at, ack.message.id];
      assert.deepEqual(await own, relayed, "the sender gets it too");
      await eventually(() => got.length === 1);
      assert.deepEqual(got[0], relayed);
      // The same key again: answered with the stored message, relayed to nobody.
      const again = await a.timeout(WAIT_MS).emitWithAck("post", "general", text, "k-1");
      assert.deepEqual(again.message, ack.message);
      const second = await a.timeout(WAIT_MS).emitWithAck("post", "general", unique("second"), "k-2");
      await eventually(() => got.length === 2);
      assert.equal(got[1][4], second.message.id);
      // A rule on a namespace of its own replays from its own auth field.
      const f = await tutorialClient(server, { namespace: "/app", event: "feed" });
      try {
        assert.deepEqual(await f.timeout(WAIT_MS).emitWithAck("feed", "one", "f-1"), undefined);
        await receivedAll(f, 1);
        const late = io(`${server.url}/app`, { auth: { after: 0 }, forceNew: true, reconnection: false });
        try {
          const replayed = await new Promise((resolve) => late.once("feed", (...args) => resolve(args)));
          assert.deepEqual(replayed, f.received[0]);
        } finally {
          late.close();
        }
      } finally {
        f.close();
      }
    } finally {
      closeAll(a, b);
    }
  });
});
