// Connection state recovery on the chat's own namespace (`/`, `--connection-state-recovery`),
// with the contract's join and message: a client cut off and back within the session's lifetime
// is recovered with exactly the `message` events it missed, each ending with its offset, on the
// node it left or on another node of a cluster; after the lifetime or a restart it is not, and
// `join { room, since }` catches it up instead. With default settings nothing of this shows.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../harness/server.js";
import { startCluster } from "../harness/cluster.js";
import { redisMissing } from "../harness/redis.js";
import { startProxy } from "../harness/proxy.js";
import { barrier, closeAll, connectAs, ok, unique } from "../harness/client.js";
import { chatoxideRecovery, cutOff, letBack, recoveringClient, sawDisconnect } from "../harness/recovery.js";

const skipCluster = await redisMissing();

/** Sessions kept this long in the expiry test. */
const SHORT_SESSIONS_MS = 1500;

/**
 * Runs `body` in a room of its own with client A (over `transport`, through a proxy to
 * `server`, reconnecting by itself) and client B (direct to `serverB`, by default `server`),
 * both members, A having heard one message of B (its offset). `server` has a debug log.
 */
async function inRoom({ server, serverB = server, transport }, body) {
  const proxy = await startProxy({ host: "127.0.0.1", port: server.port });
  const room = unique("room");
  const a = await recoveringClient(proxy.url, { transport, auth: { username: unique("a") }, event: "message" });
  const b = await connectAs(serverB, unique("b"));
  try {
    await ok(a, "join", { room });
    await ok(b, "join", { room });
    const first = await barrier(b, a, room);
    await body({ proxy, room, a, b, first, cut: () => cutOff(proxy, a, (sid) => sawDisconnect(server, sid)) });
  } finally {
    closeAll(a, b);
    await proxy.close();
  }
}

/** B sends `n` messages to `room`; returns them as acknowledged. */
async function sends(b, room, n, tag) {
  const sent = [];
  for (let i = 0; i < n; i++) sent.push((await ok(b, "message", { room, text: `${tag} ${i}` })).message);
  return sent;
}

/** Messages, with their offsets, since the `from`th `message` event A got. */
const since = (a, from) => a.received.slice(from);

/** Asserts that `events` each end with an offset, no offset twice; returns their messages. */
function withOffsets(events) {
  assert.ok(events.every((args) => args.length === 2 && typeof args[1] === "string"), "each message ends with its offset");
  assert.equal(new Set(events.map((args) => args[1])).size, events.length, "no offset twice");
  return events.map(([message]) => message);
}

describe("recovery on the chat's namespace, one node", () => {
  let server;
  before(async () => {
    const { args, env } = chatoxideRecovery();
    server = await startServer({ args, env });
  });
  after(() => server?.close());

  for (const transport of ["websocket", "polling"]) {
    test(`${transport}: recovered with exactly the missed messages, each with its offset, in order`, () =>
      inRoom({ server, transport }, async ({ room, a, b, proxy, cut }) => {
        const id = a.id;
        assert.equal(typeof a.connects[0].pid, "string", "the CONNECT answer carries a session id");
        withOffsets(a.received);

        await cut();
        const from = a.received.length;
        const missed = await sends(b, room, 5, "missed");
        await letBack(proxy, a);

        assert.equal(a.recovered, true);
        assert.equal(a.id, id);
        const last = await barrier(b, a, room);
        assert.deepEqual(withOffsets(since(a, from)), [...missed, last]);
        withOffsets(a.received);
      }));
  }

  test("a restart (SIGTERM, same port, same database) ends recovery; join since catches up, nothing lost, nothing twice", () =>
    inRoom({ server, transport: "websocket" }, async ({ room, a, b, proxy, first, cut }) => {
      await cut();
      const from = a.received.length;
      const missed = await sends(b, room, 2, "before the restart");
      assert.deepEqual(await server.restart({ samePort: true }), { code: 0, signal: null });
      const again = await connectAs(server, b.auth.username);
      try {
        missed.push(...(await sends(again, room, 2, "after the restart")));
        await letBack(proxy, a);

        assert.equal(a.recovered, false);
        assert.deepEqual((await ok(a, "join", { room, since: first.id })).missed, missed);
        const last = await barrier(again, a, room);
        assert.deepEqual(withOffsets(since(a, from)), [last], "nothing sent but the barrier");
      } finally {
        again.close();
      }
    }));
});

describe("recovery on the chat's namespace, sessions expiring", () => {
  let server;
  before(async () => {
    const { args, env } = chatoxideRecovery({ maxDisconnectionMs: SHORT_SESSIONS_MS });
    server = await startServer({ args, env });
  });
  after(() => server?.close());

  for (const transport of ["websocket", "polling"]) {
    test(`${transport}: back after the lifetime, not recovered; join since returns exactly the missed messages`, () =>
      inRoom({ server, transport }, async ({ room, a, b, proxy, first, cut }) => {
        const id = a.id;
        await cut();
        const from = a.received.length;
        const missed = await sends(b, room, 3, "missed");
        // The lifetime counts from when the server saw the client go (awaited by cut()).
        await new Promise((r) => setTimeout(r, SHORT_SESSIONS_MS + 1000));
        await letBack(proxy, a);

        assert.equal(a.recovered, false);
        assert.notEqual(a.id, id);
        assert.deepEqual((await ok(a, "join", { room, since: first.id })).missed, missed);
        const last = await barrier(b, a, room);
        assert.deepEqual(withOffsets(since(a, from)), [last], "nothing replayed");
      }));
  }
});

describe("recovery on a three-node cluster", { skip: skipCluster }, () => {
  let cluster;
  before(async () => {
    cluster = await startCluster(3, chatoxideRecovery());
  });
  after(() => cluster?.close());

  for (const transport of ["websocket", "polling"]) {
    test(`${transport}: cut off from node 0, back on node 2: recovered there with exactly the messages sent on node 1`, () => {
      const [node0, node1, node2] = cluster.nodes;
      return inRoom({ server: node0, serverB: node1, transport }, async ({ room, a, b, proxy, cut }) => {
        const id = a.id;
        await cut();
        const from = a.received.length;
        const missed = await sends(b, room, 5, "missed");
        proxy.retarget({ host: "127.0.0.1", port: node2.port });
        await letBack(proxy, a);

        assert.equal(a.recovered, true);
        assert.equal(a.id, id);
        const last = await barrier(b, a, room);
        assert.deepEqual(withOffsets(since(a, from)), [...missed, last]);
      });
    });
  }
});

describe("default settings: no recovery", () => {
  let server;
  before(async () => {
    // The pings and the debug log of the recovery tests, recovery itself left off.
    server = await startServer({ env: chatoxideRecovery().env });
  });
  after(() => server?.close());

  test("CONNECT has no session id, messages have no offset, a client cut off comes back as a new socket", () =>
    inRoom({ server, transport: "websocket" }, async ({ room, a, b, proxy, cut }) => {
      const id = a.id;
      assert.deepEqual(Object.keys(a.connects[0]), ["sid"]);
      await cut();
      const from = a.received.length;
      await sends(b, room, 2, "missed");
      await letBack(proxy, a);

      assert.notEqual(a.recovered, true);
      assert.notEqual(a.id, id);
      assert.deepEqual(Object.keys(a.connects.at(-1)), ["sid"]);
      const last = await barrier(b, a, room);
      assert.deepEqual(since(a, from), [[last]], "nothing replayed");
      assert.ok(a.received.every((args) => args.length === 1), "one argument, no offset");
    }));
});
