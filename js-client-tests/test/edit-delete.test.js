// edit and delete: only the author; the room hears of it; deleted messages stay as tombstones.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../harness/server.js";
import { connectAs, command, ok, next, unique, closeAll } from "../harness/client.js";

let server;
before(async () => (server = await startServer()));
after(() => server.close());

async function scene() {
  const room = unique("ed");
  const author = await connectAs(server, unique("author"));
  const reader = await connectAs(server, unique("reader"));
  await ok(author, "join", { room });
  await ok(reader, "join", { room });
  const { message } = await ok(author, "message", { room, text: "first draft" });
  return { room, author, reader, message };
}

test("edit: the author's new text, edited_at set, and the whole room gets message_updated", async () => {
  const { author, reader, message } = await scene();
  try {
    const toReader = next(reader, "message_updated");
    const toAuthor = next(author, "message_updated");
    const { message: edited } = await ok(author, "edit", { message_id: message.id, text: " final " });
    assert.equal(edited.id, message.id);
    assert.equal(edited.text, "final");
    assert.equal(edited.created_at, message.created_at);
    assert.match(edited.edited_at, /Z$/);
    assert.deepEqual(await toReader, edited);
    assert.deepEqual(await toAuthor, edited);
  } finally {
    closeAll(author, reader);
  }
});

test("edit by someone else: forbidden; unknown id: not_found; bad text: bad_request / too_large", async () => {
  const { author, reader, message } = await scene();
  try {
    assert.equal((await command(reader, "edit", { message_id: message.id, text: "mine now" })).error.code, "forbidden");
    assert.equal((await command(author, "edit", { message_id: message.id.replace(/.$/, "f"), text: "x" })).error.code, "not_found");
    assert.equal((await command(author, "edit", { message_id: "nope", text: "x" })).error.code, "bad_request");
    assert.equal((await command(author, "edit", { message_id: message.id, text: "  " })).error.code, "bad_request");
    assert.equal((await command(author, "edit", { message_id: message.id, text: "x".repeat(4001) })).error.code, "too_large");
  } finally {
    closeAll(author, reader);
  }
});

test("delete: the room gets message_deleted and history keeps a tombstone without text", async () => {
  const { room, author, reader, message } = await scene();
  try {
    const toReader = next(reader, "message_deleted");
    assert.deepEqual(await ok(author, "delete", { message_id: message.id }), { ok: true, message_id: message.id });
    assert.deepEqual(await toReader, { room, message_id: message.id });
    const [tombstone] = (await ok(reader, "history", { room })).messages;
    assert.equal(tombstone.id, message.id);
    assert.equal(tombstone.room, room);
    assert.deepEqual(tombstone.user, message.user);
    assert.equal(tombstone.deleted, true);
    assert.equal(tombstone.text, undefined);
  } finally {
    closeAll(author, reader);
  }
});

test("delete by someone else: forbidden; unknown: not_found; a deleted message cannot be edited", async () => {
  const { author, reader, message } = await scene();
  try {
    assert.equal((await command(reader, "delete", { message_id: message.id })).error.code, "forbidden");
    assert.equal((await command(author, "delete", { message_id: message.id.slice(0, 16) + "00000000000fffff" })).error.code, "not_found");
    await ok(author, "delete", { message_id: message.id });
    assert.equal((await command(author, "edit", { message_id: message.id, text: "revive" })).error.code, "not_found");
  } finally {
    closeAll(author, reader);
  }
});

test("a retry with the client_id of a deleted message returns the tombstone", async () => {
  const room = unique("tomb");
  const s = await connectAs(server, unique("retrier"));
  try {
    await ok(s, "join", { room });
    const { message } = await ok(s, "message", { room, text: "oops", client_id: "tomb-1" });
    await ok(s, "delete", { message_id: message.id });
    const again = await ok(s, "message", { room, text: "oops", client_id: "tomb-1" });
    assert.equal(again.message.id, message.id);
    assert.equal(again.message.deleted, true);
  } finally {
    s.close();
  }
});
