// typing and read.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../harness/server.js";
import { connectAs, command, ok, next, unique, closeAll } from "../harness/client.js";

let server;
before(async () => (server = await startServer()));
after(() => server.close());

async function pair() {
  const room = unique("sig");
  const [alice, bob] = [unique("alice"), unique("bob")];
  const a = await connectAs(server, alice);
  const b = await connectAs(server, bob);
  await ok(a, "join", { room });
  await ok(b, "join", { room });
  return { room, a, b, alice, bob };
}

test("typing: answers {} and the others get { room, user, typing }", async () => {
  const { room, a, b, alice } = await pair();
  try {
    const started = next(b, "typing");
    assert.deepEqual(await ok(a, "typing", { room, typing: true }), { ok: true });
    assert.deepEqual(await started, { room, user: { id: alice, name: alice }, typing: true });
    const stopped = next(b, "typing");
    await ok(a, "typing", { room, typing: false });
    assert.equal((await stopped).typing, false);
  } finally {
    closeAll(a, b);
  }
});

test("typing: not a member is forbidden, typing must be a boolean", async () => {
  const { room, a, b } = await pair();
  const outsider = await connectAs(server, unique("outsider"));
  try {
    assert.equal((await command(outsider, "typing", { room, typing: true })).error.code, "forbidden");
    assert.equal((await command(a, "typing", { room, typing: "yes" })).error.code, "bad_request");
    assert.equal((await command(a, "typing", { room })).error.code, "bad_request");
  } finally {
    closeAll(a, b, outsider);
  }
});

test("read: answers {} and the others get { room, user, message_id }", async () => {
  const { room, a, b, bob } = await pair();
  try {
    const { message } = await ok(a, "message", { room, text: "read me" });
    const receipt = next(a, "read");
    assert.deepEqual(await ok(b, "read", { room, message_id: message.id }), { ok: true });
    assert.deepEqual(await receipt, { room, user: { id: bob, name: bob }, message_id: message.id });
  } finally {
    closeAll(a, b);
  }
});

test("read: unknown message not_found, malformed id bad_request, not a member forbidden", async () => {
  const { room, a, b } = await pair();
  const outsider = await connectAs(server, unique("outsider"));
  try {
    const { message } = await ok(a, "message", { room, text: "x" });
    const beyond = message.id.slice(0, 16) + "00000000000fffff";
    assert.equal((await command(b, "read", { room, message_id: beyond })).error.code, "not_found");
    assert.equal((await command(b, "read", { room, message_id: "zzz" })).error.code, "bad_request");
    assert.equal((await command(outsider, "read", { room, message_id: message.id })).error.code, "forbidden");
  } finally {
    closeAll(a, b, outsider);
  }
});
