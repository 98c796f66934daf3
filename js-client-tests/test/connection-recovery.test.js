// Socket.IO 4.x connection state recovery on a relay namespace, as Node socket.io 4.8 does it:
// the same scenarios against chatoxide (fixtures/recovery.toml, recovery on `/live`) and against
// the Node reference (harness/recovery-node-server.js), over WebSocket and over long-polling,
// with socket.io-client 4.8 reconnecting by itself through a proxy the test cuts. A client back
// within the session's lifetime is recovered: the same id, its rooms, exactly the events it
// missed; after the lifetime, or after a restart, it starts afresh and is sent nothing again.
// The client cut off is a named user (`auth.username`, which Node ignores: chatoxide restores a
// session for its own user only), and in one test a client with no credentials at all.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect, closeAll, unique } from "../harness/client.js";
import { startProxy } from "../harness/proxy.js";
import {
  DEFAULT_PINGS,
  LIVE,
  cutOff,
  enter,
  letBack,
  recoveringClient,
  recoveryKinds,
  say,
  sayBarrier,
  startLive,
} from "../harness/recovery.js";

/** Sessions kept this long in the expiry scenario. */
const SHORT_SESSIONS_MS = 1500;

/** [room, text] of each `said` event, without its offset. */
const said = (events) => events.map(([room, text]) => [room, text]);

/**
 * Runs `body` with a `/live` server of `kind` of its own (`settings`), a proxy in front of it,
 * client A (over `transport`, through the proxy, reconnecting by itself, named with `auth`) and
 * client B (direct, over WebSocket). Everything is closed afterwards.
 */
async function scenario(kind, { transport, auth = { username: unique("a") }, ...settings }, body) {
  const server = await startLive(kind, settings);
  const proxy = await startProxy({ host: "127.0.0.1", port: server.port });
  const sockets = [];
  const clientA = async () => {
    const a = await recoveringClient(`${proxy.url}${LIVE}`, { transport, auth, event: "said" });
    sockets.push(a);
    return a;
  };
  const clientB = async () => {
    const b = await connect({ url: `${server.url}${LIVE}` }, {}, { transports: ["websocket"] });
    sockets.push(b);
    return b;
  };
  try {
    await body({ server, proxy, a: await clientA(), b: await clientB(), clientB });
  } finally {
    closeAll(...sockets);
    await proxy.close();
    await server.close();
  }
}

/**
 * The first scenario: A, in two rooms, is cut off while B says things in them and in a third;
 * back, A is recovered with exactly what it missed, in order, and is still in both rooms.
 */
async function backInTime({ server, proxy, a, b }) {
  const [r1, r2, r3] = [unique("r1"), unique("r2"), unique("r3")];
  await warmUp(a, b, [r1, r2]);
  const id = a.id;
  const { pid } = a.connects[0];
  assert.equal(typeof pid, "string", "the CONNECT answer carries a session id");
  assert.ok(a.received.every((args) => args.length === 3 && typeof args[2] === "string"), "each event ends with its offset");

  await cutOff(proxy, a, server.sawDisconnect);
  const heardBefore = a.received.length;
  const missed = [];
  for (let i = 0; i < 9; i++) {
    const room = [r1, r2, r3][i % 3];
    const text = `missed ${i}`;
    await say(b, room, text);
    if (room !== r3) missed.push([room, text]);
  }
  await letBack(proxy, a);

  assert.equal(a.recovered, true);
  assert.equal(a.id, id, "the same socket id");
  assert.equal(a.connects.at(-1).pid, pid);
  // Still in both rooms without entering again: each barrier reaches it.
  const barriers = [[r1, await sayBarrier(b, a, r1)], [r2, await sayBarrier(b, a, r2)]];
  const since = a.received.slice(heardBefore);
  assert.deepEqual(said(since), [...missed, ...barriers], "the missed events in order, once each, then the barriers");
  const offsets = a.received.map((args) => args[2]);
  assert.ok(offsets.every((o) => typeof o === "string"), "every event ends with its offset");
  assert.equal(new Set(offsets).size, offsets.length, "no offset twice");
}

/** A enters `rooms`, and hears B say something in each: its offset is the last one said. */
async function warmUp(a, b, rooms) {
  for (const room of rooms) await enter(a, room);
  for (const room of rooms) await sayBarrier(b, a, room);
}

for (const kind of recoveryKinds()) {
  describe(`connection state recovery on ${LIVE}, the ${kind} server`, () => {
    for (const transport of ["websocket", "polling"]) {
      test(`${transport}: back within the session's lifetime, recovered: same id, same rooms, exactly the missed events`, () =>
        scenario(kind, { transport }, backInTime));

      test(`${transport}: back after the session's lifetime, not recovered, sent nothing again`, () =>
        scenario(kind, { transport, maxDisconnectionMs: SHORT_SESSIONS_MS }, async ({ server, proxy, a, b }) => {
          const r1 = unique("r1");
          await warmUp(a, b, [r1]);
          const id = a.id;

          await cutOff(proxy, a, server.sawDisconnect);
          const heardBefore = a.received.length;
          for (let i = 0; i < 3; i++) await say(b, r1, `missed ${i}`);
          // The lifetime counts from when the server saw the client go (awaited by cutOff).
          await new Promise((r) => setTimeout(r, SHORT_SESSIONS_MS + 1000));
          await letBack(proxy, a);

          assert.equal(a.recovered, false);
          assert.notEqual(a.id, id, "a new socket");
          assert.notEqual(a.connects.at(-1).pid, a.connects[0].pid, "a new session");
          await enter(a, r1);
          const barrier = await sayBarrier(b, a, r1);
          assert.deepEqual(said(a.received.slice(heardBefore)), [[r1, barrier]], "nothing missed was sent");
        }));

      test(`${transport}: back after a restart of the server, not recovered, sent nothing again`, () =>
        scenario(kind, { transport }, async ({ server, proxy, a, b, clientB }) => {
          const r1 = unique("r1");
          await warmUp(a, b, [r1]);
          const id = a.id;

          await cutOff(proxy, a, server.sawDisconnect);
          const heardBefore = a.received.length;
          for (let i = 0; i < 3; i++) await say(b, r1, `missed ${i}`);
          await server.stop();
          await server.start();
          await letBack(proxy, a);

          assert.equal(a.recovered, false);
          assert.notEqual(a.id, id, "a new socket");
          await enter(a, r1);
          const barrier = await sayBarrier(await clientB(), a, r1);
          assert.deepEqual(said(a.received.slice(heardBefore)), [[r1, barrier]], "nothing of the last run was sent");
        }));
    }

    // Every default (pings of 25 s and 20 s): a polling client whose request the proxy drops
    // comes back long before a missed ping would tell the server it went. Node socket.io 4.8
    // keeps the stale socket until then, and starts a new session; chatoxide's node takes the
    // session over from the socket that had not noticed, and recovers it.
    test("polling, default pings: back before the server saw it go", () =>
      scenario(kind, { transport: "polling", pings: DEFAULT_PINGS }, async ({ proxy, a, b }) => {
        const r1 = unique("r1");
        await warmUp(a, b, [r1]);
        const id = a.id;
        await cutOff(proxy, a);
        const heardBefore = a.received.length;
        const missed = [];
        for (let i = 0; i < 3; i++) {
          missed.push([r1, `missed ${i}`]);
          await say(b, r1, `missed ${i}`);
        }
        await letBack(proxy, a);
        if (kind === "node") {
          assert.equal(a.recovered, false, "Node keeps the stale socket: a new session");
          assert.notEqual(a.id, id);
          return;
        }
        assert.equal(a.recovered, true);
        assert.equal(a.id, id, "the same socket id");
        const barrier = await sayBarrier(b, a, r1);
        assert.deepEqual(said(a.received.slice(heardBefore)), [...missed, [r1, barrier]], "the missed events once each, then the barrier");
      }));

    // Node's sessions belong to no one: a client that sends no credentials (every Node app's
    // client; a guest of a new name at each connection in chatoxide's open mode) is recovered.
    test("websocket: a client with no credentials is recovered too", () =>
      scenario(kind, { transport: "websocket", auth: {} }, backInTime));
  });
}
