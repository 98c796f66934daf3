// A rolling migration (issue 17): a Node socket.io 4.8 server on @socket.io/redis-adapter 8.x and
// two chatoxide nodes with REDIS_ADAPTER=node, on one Redis under one fresh key, are one cluster.
// Every broadcast reaches every client whichever node it is on: to all, to a room, to a socket id,
// with `except`, with binary attachments and with acks, in every direction; the Node side's
// fetchSockets / socketsJoin / socketsLeave / disconnectSockets reach chatoxide's sockets; the
// classic Node chat (examples/classic-node-chat.toml) is relayed across the mix; a killed node
// leaves the others going.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { closeAll, connect, connectAs, next, ok, unique, WAIT_MS } from "../harness/client.js";
import { redisMissing } from "../harness/redis.js";
import { startChatoxideNodes, startNodeServer } from "../harness/node-mix.js";

const examples = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "examples");
const API_KEY = "mixed-cluster-key";

/** The classic chat's rule, and the cookbook's roll call (a broadcast with acks). */
const RULES = `${readFileSync(join(examples, "classic-node-chat.toml"), "utf8")}
[[rules]]
on = "who-is-there"
emit = "roll-call"
ack = "receivers"
ack_timeout_ms = 1000
`;

const skip = await redisMissing();
let key, node, oxide, folder;

before(async () => {
  if (skip) return;
  key = unique("mix");
  folder = mkdtempSync(join(tmpdir(), "chatoxide-mix-"));
  const config = join(folder, "chatoxide.toml");
  writeFileSync(config, RULES);
  node = await startNodeServer(key);
  oxide = await startChatoxideNodes(2, key, { args: ["--config", config], env: { API_KEY } });
});

after(async () => {
  await node?.kill();
  await oxide?.close();
  if (folder) rmSync(folder, { recursive: true, force: true });
});

/** `socket`, remembering the name it connected with. */
function named(socket, username) {
  socket.username = username;
  return socket;
}

/** A client on each server: `n` on the Node one, `a` and `b` on the chatoxide ones. */
async function trio() {
  const names = {};
  const [x0, x1] = oxide.nodes;
  return {
    n: await connect({ url: node.url }),
    a: named(await connectAs(x0, (names.a = unique("ann"))), names.a),
    b: named(await connectAs(x1, (names.b = unique("bob"))), names.b),
  };
}

/** Resolves with the arguments of the next `event` on `socket`. */
function nextArgs(socket, event, ms = WAIT_MS) {
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} event in ${ms} ms`)), ms);
    socket.once(event, (...args) => {
      clearTimeout(timer);
      resolvePromise(args);
    });
  });
}

/** Every `event` `socket` gets from now on. */
function seen(socket, event) {
  const all = [];
  socket.on(event, (...args) => all.push(args));
  return all;
}

/**
 * A barrier from the Node side: a fresh event to every socket in `sockets`, awaited on each. The
 * Node server publishes in order and each node delivers in order, so whatever it published
 * before has reached these sockets by then.
 */
async function settled(...sockets) {
  const mark = unique("sync");
  const arrived = sockets.map((s) => next(s, "sync", (m) => m === mark));
  await node.call("emit", { event: "sync", args: [mark] });
  await Promise.all(arrived);
}

test("the classic Node chat is relayed across the mix, in every direction", { skip }, async () => {
  const { n, a, b } = await trio();
  const got = { n: seen(n, "chat-message"), a: seen(a, "chat-message"), b: seen(b, "chat-message") };
  try {
    for (const [name, socket] of Object.entries({ n, a, b })) {
      const text = `hello from ${name}`;
      const others = Object.entries({ n, a, b }).filter(([other]) => other !== name);
      const arrivals = others.map(([, s]) => next(s, "chat-message", (m) => m === text));
      socket.emit("send-chat-message", text);
      await Promise.all(arrivals);
    }
    await settled(n, a, b);
    // Each tab has the two others' messages and never its own (socket.broadcast.emit).
    assert.deepEqual(got.n.map(([m]) => m).sort(), ["hello from a", "hello from b"]);
    assert.deepEqual(got.a.map(([m]) => m).sort(), ["hello from b", "hello from n"]);
    assert.deepEqual(got.b.map(([m]) => m).sort(), ["hello from a", "hello from n"]);
    // Binary from a chatoxide tab reaches the Node one as a Buffer, and the reverse.
    const bytes = next(n, "chat-message", (m) => Buffer.isBuffer(m));
    a.emit("send-chat-message", Buffer.from([1, 2, 3]));
    assert.deepEqual([...(await bytes)], [1, 2, 3]);
    const back = next(b, "chat-message", (m) => (m instanceof ArrayBuffer || Buffer.isBuffer(m)) && m.byteLength === 2);
    n.emit("send-chat-message", Buffer.from([4, 5]));
    assert.deepEqual([...new Uint8Array(await back)], [4, 5]);
  } finally {
    closeAll(n, a, b);
  }
});

test("Node-side broadcasts reach chatoxide sockets: all, a room, a socket id, except, volatile, binary", { skip }, async () => {
  const { n, a, b } = await trio();
  try {
    const all = [n, a, b].map((s) => nextArgs(s, "news"));
    await node.call("emit", { event: "news", args: [1, "two", { three: 3.5 }, null, true] });
    for (const args of await Promise.all(all)) assert.deepEqual(args, [1, "two", { three: 3.5 }, null, true]);

    // A room that a Node-side socketsJoin put a chatoxide socket and the Node socket in.
    const room = unique("room");
    await node.call("socketsJoin", { rooms: [a.id, n.id], room });
    await settled(n, a, b);
    const inRoom = seen(b, "room-news");
    const toRoom = [n, a].map((s) => nextArgs(s, "room-news"));
    await node.call("emit", { rooms: [room], event: "room-news", args: ["r"] });
    await Promise.all(toRoom);
    // One socket by id, and everyone except one.
    const direct = seen(a, "direct");
    const toB = nextArgs(b, "direct");
    await node.call("emit", { rooms: [b.id], event: "direct", args: ["b only"] });
    assert.deepEqual(await toB, ["b only"]);
    const excepted = seen(a, "except");
    const others = [n, b].map((s) => nextArgs(s, "except"));
    await node.call("emit", { except: [a.id], event: "except", args: [] });
    await Promise.all(others);
    const volatile = [n, a, b].map((s) => nextArgs(s, "volatile"));
    await node.call("volatile", { event: "volatile", args: ["v"] });
    await Promise.all(volatile);
    // Binary attachments, nested too.
    const bin = nextArgs(a, "bin");
    await node.call("emit", { event: "bin", args: [{ $bin: [1, 2, 3] }, { nested: [{ $bin: [4] }] }] });
    const [first, second] = await bin;
    assert.deepEqual([...new Uint8Array(first)], [1, 2, 3]);
    assert.deepEqual([...new Uint8Array(second.nested[0])], [4]);
    // socketsLeave takes the chatoxide socket out of the room again.
    await node.call("socketsLeave", { rooms: [a.id], room });
    const left = seen(a, "after-leave");
    const stillIn = nextArgs(n, "after-leave");
    await node.call("emit", { rooms: [room], event: "after-leave", args: [] });
    await stillIn;
    await settled(n, a, b);
    assert.deepEqual([inRoom, direct, excepted, left], [[], [], [], []]);
  } finally {
    closeAll(n, a, b);
  }
});

test("chatoxide broadcasts reach Node sockets: the HTTP publish route, a contract join on every node", { skip }, async () => {
  const { n, a, b } = await trio();
  const [x0, x1] = oxide.nodes;
  const alice = unique("alice");
  const aliceThere = await connectAs(x1, alice);
  const aliceHere = await connectAs(x0, alice);
  try {
    const room = unique("general");
    // The chat contract's join, made on node 0, moves alice's socket on node 1 too.
    await ok(aliceHere, "join", { room });
    await ok(b, "join", { room });
    // The Node socket joins the same room from the Node side.
    await node.call("socketsJoin", { rooms: [n.id], room });
    await settled(n, aliceThere);
    const text = unique("published");
    const arrivals = [n, aliceHere, aliceThere, b].map((s) => next(s, "message", (m) => m.text === text));
    const res = await fetch(`${x0.url}/api/rooms/${room}/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ user: { id: "robot" }, text }),
    });
    assert.equal(res.status, 200);
    await Promise.all(arrivals);
    // A message sent on node 1 reaches every member, the Node socket in the room included.
    const said = unique("said");
    const heard = [n, aliceHere, aliceThere].map((s) => next(s, "message", (m) => m.text === said));
    await ok(b, "message", { room, text: said });
    await Promise.all(heard);
    assert.equal(a.connected, true);
  } finally {
    closeAll(n, a, b, aliceThere, aliceHere);
  }
});

test("acks across the mix: Node's emitWithAck hears chatoxide clients, chatoxide's roll call hears Node's", { skip }, async () => {
  const { n, a, b } = await trio();
  try {
    for (const [name, socket] of Object.entries({ n, a, b })) {
      socket.on("ask", (q, ack) => ack({ from: name, q }));
      socket.on("roll-call", (q, ack) => ack({ here: name, q, bytes: Buffer.from([7]) }));
    }
    const room = unique("asked");
    await node.call("socketsJoin", { rooms: [n.id, a.id, b.id], room });
    await settled(n, a, b);
    const answers = await node.call("emitWithAck", { rooms: [room], event: "ask", args: [7], timeout: 5000 });
    assert.deepEqual(answers.map((r) => r.from).sort(), ["a", "b", "n"]);
    assert.ok(answers.every((r) => r.q === 7));

    // chatoxide's rule (ack = "receivers") on node 0: everyone else answers, on every node.
    const fromA = await a.timeout(5000).emitWithAck("who-is-there", "q1");
    assert.deepEqual(fromA.map((r) => r.here).sort(), ["b", "n"], JSON.stringify(fromA));
    // Node's handler: chatoxide's clients answer, binary included.
    const fromN = await n.timeout(5000).emitWithAck("who-is-there", "q2");
    assert.deepEqual(fromN.map((r) => r.here).sort(), ["a", "b"]);
    assert.ok(fromN.every((r) => Buffer.isBuffer(r.bytes) && r.bytes[0] === 7));
  } finally {
    closeAll(n, a, b);
  }
});

test("fetchSockets, allRooms and disconnectSockets from the Node side reach chatoxide sockets", { skip }, async () => {
  const { n, a, b } = await trio();
  try {
    const fetched = await node.call("fetchSockets", { rooms: [a.id, b.id, n.id] });
    assert.deepEqual(fetched.map((s) => s.id).sort(), [a.id, b.id, n.id].sort());
    for (const s of fetched) {
      assert.ok(s.rooms.includes(s.id), `${s.id} is in the room of its id`);
      for (const field of ["headers", "time", "address", "xdomain", "secure", "issued", "url", "query", "auth"]) {
        assert.ok(field in s.handshake, `${s.id}'s handshake has ${field}`);
      }
    }
    // A chatoxide socket's handshake as Node describes it, and who it is as its data.
    for (const socket of [a, b]) {
      const { handshake, data } = fetched.find((s) => s.id === socket.id);
      assert.equal(handshake.auth.username, socket.username);
      assert.match(handshake.address, /127\.0\.0\.1/);
      assert.equal(handshake.query.EIO, "4");
      assert.match(handshake.url, /^\/socket\.io\/\?/);
      assert.equal(typeof handshake.issued, "number");
      assert.equal(handshake.headers.host, new URL(oxide.nodes[socket === a ? 0 : 1].url).host);
      assert.deepEqual(data, { user: { id: socket.username, name: socket.username } });
    }
    const rooms = await node.call("allRooms");
    assert.ok([a.id, b.id, n.id].every((id) => rooms.includes(id)));
    assert.equal(await node.call("serverCount"), 3);

    const gone = new Promise((r) => b.once("disconnect", r));
    await node.call("disconnectSockets", { rooms: [b.id] });
    assert.equal(await gone, "io server disconnect");
    await settled(n, a);
    assert.equal(a.connected, true);
  } finally {
    closeAll(n, a, b);
  }
});

test("a killed node: the others go on (the Node one, then a chatoxide one)", { skip }, async () => {
  const [x0, x1] = oxide.nodes;
  let a = await connectAs(x0, unique("ann"));
  let b = await connectAs(x1, unique("bob"));
  let n;
  try {
    await node.kill();
    const text = unique("still");
    const arrived = next(b, "chat-message", (m) => m === text);
    a.emit("send-chat-message", text);
    await arrived;

    // A new Node server joins; then a chatoxide node dies and the two left talk on.
    node = await startNodeServer(key);
    n = await connect({ url: node.url });
    await node.call("socketsJoin", { rooms: [n.id], room: "probe" });
    await settled(n, a, b);
    await x1.stop("SIGKILL");
    const after = unique("after");
    const toN = next(n, "chat-message", (m) => m === after);
    a.emit("send-chat-message", after);
    await toN;
    const fromN = next(a, "chat-message", (m) => m === "and back");
    n.emit("send-chat-message", "and back");
    await fromN;
  } finally {
    closeAll(n, a, b);
  }
});
