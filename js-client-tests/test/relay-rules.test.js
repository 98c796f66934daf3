// Relay rules (`[[rules]]` in the TOML file): legacy events relayed to every target form, stored
// in a room's history, their acknowledgements answered or passed through, on `/` and on a
// namespace the rules open.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { io } from "socket.io-client";
import { startServer, NO_RATE_LIMITS } from "../harness/server.js";
import jwt from "jsonwebtoken";
import { connect, connectAs, command, ok, next, record, unique, closeAll, WAIT_MS } from "../harness/client.js";

const RULES = `
[[rules]]
on = "shout"
emit = "shouted"
to = "sender_rooms"

[[rules]]
on = "announce"
emit = "announcement"
to = { room = "lobby" }
store = true
text_field = "text"
echo = true

[[rules]]
on = "say"
emit = "said"
to = { field = "room" }
store = true
text_field = "text"

[[rules]]
on = "poke"
emit = "poked"
to = "argument"

[[rules]]
namespace = "/legacy"
on = "join-room"
action = "join"
to = "argument"
emit = "user-joined"

[[rules]]
namespace = "/legacy"
on = "leave-room"
action = "leave"
to = "argument"

[[rules]]
namespace = "/legacy"
on = "room-message"
to = { field = "room" }
store = true
text_field = "body"

[[rules]]
namespace = "/legacy"
on = "blob"

[[rules]]
namespace = "/legacy"
on = "who-is-there"
emit = "roll-call"
ack = "receivers"
ack_timeout_ms = 1000
`;

function legacy(server, username) {
  const socket = io(`${server.url}/legacy`, { auth: { username }, forceNew: true, reconnection: false });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

function emitWithAck(socket, event, ...args) {
  return socket.timeout(WAIT_MS).emitWithAck(event, ...args);
}

describe("relay rules", () => {
  let server;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), "chatoxide-rules-"));
    const file = join(dir, "rules.toml");
    writeFileSync(file, RULES);
    server = await startServer({ env: NO_RATE_LIMITS, args: ["--config", file] });
  });
  after(() => server.close());

  test("sender_rooms: to the rooms the sender joined through the contract, not elsewhere", async () => {
    const room = unique("shout");
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((n) => connectAs(server, unique(n))));
    try {
      await ok(a, "join", { room });
      await ok(b, "join", { room });
      const seenByC = record(c, "shouted");
      const seenByA = record(a, "shouted");
      const got = next(b, "shouted");
      a.emit("shout", { loud: true }, "twice");
      assert.deepEqual(await got, { loud: true });
      // A second listener sees every argument, in order.
      const both = new Promise((resolve) => b.once("shouted", (...args) => resolve(args)));
      a.emit("shout", "x", 2, [3]);
      assert.deepEqual(await both, ["x", 2, [3]]);
      assert.deepEqual(seenByC, []);
      assert.deepEqual(seenByA, []);
    } finally {
      closeAll(a, b, c);
    }
  });

  test("a fixed room, stored in its history, echoed to the sender, acknowledged with the message", async () => {
    const [sender, member] = await Promise.all([connectAs(server, unique("herald")), connectAs(server, unique("member"))]);
    try {
      await ok(member, "join", { room: "lobby" });
      const got = next(member, "announcement", (p) => p.text === "doors open");
      const echoed = next(sender, "announcement");
      const reply = await emitWithAck(sender, "announce", { text: "doors open" });
      assert.equal(reply.ok, true, JSON.stringify(reply));
      assert.equal(reply.message.text, "doors open");
      assert.equal(reply.message.room, "lobby");
      assert.deepEqual(await got, { text: "doors open" });
      assert.deepEqual(await echoed, { text: "doors open" });
      const page = await ok(member, "history", { room: "lobby", limit: 100 });
      assert.ok(page.messages.some((m) => m.id === reply.message.id && m.text === "doors open"));
      // The text field is required when the rule stores.
      const refused = await emitWithAck(sender, "announce", { body: "no text field" });
      assert.equal(refused.ok, false);
      assert.equal(refused.error.code, "bad_request");
    } finally {
      closeAll(sender, member);
    }
  });

  test("on /, a room named by the payload is the chat's: only its members relay to it or store in it", async () => {
    const room = unique("guarded");
    const [member, other, stranger] = await Promise.all([
      connectAs(server, unique("member")),
      connectAs(server, unique("other")),
      connectAs(server, unique("stranger")),
    ]);
    try {
      await ok(member, "join", { room });
      await ok(other, "join", { room });
      const heard = record(other, "said");
      const poked = record(other, "poked");
      const saidByStranger = await emitWithAck(stranger, "say", { room, text: "let me in" });
      assert.equal(saidByStranger.error?.code, "forbidden", JSON.stringify(saidByStranger));
      const pokedByStranger = await emitWithAck(stranger, "poke", room);
      assert.equal(pokedByStranger.error?.code, "forbidden", JSON.stringify(pokedByStranger));
      // A member's relays pass: the barrier for what the stranger's would have done.
      const got = next(other, "said", (p) => p.text === "hello members");
      assert.equal((await emitWithAck(member, "say", { room, text: "hello members" })).ok, true);
      await got;
      const gotPoke = next(other, "poked");
      assert.equal((await emitWithAck(member, "poke", room)).ok, true);
      await gotPoke;
      assert.deepEqual(heard.map((p) => p.text), ["hello members"]);
      assert.equal(poked.length, 1);
      const page = await ok(other, "history", { room });
      assert.deepEqual(page.messages.map((m) => m.text), ["hello members"]);
    } finally {
      closeAll(member, other, stranger);
    }
  });

  test("on a namespace of rules, storing in a room named by the payload needs the socket in it", async () => {
    const room = unique("legacy-guarded");
    const outsider = await legacy(server, unique("o"));
    try {
      const reply = await emitWithAck(outsider, "room-message", { room, body: "not joined" });
      assert.equal(reply.error?.code, "forbidden", JSON.stringify(reply));
      const reader = await connectAs(server, unique("reader"));
      try {
        await ok(reader, "join", { room });
        assert.deepEqual((await ok(reader, "history", { room })).messages, []);
      } finally {
        reader.close();
      }
    } finally {
      outsider.close();
    }
  });

  test("a namespace opened by rules: join by argument, relay to a room named by a field, stored", async () => {
    const room = unique("legacy");
    const [a, b, outsider] = await Promise.all([legacy(server, unique("a")), legacy(server, unique("b")), legacy(server, unique("o"))]);
    try {
      assert.deepEqual(await emitWithAck(a, "join-room", room), { ok: true });
      const joined = next(a, "user-joined");
      assert.deepEqual(await emitWithAck(b, "join-room", room), { ok: true });
      assert.equal(await joined, room);
      const notForOutsider = record(outsider, "room-message");
      const got = next(b, "room-message");
      const reply = await emitWithAck(a, "room-message", { room, body: "hello room" });
      assert.equal(reply.ok, true, JSON.stringify(reply));
      assert.equal(reply.message.text, "hello room");
      assert.deepEqual(await got, { room, body: "hello room" });
      // Stored: the chat contract on `/` reads it back.
      const reader = await connectAs(server, unique("reader"));
      try {
        await ok(reader, "join", { room });
        const page = await ok(reader, "history", { room });
        assert.deepEqual(page.messages.map((m) => m.text), ["hello room"]);
      } finally {
        reader.close();
      }
      // After leave-room, b no longer gets the room's events; a barrier proves the order.
      assert.deepEqual(await emitWithAck(b, "leave-room", room), { ok: true });
      const afterLeave = record(b, "room-message");
      const barrier = next(outsider, "blob");
      await emitWithAck(a, "room-message", { room, body: "after leave" });
      a.emit("blob", "barrier");
      await barrier;
      assert.deepEqual(afterLeave, []);
      assert.deepEqual(notForOutsider, []);
    } finally {
      closeAll(a, b, outsider);
    }
  });

  test("bad payloads are answered with bad_request and relay nothing", async () => {
    const a = await legacy(server, unique("a"));
    try {
      for (const payload of ["not an object", { body: "no room" }, { room: "a b", body: "bad room" }, { room: "user:bob", body: "x" }]) {
        const reply = await emitWithAck(a, "room-message", payload);
        assert.equal(reply.ok, false, JSON.stringify(payload));
        assert.ok(["bad_request", "forbidden"].includes(reply.error.code), JSON.stringify(reply));
      }
      const bad = await emitWithAck(a, "join-room", { not: "a string" });
      assert.equal(bad.error.code, "bad_request");
      // An event no rule serves: ignored, as Node ignores it, but answered when awaited.
      const unknown = await emitWithAck(a, "no-such-event", 1);
      assert.equal(unknown.error.code, "bad_request");
      assert.ok(a.connected);
    } finally {
      a.close();
    }
  });

  test("binary attachments are relayed as they came", async () => {
    const [a, b] = await Promise.all([legacy(server, unique("a")), legacy(server, unique("b"))]);
    try {
      const got = new Promise((resolve) => b.once("blob", (...args) => resolve(args)));
      const bytes = Uint8Array.from([0, 1, 2, 250, 255]);
      a.emit("blob", { name: "f.bin", data: bytes }, Uint8Array.from([9]));
      const [meta, raw] = await got;
      assert.equal(meta.name, "f.bin");
      assert.deepEqual([...new Uint8Array(meta.data)], [0, 1, 2, 250, 255]);
      assert.deepEqual([...new Uint8Array(raw)], [9]);
    } finally {
      closeAll(a, b);
    }
  });

  test("ack = receivers: the sender's acknowledgement gets the receivers' answers", async () => {
    const sockets = await Promise.all(["a", "b", "c"].map((n) => legacy(server, unique(n))));
    const [asker, ...others] = sockets;
    try {
      others[0].on("roll-call", (question, answer) => answer({ here: "b", question }));
      others[1].on("roll-call", (question, answer) => answer({ here: "c", question }));
      const answers = await emitWithAck(asker, "who-is-there", "anyone?");
      // Other tests' sockets may share the namespace: ours are among the answers.
      const ours = answers.filter((a) => a.question === "anyone?").map((a) => a.here).sort();
      assert.ok(ours.includes("b") && ours.includes("c"), JSON.stringify(answers));
    } finally {
      closeAll(...sockets);
    }
  });
});

describe("relay rules in token mode", () => {
  const secret = unique("rules-secret");
  const sign = (claims) => jwt.sign({ exp: Math.floor(Date.now() / 1000) + 300, ...claims }, secret, { algorithm: "HS256" });
  let server;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), "chatoxide-rules-"));
    const file = join(dir, "rules.toml");
    writeFileSync(file, '[[rules]]\non = "shout"\nemit = "shouted"\nto = "sender_rooms"\n');
    server = await startServer({ env: { ...NO_RATE_LIMITS, JWT_SECRET: secret }, args: ["--config", file] });
  });
  after(() => server.close());

  test("sender_rooms leaves out rooms the sender's token does not allow", async () => {
    const user = unique("alice");
    const [open, secretRoom] = [unique("open"), unique("secret")];
    // One user, two tabs: a widget whose token allows only `open`, and a tab allowed everything.
    const widget = await connect(server, { token: sign({ sub: user, rooms: [open] }) });
    const tab = await connect(server, { token: sign({ sub: user }) });
    const [inOpen, inSecret] = await Promise.all([
      connect(server, { token: sign({ sub: unique("bob") }) }),
      connect(server, { token: sign({ sub: unique("carol") }) }),
    ]);
    try {
      await ok(inOpen, "join", { room: open });
      await ok(inSecret, "join", { room: secretRoom });
      await ok(widget, "join", { room: open });
      // The tab's join of the secret room puts all of the user's sockets in it, the widget's too.
      await ok(tab, "join", { room: secretRoom });
      const leaked = record(inSecret, "shouted");
      const got = next(inOpen, "shouted");
      widget.emit("shout", "from the widget");
      assert.equal(await got, "from the widget");
      // A barrier through the secret room: anything the widget's shout sent there has arrived.
      const barrier = next(inSecret, "shouted");
      tab.emit("shout", "from the tab");
      assert.equal(await barrier, "from the tab");
      assert.deepEqual(leaked.filter((p) => p === "from the widget"), []);
    } finally {
      closeAll(widget, tab, inOpen, inSecret);
    }
  });
});

describe("join rules under a rooms-per-user limit", () => {
  let server;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), "chatoxide-rules-"));
    const file = join(dir, "rules.toml");
    writeFileSync(file, '[[rules]]\nnamespace = "/legacy"\non = "join-room"\naction = "join"\nto = "argument"\n');
    server = await startServer({ env: { CHATOXIDE_MAX_ROOMS_PER_USER: "3", CHATOXIDE_LIMIT_JOIN: "off" }, args: ["--config", file] });
  });
  after(() => server.close());

  test("a socket is put in no more rooms than the limit allows", async () => {
    const a = await legacy(server, unique("collector"));
    try {
      const replies = [];
      for (let i = 0; i < 5; i++) replies.push(await emitWithAck(a, "join-room", unique(`r${i}`)));
      // The personal room counts: two joins pass, then `forbidden`.
      assert.deepEqual(replies.map((r) => r.ok), [true, true, false, false, false], JSON.stringify(replies));
      assert.equal(replies[2].error.code, "forbidden");
    } finally {
      a.close();
    }
  });
});

describe("rules that do not hold", () => {
  for (const [rule, why] of [
    ['[[rules]]\non = "join"\nemit = "x"\n', /command of the chat contract/],
    ['[[rules]]\non = "x"\nemit = "message"\n', /event of the chat contract/],
    ['[[rules]]\non = "x"\naction = "join"\nto = "argument"\n', /other namespaces/],
  ]) {
    test(`the server refuses to start and names the rule: ${why}`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "chatoxide-rules-"));
      const file = join(dir, "bad.toml");
      writeFileSync(file, rule);
      await assert.rejects(startServer({ args: ["--config", file] }), (err) => {
        assert.match(String(err.message), why);
        return true;
      });
    });
  }
});
