// The outbox (issue 20): with CHATOXIDE_OUTBOX_URL set, every stored message, edit and delete is
// published on the broker after its commit, in each room's order, once per stable id (a message's
// own id); a broker out of reach delays the events and never chat; a crash loses nothing; on a
// cluster one node publishes and another takes over when it dies. On NATS JetStream and on
// RabbitMQ, on the suite's database (TEST_DB).
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { metric, startServer, NO_RATE_LIMITS } from "../harness/server.js";
import { startCluster } from "../harness/cluster.js";
import { redisMissing } from "../harness/redis.js";
import { startProxy } from "../harness/proxy.js";
import { connectAs, ok, unique, closeAll, eventually } from "../harness/client.js";
import { BROKERS, brokerAddress, brokerMissing, brokerUrlVia, consume } from "../harness/brokers.js";

/** A prefix of the test's own: subjects, stream and exchange names take letters, digits, _ and -. */
const freshPrefix = () => unique("outbox").replace(/[^A-Za-z0-9_-]/g, "_");

const outboxEnv = (url, prefix) => ({ CHATOXIDE_OUTBOX_URL: url, CHATOXIDE_OUTBOX_PREFIX: prefix });

/** Sends `count` messages from `socket` to `room` at once; resolves with the stored messages. */
async function burst(socket, room, count, tag) {
  const acks = await Promise.all(Array.from({ length: count }, (_, i) => ok(socket, "message", { room, text: `${tag} ${i}` })));
  return acks.map((a) => a.message);
}

/** The `message` events of `received`, by room, in the order they arrived: their message ids. */
function perRoom(received) {
  const rooms = new Map();
  for (const r of received.filter((r) => r.event === "message")) {
    if (!rooms.has(r.room)) rooms.set(r.room, []);
    rooms.get(r.room).push(r.messageId);
  }
  return rooms;
}

/** Every id of `stored` arrived, each room's in the order stored, none twice with another id. */
function assertPublishedInOrder(received, stored, what) {
  const arrived = perRoom(received);
  const byRoom = new Map();
  for (const m of stored) {
    if (!byRoom.has(m.room)) byRoom.set(m.room, []);
    byRoom.get(m.room).push(m.id);
  }
  for (const [room, ids] of byRoom) {
    const firsts = [...new Set(arrived.get(room) ?? [])];
    assert.deepEqual(firsts, [...ids].sort(), `${what}: room ${room}, every message once, in the order stored`);
  }
}

for (const kind of ["nats", "amqp"]) {
  const skip = await brokerMissing(kind);

  describe(`the outbox on ${kind}, default settings`, { skip }, () => {
    let server, consumer, prefix;
    before(async () => {
      prefix = freshPrefix();
      consumer = await consume(kind, prefix);
      server = await startServer({ env: { ...outboxEnv(BROKERS[kind].url, prefix), API_KEY: "outbox-key" } });
    });
    after(async () => {
      await server?.close();
      await consumer?.close();
    });

    test("a crowd's messages, an edit, a delete and a published message: each once, in each room's order, with its stable id", async () => {
      const [general, other] = [unique("general"), unique("other")];
      const users = await Promise.all(Array.from({ length: 10 }, () => connectAs(server, unique("u"))));
      try {
        await Promise.all(users.map((u) => ok(u, "join", { room: general })));
        await Promise.all(users.slice(0, 5).map((u) => ok(u, "join", { room: other })));
        // The default limit takes a burst of 20 messages per user: 10 users send 15 each at once.
        const stored = (
          await Promise.all(users.map((u, i) => burst(u, i < 5 ? other : general, 15, `u${i}`)))
        ).flat();
        const { message: edited } = await ok(users[0], "edit", { message_id: stored[0].id, text: "edited" });
        await ok(users[0], "delete", { message_id: stored[1].id });
        const res = await server.fetch(`/api/rooms/${general}/messages`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: "Bearer outbox-key" },
          body: JSON.stringify({ user: { id: "backend" }, text: "from a backend" }),
        });
        assert.equal(res.status, 200);
        const { message: posted } = await res.json();
        const expected = stored.length + 3;
        await eventually(() => consumer.received.length >= expected, 30_000, () => `${consumer.received.length} of ${expected} published`);
        assertPublishedInOrder(consumer.received, [...stored, posted], kind);
        const message = consumer.received.find((r) => r.messageId === stored[2].id);
        assert.deepEqual(message.data, stored[2], "data: the message, as the `message` event carries it");
        assert.equal(message.id, stored[2].id, "a message's stable id is its own id");
        assert.equal(message.header, stored[2].id, kind === "nats" ? "Nats-Msg-Id" : "the AMQP message_id");
        const update = consumer.received.find((r) => r.event === "message_updated");
        assert.deepEqual(update.data, edited);
        assert.equal(update.messageId, stored[0].id);
        const deletion = consumer.received.find((r) => r.event === "message_deleted");
        assert.deepEqual(deletion.data, { room: stored[1].room, message_id: stored[1].id });
        assert.equal(new Set(consumer.received.map((r) => r.id)).size, expected, "stable ids are unique");
        assert.equal(await consumer.stored(), expected);
        assert.equal(await metric(server, "chatoxide_outbox_lag_seconds"), 0, "nothing waits");
        assert.ok((await metric(server, "chatoxide_outbox_published_total")) >= expected);
        assert.equal(await metric(server, "chatoxide_outbox_relay"), 1, "the only node relays");
      } finally {
        closeAll(...users);
      }
    });
  });

  describe(`the outbox on ${kind}, through failures`, { skip }, () => {
    test("the broker out of reach: chat goes on, the lag grows, then everything drains in order", async () => {
      const prefix = freshPrefix();
      const consumer = await consume(kind, prefix);
      const proxy = await startProxy(brokerAddress(kind));
      const server = await startServer({ env: { ...outboxEnv(brokerUrlVia(kind, proxy.port), prefix), ...NO_RATE_LIMITS } });
      const alice = await connectAs(server, unique("alice"));
      try {
        const room = unique("cut");
        await ok(alice, "join", { room });
        const before = await burst(alice, room, 20, "before");
        await eventually(() => consumer.received.length >= 20, 20_000, () => `${consumer.received.length} of 20 before the cut`);
        proxy.cut();
        const during = await burst(alice, room, 200, "during");
        assert.equal(during.length, 200, "chat goes on: every message acknowledged");
        await eventually(async () => (await metric(server, "chatoxide_outbox_lag_seconds")) >= 1, 20_000, "the lag growing");
        assert.ok((await metric(server, 'chatoxide_outbox_failures_total{op="connect"}')) + (await metric(server, 'chatoxide_outbox_failures_total{op="publish"}')) > 0);
        const heardDuringCut = consumer.received.length;
        proxy.restore();
        const all = [...before, ...during];
        await eventually(() => new Set(consumer.received.map((r) => r.id)).size >= all.length, 30_000, () => `${consumer.received.length} of ${all.length} after the cut`);
        assertPublishedInOrder(consumer.received, all, `${kind} after the cut`);
        assert.ok(heardDuringCut < all.length, "nothing reached the broker while it was cut off");
        await eventually(async () => (await metric(server, "chatoxide_outbox_lag_seconds")) === 0, 10_000, "the lag back to 0");
      } finally {
        alice.close();
        await server.close();
        await proxy.close();
        await consumer.close();
      }
    });

    test("kill -9 while publishing: nothing acknowledged is lost, a repeat has the same id", async () => {
      const prefix = freshPrefix();
      const consumer = await consume(kind, prefix);
      const server = await startServer({ env: { ...outboxEnv(BROKERS[kind].url, prefix), ...NO_RATE_LIMITS } });
      try {
        const alice = await connectAs(server, unique("alice"));
        const room = unique("crash");
        await ok(alice, "join", { room });
        const stored = (await Promise.all(Array.from({ length: 5 }, (_, i) => burst(alice, room, 100, `b${i}`)))).flat();
        await server.stop("SIGKILL");
        alice.close();
        const published = new Set(consumer.received.map((r) => r.id)).size;
        await server.start();
        await eventually(() => new Set(consumer.received.map((r) => r.id)).size >= stored.length, 30_000, () => `${new Set(consumer.received.map((r) => r.id)).size} of ${stored.length} after the restart (${published} before it)`);
        assertPublishedInOrder(consumer.received, stored, `${kind} after kill -9`);
        const extra = consumer.received.filter((r) => !stored.some((m) => m.id === r.id));
        assert.deepEqual(extra, [], "nothing but the stored messages");
        if (kind === "nats") assert.equal(await consumer.stored(), stored.length, "JetStream keeps each once");
      } finally {
        await server.close();
        await consumer.close();
      }
    });
  });

  const skipCluster = skip || (await redisMissing());
  describe(`the outbox on ${kind}, two nodes`, { skip: skipCluster }, () => {
    test("one node publishes; when it dies the other takes over, and nothing is lost", async () => {
      const prefix = freshPrefix();
      const consumer = await consume(kind, prefix);
      const cluster = await startCluster(2, { env: { ...outboxEnv(BROKERS[kind].url, prefix), ...NO_RATE_LIMITS } });
      const sockets = [];
      try {
        const [a, b] = cluster.nodes;
        await eventually(async () => (await metric(a, "chatoxide_outbox_relay")) + (await metric(b, "chatoxide_outbox_relay")) === 1, 15_000, "one relay");
        const holders = [await metric(a, "chatoxide_outbox_relay"), await metric(b, "chatoxide_outbox_relay")];
        const [holder, other] = holders[0] === 1 ? [a, b] : [b, a];
        const room = unique("pair");
        for (const node of [holder, other]) {
          const s = await connectAs(node, unique("u"));
          sockets.push(s);
          await ok(s, "join", { room });
        }
        const first = [...(await burst(sockets[0], room, 50, "holder")), ...(await burst(sockets[1], room, 50, "other"))];
        await eventually(() => new Set(consumer.received.map((r) => r.id)).size >= first.length, 20_000, "the first 100");
        assert.equal(await metric(other, "chatoxide_outbox_published_total"), 0, "the node without the lease publishes nothing");
        await holder.stop("SIGKILL");
        const second = await burst(sockets[1], room, 50, "after");
        await eventually(async () => (await metric(other, "chatoxide_outbox_relay")) === 1, 20_000, "the other node taking the lease");
        const all = [...first, ...second];
        await eventually(() => new Set(consumer.received.map((r) => r.id)).size >= all.length, 20_000, () => `${new Set(consumer.received.map((r) => r.id)).size} of ${all.length}`);
        assertPublishedInOrder(consumer.received, all, `${kind} across the takeover`);
      } finally {
        closeAll(...sockets);
        await cluster.close();
        await consumer.close();
      }
    });
  });
}
