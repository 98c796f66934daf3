// socket.io-client 2.x (Engine.IO 3, identity in the query string) through every row of the
// contract it can speak, over long-polling and over WebSocket, beside a 4.x client in the same
// rooms: commands with their acks, every event, the `error` event of an ack-less command, a
// refused connect, and a binary attachment.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../harness/server.js";
import { connectAs, connectV2, command, ok, next, unique, closeAll } from "../harness/client.js";

let server;
before(async () => (server = await startServer()));
after(() => server.close());

for (const transports of [["polling"], ["websocket"]]) {
  describe(`socket.io-client 2.x over ${transports[0]}`, () => {
    test("join, message, history, edit, delete, typing, read, presence, leave", async () => {
      const room = unique("v2room");
      const oldName = unique("old");
      const old = await connectV2(server, { username: oldName }, { transports });
      const modernName = unique("new");
      const modern = await connectAs(server, modernName);
      try {
        await ok(modern, "join", { room });
        const joinedSeen = next(modern, "user_joined");
        const joined = await ok(old, "join", { room });
        assert.deepEqual(joined.members.map((u) => u.id).sort(), [oldName, modernName].sort());
        assert.deepEqual(await joinedSeen, { room, user: { id: oldName, name: oldName } });

        // message: ack after storage, the event to the others, an idempotent retry
        const seen = next(modern, "message");
        const { message } = await ok(old, "message", { room, text: " from 2.x ", client_id: "v2-1" });
        assert.equal(message.text, "from 2.x");
        assert.equal(message.user.id, oldName);
        assert.deepEqual(await seen, message);
        const retry = await ok(old, "message", { room, text: "from 2.x", client_id: "v2-1" });
        assert.equal(retry.message.id, message.id);
        const fromModern = next(old, "message");
        const other = (await ok(modern, "message", { room, text: "to 2.x" })).message;
        assert.deepEqual(await fromModern, other);

        const page = await ok(old, "history", { room, limit: 10 });
        assert.deepEqual(page.messages.map((m) => m.id), [message.id, other.id]);
        assert.equal(page.has_more, false);

        const updated = next(modern, "message_updated");
        const edited = (await ok(old, "edit", { message_id: message.id, text: "edited" })).message;
        assert.equal(edited.text, "edited");
        assert.deepEqual(await updated, edited);
        const deletedSeen = next(modern, "message_deleted");
        assert.deepEqual(await ok(old, "delete", { message_id: message.id }), { ok: true, message_id: message.id });
        assert.deepEqual(await deletedSeen, { room, message_id: message.id });

        const typing = next(modern, "typing");
        await ok(old, "typing", { room, typing: true });
        assert.deepEqual(await typing, { room, user: { id: oldName, name: oldName }, typing: true });
        const read = next(modern, "read");
        await ok(old, "read", { room, message_id: other.id });
        assert.deepEqual(await read, { room, user: { id: oldName, name: oldName }, message_id: other.id });

        const presence = await ok(old, "presence", { room });
        assert.deepEqual(presence.users.map((u) => u.id).sort(), [oldName, modernName].sort());

        const left = next(modern, "user_left");
        assert.deepEqual(await ok(old, "leave", { room }), { ok: true, room });
        assert.deepEqual(await left, { room, user: { id: oldName, name: oldName } });
      } finally {
        closeAll(old, modern);
      }
    });

    test("errors: an ack-less command that fails gets an `error` event; a bad name is refused", async () => {
      const old = await connectV2(server, { username: unique("old") }, { transports });
      try {
        const error = next(old, "error");
        old.emit("message", { room: unique("not-joined"), text: "hi" });
        assert.equal((await error).code, "forbidden");
        const reply = await command(old, "history", { room: "" });
        assert.equal(reply.error.code, "bad_request");
      } finally {
        old.close();
      }
      await assert.rejects(connectV2(server, { username: "x".repeat(65) }, { transports }));
    });

    test("a binary attachment is parsed and answered through the ack", async () => {
      const room = unique("v2bin");
      const old = await connectV2(server, { username: unique("old") }, { transports });
      try {
        await ok(old, "join", { room });
        const reply = await command(old, "message", { room, text: Buffer.from("binary") });
        assert.equal(reply.error.code, "bad_request");
        await ok(old, "message", { room, text: "still served" });
      } finally {
        old.close();
      }
    });
  });
}
