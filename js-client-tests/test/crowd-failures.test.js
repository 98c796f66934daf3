// Crowds: every failure answer checked against what really happened (storage locked, cut off).
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../harness/server.js";
import { backend, createDatabase, holdWriteLock, postgresAddress, via } from "../harness/database.js";
import { startProxy } from "../harness/proxy.js";
import { connectAs, command, ok, next, record, barrier, unique, closeAll, eventually } from "../harness/client.js";

describe("answers tell the truth when storage fails", () => {
  let server;
  let db;
  before(async () => {
    db = await createDatabase();
    // A sender waits 1.3 s at most (1 s in the queue, 0.3 s for the commit): the lock is held
    // longer; once it is released, the queue has room to wait for the writer to resume.
    server = await startServer({ database: db, env: { CHATOXIDE_WRITE_DEADLINE_MS: "1000", CHATOXIDE_COMMIT_TIMEOUT_MS: "300" } });
  });
  after(() => server.close());

  test("a join stuck behind a lock answers `unknown`; it then happens, and a retry says so", async () => {
    const room = unique("locked");
    const [stuck, other] = [unique("stuck"), unique("other")];
    const a = await connectAs(server, stuck);
    const b = await connectAs(server, other);
    const lock = await holdWriteLock(db);
    let released = false;
    try {
      const reply = await command(a, "join", { room });
      assert.equal(reply.ok, false);
      assert.equal(reply.error.code, "unavailable");
      assert.equal(reply.error.outcome, "unknown", "the join may still happen: the answer says so");
      await lock.release();
      released = true;
      // It did happen: `a` is a member (the commit that outlived its answer lands once the lock
      // is gone), and in the room.
      await eventually(async () => (await command(a, "members", { room })).ok, undefined, "the stuck join landed");
      const joined = await ok(b, "join", { room });
      assert.deepEqual(joined.members.map((m) => m.id).sort(), [stuck, other].sort());
      const live = next(a, "message");
      const { message } = await ok(b, "message", { room, text: "you made it" });
      assert.deepEqual(await live, message);
      // Repeating it is safe: ok, nothing new.
      const heard = record(b, "user_joined");
      const again = await ok(a, "join", { room });
      assert.equal(again.member_count, 2);
      await barrier(a, b, room);
      assert.deepEqual(heard, []);
    } finally {
      if (!released) await lock.release();
      closeAll(a, b);
    }
  });
});

describe("a join that fails leaves no trace", { skip: backend !== "postgres" && "needs PostgreSQL behind a proxy: runs in the PostgreSQL pass" }, () => {
  let proxy;
  let server;
  before(async () => {
    const db = await createDatabase();
    proxy = await startProxy(postgresAddress());
    server = await startServer({ database: via(db, { host: "127.0.0.1", port: proxy.port }) });
    server.db = db;
  });
  after(async () => {
    await server.close();
    await proxy.close();
  });

  test("storage cut: `unavailable` (nothing happened), and the socket is not in the room", async () => {
    const room = unique("cut");
    const [inside, outside] = [unique("inside"), unique("outside")];
    const member = await connectAs(server, inside);
    const refused = await connectAs(server, outside);
    try {
      await ok(member, "join", { room });
      proxy.cut();
      const reply = await command(refused, "join", { room });
      assert.equal(reply.ok, false);
      assert.equal(reply.error.code, "unavailable");
      assert.equal(reply.error.outcome, undefined, "nothing happened, and the answer says so");
      proxy.restore();
      const page = await eventually(async () => {
        const reply = await command(member, "members", { room });
        return reply.ok && reply;
      }, undefined, "storage back");
      assert.deepEqual(page.members.map((m) => m.id), [inside]);
      const seen = record(refused, "message");
      await ok(member, "message", { room, text: "members only" });
      // `refused` joins another room and is told of it: anything sent before has arrived.
      const elsewhere = unique("elsewhere");
      await ok(refused, "join", { room: elsewhere });
      await ok(member, "join", { room: elsewhere });
      await barrier(member, refused, elsewhere);
      assert.deepEqual(seen.filter((m) => m.room === room), []);
      assert.equal((await command(refused, "message", { room, text: "let me in" })).error.code, "forbidden");
    } finally {
      closeAll(member, refused);
    }
  });
});
