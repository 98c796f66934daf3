// A crowd on a replaying rule (the Socket.IO tutorial's), default settings: thousands of
// messages at once, retries of some with their keys, sockets connecting from offset 0 and
// reconnecting from their last offset in the middle of it. Every message is stored once, and
// every socket receives exactly what is stored, once each, in store order: no gap and no
// duplicate at the seam between its replay and live delivery.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../harness/server.js";
import { TUTORIAL_CONFIG, tutorialClient, sendSurely, receivedAll, stored } from "../harness/replay.js";
import { PATIENCE_MS } from "../harness/crowd.js";
import { unique, closeAll } from "../harness/client.js";

const SENDERS = 200;
const EACH = 10;
const LATE = 100;

/** `n` clients, connected a hundred at a time, from `serverOffset`. */
async function clients(server, n, serverOffset = 0) {
  const all = [];
  for (let first = 0; first < n; first += 100) {
    const batch = Array.from({ length: Math.min(100, n - first) }, () =>
      tutorialClient(server, { serverOffset, retries: 0, ackTimeout: PATIENCE_MS }),
    );
    all.push(...(await Promise.all(batch)));
  }
  return all;
}

/**
 * Every sender sends `each` messages at once, and resends its first with the same key. One not
 * answered (storage too busy: `unavailable` is left unanswered so that the client retries) is
 * sent again with its key, as the tutorial's page does.
 */
function burst(senders, each, tag) {
  const texts = [];
  const acks = [];
  for (const [s, socket] of senders.entries()) {
    for (let i = 0; i < each; i++) {
      const text = `${tag}-${s}-${i}`;
      texts.push(text);
      acks.push(sendSurely(socket, text, `${tag}-${socket.id}-${i}`, PATIENCE_MS / 3));
    }
    acks.push(sendSurely(socket, `${tag}-${s}-0`, `${tag}-${socket.id}-0`, PATIENCE_MS / 3));
  }
  return { texts, acks: Promise.all(acks) };
}

describe("a crowd on a replaying rule, default settings", () => {
  let server;
  before(async () => {
    server = await startServer({ args: ["--config", TUTORIAL_CONFIG] });
  });
  after(() => server.close());

  test(`${SENDERS * EACH} messages at once while ${LATE} sockets connect from 0, then a reconnect storm`, async () => {
    const senders = await clients(server, SENDERS);
    let late = [];
    let returning = [];
    try {
      const first = burst(senders, EACH, unique("a"));
      const lateJoins = clients(server, LATE);
      const acks = await first.acks;
      late = await lateJoins;
      assert.ok(acks.every((args) => args.length === 0), "every message acknowledged with no value");
      let history = await stored(server);
      assert.equal(history.length, first.texts.length, "each stored once, retries included");
      assert.deepEqual(new Set(history.map(([t]) => t)), new Set(first.texts));
      for (const socket of [...senders, ...late]) {
        assert.deepEqual(await receivedAll(socket, history.length, PATIENCE_MS), history);
      }

      // Half of the late ones drop and come back from their offset while the senders send again.
      const leaving = late.slice(0, LATE / 2);
      const offsets = leaving.map((s) => s.auth.serverOffset);
      const kept = leaving.map((s) => s.received.slice());
      leaving.forEach((s) => s.close());
      const second = burst(senders, EACH, unique("b"));
      returning = await Promise.all(offsets.map((serverOffset) => tutorialClient(server, { serverOffset, retries: 0 })));
      assert.ok((await second.acks).every((args) => args.length === 0));
      history = await stored(server);
      assert.equal(history.length, first.texts.length + second.texts.length);
      for (const socket of [...senders, ...late.slice(LATE / 2)]) {
        assert.deepEqual(await receivedAll(socket, history.length, PATIENCE_MS), history);
      }
      for (const [i, socket] of returning.entries()) {
        const missed = history.length - kept[i].length;
        await receivedAll(socket, missed, PATIENCE_MS);
        assert.deepEqual([...kept[i], ...socket.received], history, "what it had, then exactly what it missed");
      }
    } finally {
      closeAll(...senders, ...late, ...returning);
    }
  });
});
