// A cluster: nodes on one Redis and one database. Every event reaches every node exactly once,
// presence is the same from every node, a killed node's users leave presence, and a node cut
// off from Redis keeps serving its own clients.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startCluster, eventually, PRESENCE_TTL_MS } from "../harness/cluster.js";
import { redisMissing, redisAddress } from "../harness/redis.js";
import { startProxy } from "../harness/proxy.js";
import { connectAs, ok, next, record, unique, closeAll } from "../harness/client.js";

const skip = await redisMissing();
const API_KEY = "cluster-test-key";
const EVENTS = ["message", "typing", "read", "user_joined", "user_left", "message_updated", "message_deleted"];

/** Every event of the contract on `socket`, recorded from now on (barrier messages left out). */
function recordAll(socket) {
  const seen = {};
  for (const event of EVENTS) seen[event] = record(socket, event);
  return () =>
    Object.fromEntries(
      EVENTS.map((e) => [e, seen[e].filter((p) => !String(p.text).startsWith("barrier")).length]),
    );
}

/**
 * Waits until every receiver has a fresh message from each sender. Redis delivers in publish
 * order and a node delivers its own events at once, so with one sender per node everything
 * broadcast before has reached every receiver by then.
 */
async function barrierFromEveryNode(senders, receivers, room) {
  for (const sender of senders) {
    const text = unique("barrier");
    const arrived = receivers
      .filter((r) => r !== sender)
      .map((r) => next(r, "message", (m) => m.text === text));
    await ok(sender, "message", { room, text });
    await Promise.all(arrived);
  }
}

async function presence(socket, room) {
  const { users } = await ok(socket, "presence", { room });
  return users.map((u) => u.id).sort();
}

describe("three nodes on one Redis and one database", { skip }, () => {
  let cluster;
  before(async () => (cluster = await startCluster(3, { env: { API_KEY } })));
  after(() => cluster?.close());

  test("every event reaches every member on every node exactly once", async () => {
    const [n0, n1, n2] = cluster.nodes;
    const room = unique("everywhere");
    const [alice, bob, carol, dave] = ["alice", "bob", "carol", "dave"].map(unique);
    const a0 = await connectAs(n0, alice);
    const a2 = await connectAs(n2, alice); // the same user on a second device, another node
    const b1 = await connectAs(n1, bob);
    const c2 = await connectAs(n2, carol);
    const d1 = await connectAs(n1, dave);
    try {
      for (const s of [a0, b1, c2]) await ok(s, "join", { room });
      // alice joined on node 0: her socket on node 2 is in the room without joining.
      await barrierFromEveryNode([a0, b1, c2], [a0, a2, b1, c2], room);

      const counts = new Map([a0, a2, b1, c2, d1].map((s) => [s, recordAll(s)]));
      await ok(d1, "join", { room });
      const { message } = await ok(b1, "message", { room, text: "hello cluster" });
      await ok(c2, "typing", { room, typing: true });
      await ok(a0, "read", { room, message_id: message.id });
      await ok(b1, "edit", { message_id: message.id, text: "hello cluster, edited" });
      await ok(b1, "delete", { message_id: message.id });
      const published = await n2.fetch(`/api/rooms/${room}/messages`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ user: { id: "system" }, text: "from a backend" }),
      });
      assert.equal(published.status, 200);
      await barrierFromEveryNode([a0, b1, c2, d1], [a0, a2, b1, c2, d1], room);
      await ok(d1, "leave", { room });
      await barrierFromEveryNode([a0, b1, c2], [a0, a2, b1, c2], room);

      const expected = {
        // sender socket excluded: message, typing, read, user_joined, user_left
        a0: { message: 2, typing: 1, read: 0, user_joined: 1, user_left: 1, message_updated: 1, message_deleted: 1 },
        a2: { message: 2, typing: 1, read: 1, user_joined: 1, user_left: 1, message_updated: 1, message_deleted: 1 },
        b1: { message: 1, typing: 1, read: 1, user_joined: 1, user_left: 1, message_updated: 1, message_deleted: 1 },
        c2: { message: 2, typing: 0, read: 1, user_joined: 1, user_left: 1, message_updated: 1, message_deleted: 1 },
        d1: { message: 2, typing: 1, read: 1, user_joined: 0, user_left: 0, message_updated: 1, message_deleted: 1 },
      };
      const sockets = { a0, a2, b1, c2, d1 };
      for (const [name, socket] of Object.entries(sockets)) {
        assert.deepEqual(counts.get(socket)(), expected[name], `events seen by ${name}`);
      }
    } finally {
      closeAll(a0, a2, b1, c2, d1);
    }
  });

  test("presence, history and memberships are the same from every node", async () => {
    const [n0, n1, n2] = cluster.nodes;
    const room = unique("shared");
    const [alice, bob] = [unique("alice"), unique("bob")];
    const a0 = await connectAs(n0, alice);
    const a2 = await connectAs(n2, alice);
    const b1 = await connectAs(n1, bob);
    let b0;
    try {
      await ok(a0, "join", { room });
      await ok(b1, "join", { room });
      const sent = (await ok(b1, "message", { room, text: "kept" })).message;
      for (const s of [a0, a2, b1]) assert.deepEqual(await presence(s, room), [alice, bob].sort());
      for (const s of [a0, a2, b1]) {
        const page = await ok(s, "history", { room });
        assert.deepEqual(page.messages, [sent]);
      }

      // bob on another node: back in the room without joining.
      b0 = await connectAs(n0, bob);
      const live = next(b0, "message");
      const { message } = await ok(a2, "message", { room, text: "to both of bob's sockets" });
      assert.deepEqual(await live, message);

      // Two devices on two nodes: online until the last one goes.
      a0.close();
      await barrierFromEveryNode([a2, b1], [a2, b1], room);
      assert.deepEqual(await presence(b1, room), [alice, bob].sort());
      a2.close();
      await eventually(
        async () => !(await presence(b1, room)).includes(alice),
        undefined,
        "alice offline once her last socket closed",
      );
    } finally {
      closeAll(a0, a2, b1, b0);
    }
  });

  test("a leave on one node takes the user's sockets on other nodes out of the room", async () => {
    const [n0, n1, n2] = cluster.nodes;
    const room = unique("leaving");
    const [alice, bob] = [unique("alice"), unique("bob")];
    const a0 = await connectAs(n0, alice);
    const a2 = await connectAs(n2, alice);
    const b1 = await connectAs(n1, bob);
    const x0 = await connectAs(n0, unique("witness"));
    try {
      for (const s of [a0, b1, x0]) await ok(s, "join", { room });
      await ok(a2, "leave", { room });
      const seen = record(a0, "message");
      const witnessed = next(x0, "message", (m) => m.text === "alice has left");
      const reply = await ok(b1, "message", { room, text: "alice has left" });
      await witnessed;
      // a0 shares the user room with a2 on another node: the leave reached it. Its answer
      // below comes after anything node 0 sent it along with the witness's copy.
      const refused = await a0.emitWithAck("message", { room, text: "still here?" });
      assert.equal(refused.ok, false);
      assert.equal(refused.error.code, "forbidden");
      assert.deepEqual(seen.filter((m) => m.id === reply.message.id), []);
    } finally {
      closeAll(a0, a2, b1, x0);
    }
  });
});

describe("a node killed with SIGKILL", { skip }, () => {
  let cluster;
  before(async () => (cluster = await startCluster(3)));
  after(() => cluster?.close());

  test("its users leave presence in time; they reconnect elsewhere and catch up", async () => {
    const [n0, n1, n2] = cluster.nodes;
    const room = unique("survivors");
    const [frank, eve] = [unique("frank"), unique("eve")];
    const f0 = await connectAs(n0, frank);
    let e2 = await connectAs(n2, eve);
    let e1;
    try {
      await ok(f0, "join", { room });
      await ok(e2, "join", { room });
      const seen = next(e2, "message");
      const first = (await ok(f0, "message", { room, text: "before the crash" })).message;
      assert.deepEqual(await seen, first);
      assert.deepEqual(await presence(f0, room), [eve, frank].sort());

      e2.close();
      assert.equal((await n2.stop("SIGKILL")).signal, "SIGKILL");
      // The socket closed with the process: its count never left node 2, so only the end of
      // node 2's lease (PRESENCE_TTL_MS) takes eve out of presence. Waited for with ten times
      // that as a guard: a lease that never ends fails, a busy machine does not.
      await eventually(
        async () => !(await presence(f0, room)).includes(eve),
        PRESENCE_TTL_MS * 10,
        "eve leaves presence after her node died",
      );

      const missed = [];
      for (let i = 0; i < 3; i++) {
        missed.push((await ok(f0, "message", { room, text: `while eve was away ${i}` })).message);
      }
      e1 = await connectAs(n1, eve);
      const live = next(e1, "message");
      missed.push((await ok(f0, "message", { room, text: "welcome back" })).message);
      assert.deepEqual(await live, missed.at(-1), "back in the room without joining");
      const caughtUp = await ok(e1, "join", { room, since: first.id });
      assert.deepEqual(caughtUp.missed, missed);
      assert.deepEqual(await presence(f0, room), [eve, frank].sort());
    } finally {
      closeAll(f0, e2, e1);
    }
  });
});

describe("Redis cut off and back", { skip }, () => {
  let cluster;
  let proxy;
  before(async () => {
    proxy = await startProxy(redisAddress());
    cluster = await startCluster(2, { redis: `redis://127.0.0.1:${proxy.port}` });
  });
  after(async () => {
    await cluster?.close();
    await proxy?.close();
  });

  test("local delivery never stops; cross-node delivery and presence come back", async () => {
    const [n0, n1] = cluster.nodes;
    const room = unique("outage");
    const [alice, bob, carol] = [unique("alice"), unique("bob"), unique("carol")];
    const a0 = await connectAs(n0, alice);
    const b0 = await connectAs(n0, bob);
    const c1 = await connectAs(n1, carol);
    try {
      for (const s of [a0, b0, c1]) await ok(s, "join", { room });
      await barrierFromEveryNode([a0, c1], [a0, b0, c1], room);

      proxy.cut();
      const readiness = await eventually(
        async () => {
          const res = await n0.fetch("/readyz");
          return res.status === 503 ? res.json() : undefined;
        },
        undefined,
        "/readyz names redis while it is cut off",
      );
      assert.deepEqual(readiness.failing, ["redis"]);

      for (let i = 0; i < 5; i++) {
        const text = `during the outage ${i}`;
        const arrived = next(b0, "message", (m) => m.text === text);
        const { message } = await ok(a0, "message", { room, text });
        assert.deepEqual(await arrived, message);
      }
      const typing = next(b0, "typing");
      await ok(a0, "typing", { room, typing: true });
      assert.equal((await typing).user.id, alice);
      // Node 1 serves its own client too: storage and acks do not need Redis.
      await ok(c1, "message", { room, text: "carol during the outage" });
      const metrics = await (await n0.fetch("/metrics")).text();
      assert.match(metrics, /chatoxide_fanout_fallbacks_total\{event="message"\} [1-9]/);
      assert.match(metrics, /chatoxide_redis_up 0/);

      proxy.restore();
      for (const node of [n0, n1]) {
        await eventually(async () => (await node.fetch("/readyz")).status === 200, undefined, "ready again");
      }
      await eventually(
        async () => {
          const text = unique("after the outage");
          const arrived = next(c1, "message", (m) => m.text === text, 1000).then(
            () => true,
            () => false,
          );
          await ok(a0, "message", { room, text });
          return arrived;
        },
        undefined,
        "cross-node delivery resumes",
      );
      await eventually(
        async () => (await presence(c1, room)).includes(alice),
        undefined,
        "node 0's users are back in presence on node 1",
      );
    } finally {
      closeAll(a0, b0, c1);
    }
  });
});

describe("two clusters on one Redis, under two prefixes", { skip }, () => {
  let first;
  let second;
  before(async () => {
    [first, second] = await Promise.all([startCluster(1), startCluster(1)]);
  });
  after(async () => {
    await first?.close();
    await second?.close();
  });

  test("share nothing: not events, not presence", async () => {
    assert.notEqual(first.prefix, second.prefix);
    const room = unique("same-name");
    const [alice, bob, carol] = [unique("alice"), unique("bob"), unique("carol")];
    const a = await connectAs(first.nodes[0], alice);
    const witness = await connectAs(first.nodes[0], carol);
    const b = await connectAs(second.nodes[0], bob);
    try {
      for (const s of [a, witness]) await ok(s, "join", { room });
      await ok(b, "join", { room });
      const seen = record(b, "message");
      const arrived = next(witness, "message", (m) => m.text === "only here");
      await ok(a, "message", { room, text: "only here" });
      await arrived;
      // b's own command answers after anything its node had for it.
      assert.deepEqual(await presence(b, room), [bob]);
      assert.deepEqual(seen, []);
    } finally {
      closeAll(a, witness, b);
    }
  });
});
