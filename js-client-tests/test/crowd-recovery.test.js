// Crowds: connection state recovery for a thousand clients at once. Every socket of a room is
// cut off by one proxy, the room goes on without them, and they all come back together: each is
// recovered with exactly the stored sequence, in order, once.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, NO_RATE_LIMITS } from "../harness/server.js";
import { startProxy } from "../harness/proxy.js";
import { closeAll, connectAs, eventually, next, unique } from "../harness/client.js";
import { PATIENCE_MS, sure } from "../harness/crowd.js";
import { DEFAULT_PINGS, chatoxideRecovery, recoveringClient } from "../harness/recovery.js";

const CROWD = 1000;
const SENDERS = 5;
const DURING_THE_CUT = 500;

/** The room's whole history, oldest first, paged (newest first) through the HTTP API. */
async function storedHistory(server, room) {
  let messages = [];
  for (;;) {
    const cursor = messages.length ? `&before=${messages[0].id}` : "";
    const res = await server.fetch(`/api/rooms/${room}/messages?limit=100${cursor}`);
    assert.equal(res.status, 200);
    const page = await res.json();
    messages = [...page.messages, ...messages];
    if (!page.has_more) return messages;
  }
}

/** The server's recovery metrics: restored sessions, and failures by why. */
async function recoveryMetrics(server) {
  const scraped = await (await server.fetch("/metrics")).text();
  const restored = Number(scraped.match(/^chatoxide_recovery_restored_total (\d+)$/m)?.[1] ?? NaN);
  const failures = Object.fromEntries(
    [...scraped.matchAll(/^chatoxide_recovery_failures_total\{why="(\w+)"\} (\d+)$/gm)].map(([, why, n]) => [why, Number(n)]),
  );
  return { restored, failures };
}

/** Resolves once every socket has had `n` messages. */
function allHeard(sockets, n, what) {
  return eventually(() => sockets.every((s) => s.received.length >= n), PATIENCE_MS, what);
}

describe("a crowd recovering at once", () => {
  let server;
  before(async () => {
    // Default pings: a polling client cut off is not seen gone for up to 45 s, and comes back
    // long before: its node takes the session over from the socket that had not noticed.
    const { args, env } = chatoxideRecovery({ pings: DEFAULT_PINGS, logDisconnects: false });
    // The room is large past 10 members: its joins are counted, not told one by one (told,
    // a thousand joins are half a million `user_joined` deliveries to one test process, a load
    // this test is not about).
    server = await startServer({ args, env: { ...env, ...NO_RATE_LIMITS, CHATOXIDE_LARGE_ROOM: "10" } });
  });
  after(() => server?.close());

  test(`${CROWD} sockets (WebSocket and polling) cut off together, ${DURING_THE_CUT} messages missed: all recovered with exactly the stored sequence`, async (t) => {
    const room = unique("crowd");
    const prefix = unique("back");
    const proxy = await startProxy({ host: "127.0.0.1", port: server.port });
    const crowd = [];
    const senders = [];
    try {
      for (let first = 0; first < CROWD; first += 250) {
        const batch = Array.from({ length: Math.min(250, CROWD - first) }, (_, j) =>
          recoveringClient(proxy.url, {
            transport: (first + j) % 2 ? "polling" : "websocket",
            auth: { username: `${prefix}-${first + j}` },
            event: "message",
          }),
        );
        crowd.push(...(await Promise.all(batch)));
      }
      for (let first = 0; first < CROWD; first += 250) {
        await Promise.all(crowd.slice(first, first + 250).map((s) => sure(s, "join", { room })));
      }
      for (let i = 0; i < SENDERS; i++) senders.push(await connectAs(server, unique("sender")));
      for (const s of senders) await sure(s, "join", { room });

      // A few messages first, so that every socket has an offset.
      const acked = [];
      for (let i = 0; i < 3; i++) acked.push((await sure(senders[0], "message", { room, text: `before ${i}` })).message);
      await allHeard(crowd, acked.length, "every socket heard the first messages");
      const ids = crowd.map((s) => s.id);

      const left = Promise.all(crowd.map((s) => next(s, "disconnect", undefined, PATIENCE_MS)));
      proxy.cut();
      await left;

      const during = await Promise.all(
        Array.from({ length: DURING_THE_CUT }, (_, i) =>
          sure(senders[i % SENDERS], "message", { room, text: `during ${i}` }).then((r) => r.message),
        ),
      );
      acked.push(...during);

      const back = Promise.all(crowd.map((s) => next(s, "connect", undefined, 2 * PATIENCE_MS)));
      const restored = Date.now();
      proxy.restore();
      await back;
      t.diagnostic(`all ${CROWD} back ${Date.now() - restored} ms after the restore`);
      const metrics = await recoveryMetrics(server);
      const lost = crowd.filter((s) => s.recovered !== true);
      if (lost.length) {
        const polling = lost.filter((s) => s.io.engine.transport.name === "polling").length;
        t.diagnostic(`not recovered: ${lost.length - polling} WebSocket, ${polling} polling; `
          + `failures by why: ${JSON.stringify(metrics.failures)}`);
      }
      assert.equal(lost.length, 0, "every socket recovered");
      const moved = crowd.filter((s, i) => s.id !== ids[i]);
      if (moved.length) t.diagnostic(`${moved.filter((s) => !s.connected).length} of ${moved.length} with another id are disconnected`);
      assert.equal(moved.length, 0, "every socket kept its id");
      assert.ok(metrics.restored >= CROWD, "the server restored every session");

      acked.push((await sure(senders[0], "message", { room, text: "after" })).message);
      await allHeard(crowd, acked.length, "every socket heard the last message");

      const stored = await storedHistory(server, room);
      assert.equal(stored.length, acked.length, "the server stored what it acknowledged, no more");
      assert.deepEqual(new Set(stored.map((m) => m.id)), new Set(acked.map((m) => m.id)));
      const sequence = JSON.stringify(stored.map((m) => m.id));
      const differing = crowd.flatMap((s, i) => (JSON.stringify(s.received.map(([m]) => m.id)) === sequence ? [] : [i]));
      for (const i of differing.slice(0, 5)) {
        const got = crowd[i].received.map(([m]) => m.id);
        const missing = stored.filter((m) => !got.includes(m.id)).length;
        t.diagnostic(`socket ${i}: ${got.length} received, ${new Set(got).size} distinct, ${missing} missing, ${crowd[i].connects.length} CONNECT answers`);
      }
      assert.deepEqual(differing, [], "sockets whose messages are not the stored sequence, in order, once each");
      const withoutOffset = crowd.flatMap((s) => s.received.filter((args) => args.length !== 2 || typeof args[1] !== "string"));
      assert.equal(withoutOffset.length, 0, "every message ends with its offset");
    } finally {
      closeAll(...crowd, ...senders);
      await proxy.close();
    }
  });
});
