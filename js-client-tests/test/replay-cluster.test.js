// A replaying rule (the Socket.IO tutorial's) on a cluster: every node delivers the room's
// messages in the order they were stored, once each, whichever node stored them; a client that
// comes back on another node is replayed there from the store; with Redis cut off, the nodes
// still deliver each other's messages, read from the store.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startCluster } from "../harness/cluster.js";
import { redisMissing, redisAddress } from "../harness/redis.js";
import { startProxy } from "../harness/proxy.js";
import { TUTORIAL_CONFIG, tutorialClient, sendSurely, receivedAll, stored } from "../harness/replay.js";
import { unique, closeAll } from "../harness/client.js";

const skip = await redisMissing();
const env = { CHATOXIDE_CONFIG: TUTORIAL_CONFIG };

/** Each client sends `each` messages at once; resolves once all are acknowledged. */
async function everyoneSends(clients, each, tag) {
  const acks = clients.flatMap((c, i) =>
    // Two nodes on one SQLite file take turns at its lock: a write that waited too long is not
    // answered (`unavailable`, as the tutorial's server), and sent again with its key.
    Array.from({ length: each }, (_, j) => sendSurely(c, `${tag}-${i}-${j}`, `${tag}-${c.id}-${j}`)),
  );
  const answers = await Promise.all(acks);
  assert.ok(answers.every((args) => args.length === 0));
}

describe("a replaying rule on two nodes", { skip }, () => {
  let cluster;
  before(async () => {
    cluster = await startCluster(2, { env });
  });
  after(() => cluster?.close());

  test("every client on every node gets every message once, in store order; a client comes back on the other node", async () => {
    const [n0, n1] = cluster.nodes;
    const clients = [];
    try {
      for (const node of [n0, n0, n0, n1, n1, n1]) clients.push(await tutorialClient(node));
      await everyoneSends(clients, 20, unique("m"));
      const history = await stored(n0);
      assert.equal(history.length, 120);
      for (const c of clients) assert.deepEqual(await receivedAll(c, history.length), history);

      // A client of node 0 drops; more is said; it comes back on node 1 from its offset.
      const leaving = clients.shift();
      const kept = leaving.received.slice();
      leaving.close();
      await everyoneSends(clients, 5, unique("n"));
      const back = await tutorialClient(n1, { serverOffset: leaving.auth.serverOffset });
      clients.push(back);
      const now = await stored(n1);
      await receivedAll(back, now.length - kept.length);
      assert.deepEqual([...kept, ...back.received], now);
    } finally {
      closeAll(...clients);
    }
  });
});

describe("a replaying rule with Redis cut off", { skip }, () => {
  let cluster;
  let proxy;
  before(async () => {
    proxy = await startProxy(redisAddress());
    cluster = await startCluster(2, { redis: `redis://127.0.0.1:${proxy.port}`, env });
  });
  after(async () => {
    await cluster?.close();
    await proxy?.close();
  });

  test("the nodes still deliver each other's messages, read from the store, once and in order", async () => {
    const [n0, n1] = cluster.nodes;
    const a = await tutorialClient(n0);
    const b = await tutorialClient(n1);
    try {
      await sendSurely(a, unique("before"), `${a.id}-0`);
      await receivedAll(b, 1);
      proxy.cut();
      for (let i = 1; i <= 5; i++) await sendSurely(a, unique(`cut-${i}`), `${a.id}-${i}`);
      for (let i = 1; i <= 5; i++) await sendSurely(b, unique(`cut-b-${i}`), `${b.id}-${i}`);
      const history = await stored(n0);
      assert.equal(history.length, 11);
      // No notice crosses: each node looks in the store on its own, every 2 s.
      assert.deepEqual(await receivedAll(b, history.length), history);
      assert.deepEqual(await receivedAll(a, history.length), history);
    } finally {
      proxy.restore();
      closeAll(a, b);
    }
  });
});
