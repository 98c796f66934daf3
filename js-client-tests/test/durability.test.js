// Durability: what was acknowledged is stored exactly once, through crashes, outages, races
// between nodes, full queues and shutdowns.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, NO_RATE_LIMITS } from "../harness/server.js";
import { backend, createDatabase, postgresAddress, via } from "../harness/database.js";
import { startProxy } from "../harness/proxy.js";
import { connectAs, command, ok, unique, closeAll, eventually } from "../harness/client.js";

/**
 * Sends `message` commands with client ids `${prefix}-0`, `-1`, ... keeping `window` in flight,
 * until `stop()` or the socket drops. `acked` maps client_id to the acked message id.
 */
function sender(socket, room, prefix, window = 8) {
  const acked = new Map();
  const sent = new Set();
  let n = 0;
  let running = true;
  let dropped;
  const gone = new Promise((resolve) => (dropped = resolve));
  socket.on("disconnect", () => dropped());
  const one = async () => {
    while (running && socket.connected) {
      const client_id = `${prefix}-${n++}`;
      sent.add(client_id);
      const reply = await Promise.race([
        new Promise((resolve) => socket.emit("message", { room, text: client_id, client_id }, resolve)),
        gone.then(() => undefined),
      ]);
      if (reply?.ok) acked.set(client_id, reply.message.id);
    }
  };
  const loops = Promise.all(Array.from({ length: window }, one));
  return { acked, sent, stop: () => ((running = false), loops), done: loops };
}

/** Every message of `room`, oldest first, paging back from the newest. */
async function everything(socket, room) {
  const all = [];
  let page = await ok(socket, "history", { room, limit: 100 });
  all.unshift(...page.messages);
  while (page.has_more) {
    page = await ok(socket, "history", { room, limit: 100, before: page.messages[0].id });
    all.unshift(...page.messages);
  }
  return all;
}

function countBy(messages, key) {
  const counts = new Map();
  for (const m of messages) counts.set(m[key], (counts.get(m[key]) ?? 0) + 1);
  return counts;
}

describe("a crash (SIGKILL) mid-stream", () => {
  let server;
  before(async () => (server = await startServer({ env: NO_RATE_LIMITS })));
  after(() => server.close());

  test("every acked message is stored exactly once; retries of the rest store each once", async () => {
    const room = unique("crash");
    const users = Array.from({ length: 4 }, (_, i) => unique(`sender${i}`));
    const sockets = await Promise.all(users.map((u) => connectAs(server, u)));
    for (const s of sockets) await ok(s, "join", { room });
    const senders = sockets.map((s, i) => sender(s, room, `c${i}`));
    // Let the stream run until a few hundred messages are acknowledged, then kill the server.
    while (senders.reduce((n, s) => n + s.acked.size, 0) < 300) await new Promise((r) => setTimeout(r, 10));
    await server.stop("SIGKILL");
    await Promise.all(senders.map((s) => s.done));
    closeAll(...sockets);

    await server.start();
    const reader = await connectAs(server, users[0]);
    try {
      const stored = await everything(reader, room);
      const byId = countBy(stored, "id");
      const byClientId = countBy(stored, "client_id");
      for (const s of senders) {
        for (const [clientId, id] of s.acked) {
          assert.equal(byId.get(id), 1, `acked ${clientId} is stored once`);
        }
      }
      for (const [clientId, n] of byClientId) assert.equal(n, 1, `${clientId} stored once`);

      // Retry everything that was sent but not acknowledged, with the same client ids.
      const again = await Promise.all(users.map((u) => connectAs(server, u)));
      await Promise.all(
        senders.map(async (s, i) => {
          for (const clientId of s.sent) {
            if (!s.acked.has(clientId)) await ok(again[i], "message", { room, text: clientId, client_id: clientId });
          }
        }),
      );
      closeAll(...again);
      const after = await everything(reader, room);
      const afterByClientId = countBy(after, "client_id");
      const everySent = senders.flatMap((s) => [...s.sent]);
      for (const clientId of everySent) assert.equal(afterByClientId.get(clientId), 1, `${clientId} exactly once`);
      assert.equal(after.length, everySent.length);
      const ids = after.map((m) => m.id);
      assert.deepEqual([...ids].sort(), ids, "history is in id order");
    } finally {
      reader.close();
    }
  });
});

describe("a drain (SIGTERM) under load", () => {
  let server;
  before(async () => (server = await startServer({ env: { ...NO_RATE_LIMITS, CHATOXIDE_SHUTDOWN_GRACE_SECS: "5" } })));
  after(() => server.close());

  test("exit 0 within the grace period; every acked message is stored; the rest were refused or unanswered", async () => {
    const room = unique("drain");
    const users = Array.from({ length: 4 }, (_, i) => unique(`drainer${i}`));
    const sockets = await Promise.all(users.map((u) => connectAs(server, u)));
    for (const s of sockets) await ok(s, "join", { room });
    const senders = sockets.map((s, i) => sender(s, room, `d${i}`));
    while (senders.reduce((n, s) => n + s.acked.size, 0) < 200) await new Promise((r) => setTimeout(r, 10));
    const exit = await server.stop("SIGTERM");
    await Promise.all(senders.map((s) => s.done));
    closeAll(...sockets);
    assert.deepEqual(exit, { code: 0, signal: null });
    // Within the grace period as the server itself judges it (it says when one ran out), not
    // as a wall clock on a busy machine would.
    const overran = server.log.filter((l) => l.includes("at the end of the grace period"));
    assert.deepEqual(overran, [], "stopped within the grace period");
    assert.ok(server.log.some((l) => l.includes('"message":"stopped"')), "the drain ran to its end");

    await server.start();
    const reader = await connectAs(server, users[0]);
    try {
      const stored = countBy(await everything(reader, room), "client_id");
      for (const s of senders) {
        for (const clientId of s.acked.keys()) assert.equal(stored.get(clientId), 1, `acked ${clientId} stored once`);
      }
    } finally {
      reader.close();
    }
  });
});

describe("two nodes on one database", () => {
  let first;
  let second;
  before(async () => {
    first = await startServer({ env: NO_RATE_LIMITS });
    second = await startServer({ database: first.db, env: NO_RATE_LIMITS });
  });
  after(async () => {
    await second.stop();
    await first.close();
  });

  test("the same (user, client_id) sent to both at once stores one message, both get it", async () => {
    const room = unique("twins");
    const user = unique("twin");
    const a = await connectAs(first, user);
    const b = await connectAs(second, user);
    try {
      await ok(a, "join", { room });
      for (let round = 0; round < 20; round++) {
        const client_id = `twin-${round}`;
        const [x, y] = await Promise.all([
          ok(a, "message", { room, text: client_id, client_id }),
          ok(b, "message", { room, text: client_id, client_id }),
        ]);
        assert.deepEqual(x.message, y.message);
      }
      const stored = await everything(a, room);
      assert.equal(stored.length, 20);
    } finally {
      closeAll(a, b);
    }
  });
});

describe("a full write queue", () => {
  let server;
  before(async () => (server = await startServer({ env: { ...NO_RATE_LIMITS, CHATOXIDE_WRITE_QUEUE: "1", CHATOXIDE_WRITE_BATCH_MAX: "1" } })));
  after(() => server.close());

  test("sends answer ok or unavailable at once; only the acked ones are stored", async () => {
    const room = unique("full");
    const sockets = await Promise.all(Array.from({ length: 8 }, () => connectAs(server, unique("flood"))));
    try {
      for (const s of sockets) await ok(s, "join", { room });
      const replies = await Promise.all(
        sockets.flatMap((s, i) =>
          Array.from({ length: 40 }, (_, j) => command(s, "message", { room, text: "flood", client_id: `f${i}-${j}` }).then((r) => [`f${i}-${j}`, r])),
        ),
      );
      const codes = new Set(replies.map(([, r]) => (r.ok ? "ok" : r.error.code)));
      assert.deepEqual([...codes].filter((c) => c !== "ok" && c !== "unavailable"), []);
      const refused = replies.filter(([, r]) => !r.ok).map(([id]) => id);
      const acked = replies.filter(([, r]) => r.ok).map(([id]) => id);
      assert.ok(refused.length > 0, "a queue of one refuses part of a burst of 320");
      assert.ok(acked.length > 0, "and stores the rest");
      // `outcome: "unknown"` (a commit slower than its timeout on a busy machine) may have
      // been stored; every other refusal says nothing was.
      const nothingStored = replies.filter(([, r]) => !r.ok && r.error.outcome !== "unknown").map(([id]) => id);
      assert.ok(nothingStored.length > 0, "the queue refused part of the burst at once");
      const stored = new Set((await everything(sockets[0], room)).map((m) => m.client_id));
      for (const id of acked) assert.ok(stored.has(id), `acked ${id} is stored`);
      for (const id of nothingStored) assert.ok(!stored.has(id), `refused ${id} is not stored`);
    } finally {
      closeAll(...sockets);
    }
  });
});

describe("a database outage (PostgreSQL behind a proxy)", { skip: backend !== "postgres" && "needs PostgreSQL: runs in the PostgreSQL pass" }, () => {
  let proxy;
  let server;
  before(async () => {
    proxy = await startProxy(postgresAddress());
    const db = await createDatabase();
    server = await startServer({ database: via(db, { host: "127.0.0.1", port: proxy.port }), env: { ...NO_RATE_LIMITS, CHATOXIDE_COMMIT_TIMEOUT_MS: "2000" } });
    server.dropDatabase = db.drop;
  });
  after(async () => {
    await server.stop("SIGKILL");
    await proxy.close();
    await server.dropDatabase();
  });

  test("sends fail with unavailable promptly, /readyz is 503, and both recover by themselves", async () => {
    const room = unique("outage");
    const s = await connectAs(server, unique("patient"));
    try {
      await ok(s, "join", { room });
      const before = await ok(s, "message", { room, text: "before", client_id: "o-before" });

      proxy.cut();
      // Answered while the database is still away: the send does not wait for it to come back.
      const during = await command(s, "message", { room, text: "during", client_id: "o-during" });
      assert.equal(during.ok, false);
      assert.equal(during.error.code, "unavailable");
      const ready = await server.fetch("/readyz");
      assert.equal(ready.status, 503);
      assert.deepEqual((await ready.json()).failing, ["storage"]);
      assert.equal((await server.fetch("/healthz")).status, 200);

      proxy.restore();
      const recovered = await eventually(async () => {
        const reply = await command(s, "message", { room, text: "after", client_id: "o-after" });
        return reply.ok && reply;
      }, undefined, "sends work again without a restart");
      assert.equal(recovered.ok, true);
      assert.equal((await server.fetch("/readyz")).status, 200);
      const stored = await everything(s, room);
      assert.deepEqual(stored.map((m) => m.client_id), ["o-before", "o-after"]);
      assert.equal(stored[0].id, before.message.id);
    } finally {
      s.close();
    }
  });
});
