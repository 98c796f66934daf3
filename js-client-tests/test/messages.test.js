// message: stored before the ack, broadcast to everyone else, idempotent with client_id.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../harness/server.js";
import { connectAs, command, ok, next, record, barrier, unique, closeAll } from "../harness/client.js";

let server;
before(async () => (server = await startServer()));
after(() => server.close());

async function pair(room) {
  const [alice, bob] = [unique("alice"), unique("bob")];
  const a = await connectAs(server, alice);
  const b = await connectAs(server, bob);
  await ok(a, "join", { room });
  await ok(b, "join", { room });
  return { a, b, alice, bob };
}

test("the ack carries the stored message; everyone else gets it, the sender does not", async () => {
  const room = unique("msg");
  const { a, b, alice } = await pair(room);
  try {
    const mine = record(a, "message");
    const received = next(b, "message");
    const reply = await ok(a, "message", { room, text: "  hello, world  ", client_id: "c-17" });
    const m = reply.message;
    assert.equal(typeof m.id, "string");
    assert.equal(m.room, room);
    assert.deepEqual(m.user, { id: alice, name: alice });
    assert.equal(m.text, "hello, world", "text is trimmed");
    assert.equal(m.client_id, "c-17");
    assert.match(m.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(m.edited_at, null);
    assert.equal(m.deleted, false);
    assert.deepEqual(await received, m);
    await barrier(b, a, room);
    assert.deepEqual(mine.map((x) => x.id).includes(m.id), false);
  } finally {
    closeAll(a, b);
  }
});

test("client_id is null when not given", async () => {
  const room = unique("nocid");
  const { a, b } = await pair(room);
  try {
    assert.equal((await ok(a, "message", { room, text: "x" })).message.client_id, null);
  } finally {
    closeAll(a, b);
  }
});

test("ids sort in the order messages were stored", async () => {
  const room = unique("order");
  const { a, b } = await pair(room);
  try {
    const ids = [];
    for (let i = 0; i < 12; i++) ids.push((await ok(i % 2 ? a : b, "message", { room, text: `n${i}` })).message.id);
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(ids).size, ids.length);
  } finally {
    closeAll(a, b);
  }
});

test("the same (user, client_id) returns the first message and broadcasts nothing new", async () => {
  const room = unique("retry");
  const { a, b } = await pair(room);
  try {
    const seen = record(b, "message");
    const first = await ok(a, "message", { room, text: "only once", client_id: "retry-1" });
    const again = await ok(a, "message", { room, text: "only once", client_id: "retry-1" });
    assert.deepEqual(again.message, first.message);
    await barrier(a, b, room);
    assert.equal(seen.filter((m) => m.client_id === "retry-1").length, 1);
    const history = await ok(a, "history", { room });
    assert.equal(history.messages.filter((m) => m.client_id === "retry-1").length, 1);
  } finally {
    closeAll(a, b);
  }
});

test("concurrent retries with one client_id store one message", async () => {
  const room = unique("race");
  const { a, b } = await pair(room);
  try {
    const replies = await Promise.all(
      Array.from({ length: 8 }, () => ok(a, "message", { room, text: "racing", client_id: "race-1" })),
    );
    assert.equal(new Set(replies.map((r) => r.message.id)).size, 1);
    const history = await ok(a, "history", { room });
    assert.equal(history.messages.length, 1);
  } finally {
    closeAll(a, b);
  }
});

test("client_id is per user: another user's same key is a new message", async () => {
  const room = unique("peruser");
  const { a, b } = await pair(room);
  try {
    const one = await ok(a, "message", { room, text: "a", client_id: "shared" });
    const two = await ok(b, "message", { room, text: "b", client_id: "shared" });
    assert.notEqual(one.message.id, two.message.id);
  } finally {
    closeAll(a, b);
  }
});

test("text: blank is bad_request, over 4000 characters is too_large, 4000 is fine", async () => {
  const room = unique("limits");
  const { a, b } = await pair(room);
  try {
    for (const text of ["", "   ", "\n\t "]) {
      assert.equal((await command(a, "message", { room, text })).error.code, "bad_request");
    }
    assert.equal((await command(a, "message", { room, text: "é".repeat(4001) })).error.code, "too_large");
    assert.equal((await ok(a, "message", { room, text: ` ${"é".repeat(4000)} ` })).message.text.length, 4000);
  } finally {
    closeAll(a, b);
  }
});

test("client_id over 64 characters or not a string: bad_request", async () => {
  const room = unique("cid");
  const { a, b } = await pair(room);
  try {
    assert.equal((await command(a, "message", { room, text: "x", client_id: "c".repeat(65) })).error.code, "bad_request");
    assert.equal((await command(a, "message", { room, text: "x", client_id: 17 })).error.code, "bad_request");
    assert.equal((await ok(a, "message", { room, text: "x", client_id: "c".repeat(64) })).ok, true);
  } finally {
    closeAll(a, b);
  }
});

test("sending to a room one has not joined: forbidden, and nothing is stored", async () => {
  const room = unique("members-only");
  const { a, b } = await pair(room);
  const outsider = await connectAs(server, unique("outsider"));
  try {
    const reply = await command(outsider, "message", { room, text: "let me in" });
    assert.deepEqual(Object.keys(reply).sort(), ["error", "ok"]);
    assert.equal(reply.error.code, "forbidden");
    assert.equal((await ok(a, "history", { room })).messages.length, 0);
  } finally {
    closeAll(a, b, outsider);
  }
});

test("a failing command sent without an ack callback is answered with an error event", async () => {
  const s = await connectAs(server, unique("noack"));
  try {
    const error = next(s, "error");
    s.emit("message", { room: unique("nowhere"), text: "hello?" });
    assert.deepEqual(Object.keys(await error).sort(), ["code", "message"]);
    const badRequest = next(s, "error");
    s.emit("join", { room: "" });
    assert.equal((await badRequest).code, "bad_request");
  } finally {
    s.close();
  }
});
