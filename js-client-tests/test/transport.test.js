// Transport: Socket.IO v5 over polling, WebSocket and the upgrade; v4 (socket.io-client 2.x);
// CORS.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startServer, NO_RATE_LIMITS } from "../harness/server.js";
import { connectAs, connectV2, ok, next, unique, closeAll, command } from "../harness/client.js";

let server;
// Hundreds of connections at once from one address: rate limits off (they have their own suite).
before(async () => (server = await startServer({ env: NO_RATE_LIMITS })));
after(() => server.close());

async function chatOver(optionsA, optionsB) {
  const room = unique("transport");
  const a = await connectAs(server, unique("a"), optionsA);
  const b = await connectAs(server, unique("b"), optionsB);
  try {
    await ok(a, "join", { room });
    await ok(b, "join", { room });
    const received = next(b, "message");
    const { message } = await ok(a, "message", { room, text: "over the wire" });
    assert.deepEqual(await received, message);
    return { a, b };
  } finally {
    closeAll(a, b);
  }
}

test("long-polling only: commands, acks and broadcasts", async () => {
  await chatOver({ transports: ["polling"] }, { transports: ["polling"] });
});

test("websocket only: commands, acks and broadcasts", async () => {
  await chatOver({ transports: ["websocket"] }, { transports: ["websocket"] });
});

test("a polling socket upgrades to websocket and keeps chatting", async () => {
  const socket = io(server.url, { auth: { username: unique("up") }, forceNew: true, reconnection: false });
  try {
    const opened = new Promise((resolve) =>
      socket.io.once("open", () => {
        const first = socket.io.engine.transport.name;
        socket.io.engine.once("upgrade", (transport) => resolve([first, transport.name]));
      }),
    );
    assert.deepEqual(await opened, ["polling", "websocket"]);
    const room = unique("upgraded");
    assert.equal((await ok(socket, "join", { room })).room, room);
  } finally {
    socket.close();
  }
});

test("polling and websocket clients chat with each other", async () => {
  await chatOver({ transports: ["polling"] }, { transports: ["websocket"] });
});

for (const transports of [["polling"], ["websocket"]]) {
  test(`socket.io-client 2.x over ${transports[0]} is served on the same port`, async () => {
    const room = unique("v2");
    const old = await connectV2(server, { username: unique("old") }, { transports });
    const modern = await connectAs(server, unique("new"));
    try {
      const joined = await command(old, "join", { room });
      assert.equal(joined.ok, true);
      await ok(modern, "join", { room });
      const received = next(old, "message");
      const { message } = await ok(modern, "message", { room, text: "hello old friend" });
      assert.deepEqual(await received, message);
      const reply = await command(old, "message", { room, text: "hello new friend" });
      assert.equal(reply.ok, true);
      assert.equal(reply.message.text, "hello new friend");
    } finally {
      closeAll(old, modern);
    }
  });
}

test("CORS: any origin may connect by default", async () => {
  const res = await server.fetch("/socket.io/?EIO=4&transport=polling", {
    headers: { Origin: "https://app.example" },
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
});

test("CORS: configured origins are the only ones allowed", async () => {
  const strict = await startServer({ env: { CHATOXIDE_CORS_ORIGINS: "https://app.example" } });
  try {
    const allowed = await strict.fetch("/healthz", { headers: { Origin: "https://app.example" } });
    assert.equal(allowed.headers.get("access-control-allow-origin"), "https://app.example");
    assert.equal(allowed.headers.get("access-control-allow-credentials"), "true");
    const other = await strict.fetch("/healthz", { headers: { Origin: "https://evil.example" } });
    assert.equal(other.headers.get("access-control-allow-origin"), null);
  } finally {
    await strict.close();
  }
});

test("a command sent the instant connect fires is answered (handlers are wired before connect)", async () => {
  const attempt = async (i) => {
    const socket = io(server.url, {
      auth: { username: unique("eager") },
      forceNew: true,
      reconnection: false,
      transports: i % 2 ? ["websocket"] : ["polling", "websocket"],
    });
    try {
      return await new Promise((resolve, reject) => {
        socket.once("connect_error", reject);
        socket.once("connect", () => socket.emit("join", { room: unique("eager") }, resolve));
      });
    } finally {
      socket.close();
    }
  };
  for (let batch = 0; batch < 5; batch++) {
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => attempt(i)));
    assert.equal(replies.filter((r) => r.ok === true).length, 40);
  }
});
