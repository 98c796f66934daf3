// Crowds: bursts of joins, reads, writes followed by reads, read marks and HTTP publishes at
// once, on a read pool of one connection.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../harness/server.js";
import { connectAs, ok, record, unique, closeAll, eventually } from "../harness/client.js";
import { PATIENCE_MS, ask, crowd, sure } from "../harness/crowd.js";

describe("a pool of one read connection", () => {
  let server;
  before(async () => (server = await startServer({ env: { CHATOXIDE_DATABASE_POOL: "1", API_KEY: "crowd-key" } })));
  after(() => server.close());

  test("500 joins, histories and presences at once are all served", async () => {
    const room = unique("narrow");
    const prefix = unique("n");
    const host = await connectAs(server, `${prefix}-host`);
    await ok(host, "join", { room });
    await ok(host, "message", { room, text: "hello crowd" });
    const sockets = await crowd(server, prefix, 500);
    try {
      const joins = await Promise.all(sockets.map((s) => ask(s, "join", { room })));
      assert.deepEqual(joins.filter((r) => r.ok !== true), []);
      const reads = await Promise.all(
        sockets.flatMap((s) => [ask(s, "history", { room }), ask(s, "presence", { room }), ask(s, "members", { room })]),
      );
      assert.deepEqual(reads.filter((r) => r.ok !== true), []);
      const histories = reads.filter((r) => r.messages);
      assert.ok(histories.every((h) => h.messages.some((m) => m.text === "hello crowd")));
      assert.ok(reads.filter((r) => r.online_count !== undefined).every((p) => p.online_count === 501));

      // Everyone writes, then reads the newest page at once: the pages are shared by readers
      // that ask together, yet each reader sees its own acknowledged message.
      const seen = await Promise.all(
        sockets.map(async (s, i) => {
          const { message } = await sure(s, "message", { room, text: `mine ${i}` });
          const page = await sure(s, "history", { room, limit: 1 });
          return page.messages.at(-1).id >= message.id;
        }),
      );
      assert.equal(seen.filter((yes) => !yes).length, 0, "a read after an ack sees the acknowledged message");

      // Everyone marks the newest message read at once: one batch, every mark ok.
      const newest = histories[0].messages.at(-1).id;
      const marks = await Promise.all(sockets.map((s) => ask(s, "read", { room, message_id: newest })));
      assert.deepEqual(marks.filter((r) => r.ok !== true), []);
    } finally {
      closeAll(host, ...sockets);
    }
  });

  test("500 HTTP publishes at once are all stored, once each, and told to the room", async () => {
    const room = unique("bulletin");
    const reader = await connectAs(server, unique("reader"));
    try {
      await ok(reader, "join", { room });
      const heard = record(reader, "message");
      const texts = Array.from({ length: 500 }, (_, i) => `notice ${i}`);
      const published = await Promise.all(
        texts.map((text, i) =>
          server.fetch(`/api/rooms/${room}/messages`, {
            method: "POST",
            headers: { authorization: "Bearer crowd-key", "content-type": "application/json" },
            body: JSON.stringify({ user: { id: "bot" }, text, client_id: `n-${i}` }),
          }),
        ),
      );
      assert.deepEqual(published.map((r) => r.status).filter((s) => s !== 200), []);
      const bodies = await Promise.all(published.map((r) => r.json()));
      assert.equal(new Set(bodies.map((b) => b.message.id)).size, 500);
      let stored = [];
      let before;
      for (;;) {
        const page = await sure(reader, "history", { room, before, limit: 100 });
        stored = [...page.messages, ...stored];
        if (!page.has_more) break;
        before = page.messages[0].id;
      }
      assert.deepEqual(stored.map((m) => m.text).sort(), [...texts].sort());
      await eventually(() => heard.length >= 500, PATIENCE_MS, "every publish told to the room").catch(() => {});
      assert.equal(heard.length, 500, "each publish told to the room once");
      assert.equal(new Set(heard.map((m) => m.id)).size, 500);
    } finally {
      reader.close();
    }
  });
});
