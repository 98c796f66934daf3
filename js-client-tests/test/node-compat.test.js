// `--node-compat`: Node socket.io's defaults where chatoxide's are tighter (1 MB payloads, no
// per-user command limits; docs/migrating-from-node.md), explicit settings still winning.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../harness/server.js";
import { connectAs, command, ok, unique, closeAll } from "../harness/client.js";

describe("--node-compat", () => {
  let server;
  before(async () => (server = await startServer({ env: { CHATOXIDE_NODE_COMPAT: "true" } })));
  after(() => server.close());

  for (const transports of [["websocket"], ["polling"]]) {
    test(`a 500 kB payload is read and answered, the connection lives (${transports[0]})`, async () => {
      const room = unique("big");
      const s = await connectAs(server, unique("sender"), { transports });
      try {
        await ok(s, "join", { room });
        // Over chatoxide's 100 kB default (the connection would close), under Node's 1 MB: the
        // command reaches the chat, whose own text limit answers it.
        const reply = await command(s, "message", { room, text: "x".repeat(500_000) });
        assert.equal(reply.error?.code, "too_large", JSON.stringify(reply).slice(0, 200));
        await ok(s, "message", { room, text: "still connected" });
      } finally {
        s.close();
      }
    });
  }

  test("no per-user command limits: a burst of 40 messages is all stored", async () => {
    const room = unique("burst");
    const s = await connectAs(server, unique("chatty"));
    try {
      await ok(s, "join", { room });
      const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => command(s, "message", { room, text: `m${i}` })));
      assert.deepEqual(replies.filter((r) => !r.ok), []);
      const page = await ok(s, "history", { room, limit: 100 });
      assert.equal(page.messages.length, 40);
    } finally {
      s.close();
    }
  });
});

describe("--node-compat with a limit set explicitly", () => {
  let server;
  before(async () => (server = await startServer({ env: { CHATOXIDE_NODE_COMPAT: "true", CHATOXIDE_LIMIT_MESSAGE: "5:1" } })));
  after(() => server.close());

  test("the explicit limit wins over Node's none", async () => {
    const room = unique("limited");
    const s = await connectAs(server, unique("chatty"));
    try {
      await ok(s, "join", { room });
      const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => command(s, "message", { room, text: `m${i}` })));
      assert.ok(replies.filter((r) => r.ok).length <= 6, JSON.stringify(replies.map((r) => r.ok)));
      assert.ok(replies.some((r) => r.error?.code === "rate_limited"));
    } finally {
      closeAll(s);
    }
  });
});
