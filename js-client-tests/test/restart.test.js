// Durability and memberships across reconnects and restarts; shutdown on SIGTERM.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, NO_RATE_LIMITS } from "../harness/server.js";
import { connectAs, command, ok, next, unique, closeAll } from "../harness/client.js";

let server;
// Bursts of 100 messages from one user: rate limits off (they have their own suite).
before(async () => (server = await startServer({ env: NO_RATE_LIMITS })));
after(() => server.close());

test("after a reconnect the user is back in its rooms without joining", async () => {
  const room = unique("back");
  const name = unique("returning");
  const other = await connectAs(server, unique("other"));
  let s = await connectAs(server, name);
  try {
    await ok(s, "join", { room });
    await ok(other, "join", { room });
    s.close();
    s = await connectAs(server, name, { transports: ["polling"] });
    const live = next(s, "message");
    const { message } = await ok(other, "message", { room, text: "welcome back" });
    assert.deepEqual(await live, message);
    assert.equal((await ok(s, "message", { room, text: "thanks" })).ok, true);
  } finally {
    closeAll(s, other);
  }
});

test("SIGTERM: exit 0; started again, history and memberships are still there", async () => {
  const room = unique("durable");
  const name = unique("keeper");
  let s = await connectAs(server, name);
  await ok(s, "join", { room });
  const sent = [];
  for (let i = 0; i < 5; i++) sent.push((await ok(s, "message", { room, text: `kept ${i}` })).message);
  s.close();

  const exit = await server.restart();
  assert.deepEqual(exit, { code: 0, signal: null });

  const other = await connectAs(server, unique("newcomer"));
  s = await connectAs(server, name);
  try {
    assert.deepEqual((await ok(s, "history", { room })).messages, sent);
    await ok(other, "join", { room });
    const live = next(s, "message");
    await ok(other, "message", { room, text: "after the restart" });
    assert.equal((await live).text, "after the restart");
  } finally {
    closeAll(s, other);
  }
});

test("SIGTERM while commands are in flight: every acknowledged message is stored", async () => {
  const room = unique("drain");
  const s = await connectAs(server, unique("busy"));
  await ok(s, "join", { room });
  const acked = [];
  let firstAcks;
  const someAcked = new Promise((resolve) => (firstAcks = resolve));
  const replies = Array.from({ length: 100 }, (_, i) =>
    command(s, "message", { room, text: `burst ${i}`, client_id: `burst-${i}` })
      .then((r) => r.ok && acked.push(r.message.id) >= 5 && firstAcks())
      .catch(() => {}),
  );
  await someAcked; // the stop lands while the rest of the burst is in flight
  const exit = await server.restart();
  await Promise.all(replies);
  s.close();
  assert.deepEqual(exit, { code: 0, signal: null });

  const reader = await connectAs(server, unique("reader"));
  try {
    await ok(reader, "join", { room });
    const stored = (await ok(reader, "history", { room, limit: 100 })).messages.map((m) => m.id);
    for (const id of acked) assert.ok(stored.includes(id), `acked ${id} is stored`);
  } finally {
    reader.close();
  }
});

test("SIGKILL: every acknowledged message survives the crash", async () => {
  const room = unique("crash");
  const s = await connectAs(server, unique("crasher"));
  await ok(s, "join", { room });
  const acked = [];
  for (let i = 0; i < 20; i++) acked.push((await ok(s, "message", { room, text: `pre-crash ${i}` })).message.id);
  s.close();
  await server.stop("SIGKILL");
  await server.start();
  const reader = await connectAs(server, unique("reader"));
  try {
    await ok(reader, "join", { room });
    assert.deepEqual((await ok(reader, "history", { room })).messages.map((m) => m.id), acked);
  } finally {
    reader.close();
  }
});
