// Crowds: thousands of sockets acting at the same moment, with default settings, on the
// database of this pass; and every failure answer checked against what really happened.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startServer } from "../harness/server.js";
import { backend, createDatabase, holdWriteLock, postgresAddress, via } from "../harness/database.js";
import { startProxy } from "../harness/proxy.js";
import { connectAs, command, ok, next, record, barrier, unique, closeAll } from "../harness/client.js";

/** How long a crowd test waits for anything (a guard against hanging, not a measure). */
const PATIENCE_MS = 45_000;

/** Sends a command and resolves with its acknowledgement, waiting up to PATIENCE_MS. */
function ask(socket, event, arg) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${event}`)), PATIENCE_MS);
    socket.emit(event, arg, (reply) => {
      clearTimeout(timer);
      resolve(reply);
    });
  });
}

/** `n` sockets of users `<prefix>-00000`…, connected over WebSocket, a few hundred at a time. */
async function crowd(server, prefix, n) {
  const sockets = [];
  for (let first = 0; first < n; first += 250) {
    const batch = Array.from({ length: Math.min(250, n - first) }, (_, i) =>
      connectAs(server, `${prefix}-${String(first + i).padStart(5, "0")}`, { transports: ["websocket"] }),
    );
    sockets.push(...(await Promise.all(batch)));
  }
  return sockets;
}

/** Resolves once every socket has had `event` with `text`, counting how often each had it. */
function everyoneGets(sockets, text) {
  const counts = sockets.map(() => 0);
  let missing = sockets.length;
  return {
    counts,
    all: new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${missing} sockets never got '${text}'`)), PATIENCE_MS);
      sockets.forEach((s, i) =>
        s.on("message", (m) => {
          if (m.text !== text) return;
          counts[i] += 1;
          if (counts[i] === 1 && --missing === 0) {
            clearTimeout(timer);
            resolve();
          }
        }),
      );
    }),
  };
}

/** Every member of `room`, paged with `members` as a client would (waiting when told to). */
async function allMembers(socket, room) {
  const members = [];
  let after;
  for (;;) {
    const reply = await ask(socket, "members", { room, after, limit: 100 });
    if (reply.error?.code === "rate_limited") {
      await new Promise((r) => setTimeout(r, reply.error.retry_after_ms));
      continue;
    }
    assert.equal(reply.ok, true, JSON.stringify(reply));
    members.push(...reply.members);
    if (!reply.has_more) return members;
    after = reply.members.at(-1).id;
  }
}

describe("a crowd joins one room at once (default settings)", () => {
  let server;
  before(async () => (server = await startServer()));
  after(() => server.close());

  test("2,000 joins: every one ok, the count right, the next message reaches each joiner once", async () => {
    const room = unique("stadium");
    const prefix = unique("fan");
    const host = await connectAs(server, `${prefix}-host`);
    await ok(host, "join", { room });
    const fans = await crowd(server, prefix, 2000);
    try {
      const toldOfJoins = record(host, "user_joined");
      const headcount = next(host, "member_count", (e) => e.room === room && e.member_count === 2001, PATIENCE_MS);

      const replies = await Promise.all(fans.map((s) => ask(s, "join", { room })));

      const failed = replies.filter((r) => r.ok !== true);
      assert.deepEqual(failed, [], "every join is answered ok");
      assert.equal(Math.max(...replies.map((r) => r.member_count)), 2001);
      for (const reply of replies) {
        assert.ok(reply.members.length <= 100, "a join answer lists at most 100 members");
        assert.ok(reply.members.length <= reply.member_count);
      }
      const members = await allMembers(host, room);
      assert.equal(members.length, 2001);
      assert.equal(new Set(members.map((m) => m.id)).size, 2001);
      const ids = members.map((m) => m.id);
      assert.deepEqual(ids, [...ids].sort(), "members come in user id order");

      // Past the large-room size (1,000) joins are not told one by one: the count is.
      assert.deepEqual(await headcount, { room, member_count: 2001 });
      assert.ok(toldOfJoins.length < 1000, `${toldOfJoins.length} user_joined events reached one member`);

      const text = unique("kickoff");
      const first = everyoneGets(fans, text);
      const last = everyoneGets(fans, `${text}-after`);
      await ok(host, "message", { room, text });
      await first.all;
      await ok(host, "message", { room, text: `${text}-after` });
      await last.all;
      assert.equal(first.counts.filter((n) => n !== 1).length, 0, "each joiner got the message exactly once");
    } finally {
      closeAll(host, ...fans);
    }
  });
});

describe("large rooms (a small threshold) and member lists", () => {
  let server;
  before(async () => (server = await startServer({ env: { CHATOXIDE_LARGE_ROOM: "3" } })));
  after(() => server.close());

  test("the join answer holds the first 100 members and the count; members and presence page through the rest", async () => {
    const room = unique("hall");
    const prefix = unique("guest");
    const guests = await crowd(server, prefix, 150);
    try {
      for (const g of guests) await ok(g, "join", { room });
      const ids = guests.map((_, i) => `${prefix}-${String(i).padStart(5, "0")}`);

      const again = await ok(guests[0], "join", { room });
      assert.equal(again.member_count, 150);
      assert.deepEqual(again.members.map((m) => m.id), ids.slice(0, 100));

      const page = await ok(guests[0], "members", { room });
      assert.deepEqual(page.members.map((m) => m.id), ids.slice(0, 50), "50 by default");
      assert.equal(page.has_more, true);
      const rest = await ok(guests[0], "members", { room, after: ids[49], limit: 1000 });
      assert.deepEqual(rest.members.map((m) => m.id), ids.slice(50, 150), "a larger limit is taken as 100");
      assert.equal(rest.has_more, false);
      const past = await ok(guests[0], "members", { room, after: ids[149] });
      assert.deepEqual(past, { ok: true, members: [], has_more: false });

      const online = await ok(guests[0], "presence", { room });
      assert.equal(online.online_count, 150);
      assert.deepEqual(online.users.map((u) => u.id), ids.slice(0, 100));
      assert.equal(online.has_more, true);
      guests[149].close();
      let tail;
      for (let i = 0; i < 100; i++) {
        tail = await ok(guests[0], "presence", { room, after: ids[99] });
        if (tail.online_count === 149) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(tail.online_count, 149);
      assert.deepEqual(tail.users.map((u) => u.id), ids.slice(100, 149));
      assert.equal(tail.has_more, false);
    } finally {
      closeAll(...guests);
    }
  });

  test("members: bad arguments are bad_request, a stranger is forbidden", async () => {
    const room = unique("listed");
    const member = await connectAs(server, unique("member"));
    const stranger = await connectAs(server, unique("stranger"));
    try {
      await ok(member, "join", { room });
      for (const arg of [{ room, limit: 0 }, { room, limit: 1.5 }, { room, after: "" }, { room, after: 7 }, { room: "bad room" }]) {
        assert.equal((await command(member, "members", arg)).error.code, "bad_request", JSON.stringify(arg));
      }
      assert.equal((await command(stranger, "members", { room })).error.code, "forbidden");
      assert.equal((await command(stranger, "presence", { room })).error.code, "forbidden");
    } finally {
      closeAll(member, stranger);
    }
  });

  test("up to the threshold joins, leaves and read marks are told; past it, the count once a second", async () => {
    const room = unique("growing");
    const names = [0, 1, 2, 3, 4].map((i) => unique(`p${i}`));
    const people = await Promise.all(names.map((name) => connectAs(server, name)));
    const [first, second, third, fourth, fifth] = people;
    try {
      await ok(first, "join", { room });
      const toldSecond = next(first, "user_joined");
      await ok(second, "join", { room });
      assert.deepEqual(await toldSecond, { room, user: { id: names[1], name: names[1] } });
      const toldThird = next(first, "user_joined");
      await ok(third, "join", { room });
      await toldThird;

      const joins = record(first, "user_joined");
      const leaves = record(first, "user_left");
      const reads = record(first, "read");
      const counts = record(first, "member_count");
      const fourthJoined = await ok(fourth, "join", { room });
      assert.equal(fourthJoined.member_count, 4);
      const toldFour = next(first, "member_count", (e) => e.member_count === 5, PATIENCE_MS);
      await ok(fifth, "join", { room });
      assert.deepEqual(await toldFour, { room, member_count: 5 }, "the latest count, coalesced");
      const { message } = await ok(second, "message", { room, text: "big now" });
      await ok(third, "read", { room, message_id: message.id });
      const toldLeave = next(first, "member_count", (e) => e.member_count === 4, PATIENCE_MS);
      await ok(fifth, "leave", { room });
      await toldLeave;
      assert.deepEqual(joins, []);
      assert.deepEqual(leaves, []);
      assert.deepEqual(reads, []);
      assert.ok(counts.length <= 3, `coalesced: ${counts.length} member_count events`);

      // Back at the threshold, leaves are told one by one again.
      const toldLeft = next(first, "user_left");
      await ok(fourth, "leave", { room });
      assert.equal((await toldLeft).room, room);
    } finally {
      closeAll(...people);
    }
  });
});

describe("answers tell the truth when storage fails", () => {
  let server;
  let db;
  before(async () => {
    db = await createDatabase();
    // A sender waits 0.5 s at most (0.2 s in the queue, 0.3 s for the commit).
    server = await startServer({ database: db, env: { CHATOXIDE_WRITE_DEADLINE_MS: "200", CHATOXIDE_COMMIT_TIMEOUT_MS: "300" } });
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
      // It did happen: `a` is a member, and in the room.
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
      let page;
      for (let i = 0; i < 100 && !page?.ok; i++) {
        page = await command(member, "members", { room });
        if (!page.ok) await new Promise((r) => setTimeout(r, 50));
      }
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
          const { message } = await ok(s, "message", { room, text: `mine ${i}` });
          const page = await ok(s, "history", { room, limit: 1 });
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
        const page = await ok(reader, "history", { room, before, limit: 100 });
        stored = [...page.messages, ...stored];
        if (!page.has_more) break;
        before = page.messages[0].id;
      }
      assert.deepEqual(stored.map((m) => m.text).sort(), [...texts].sort());
      for (let waited = 0; heard.length < 500 && waited < PATIENCE_MS; waited += 20) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(heard.length, 500, "each publish told to the room once");
      assert.equal(new Set(heard.map((m) => m.id)).size, 500);
    } finally {
      reader.close();
    }
  });
});

describe("a reconnect storm (default settings)", () => {
  let server;
  before(async () => (server = await startServer()));
  after(() => server.close());

  test("1,000 socket.io-client clients from one address, the server killed and restarted: all back in their room", async (t) => {
    const room = unique("storm");
    const prefix = unique("back");
    const clients = Array.from({ length: 1000 }, (_, i) =>
      io(server.url, { auth: { username: `${prefix}-${i}` }, forceNew: true }),
    );
    const connected = (socket) => (socket.connected ? Promise.resolve() : new Promise((r) => socket.once("connect", r)));
    try {
      await Promise.all(clients.map(connected));
      for (let first = 0; first < clients.length; first += 250) {
        await Promise.all(clients.slice(first, first + 250).map((c) => ok(c, "join", { room })));
      }
      const gone = clients.map((c) => new Promise((r) => c.once("disconnect", r)));

      await server.restart({ signal: "SIGKILL", samePort: true });
      await Promise.all(gone);
      const started = Date.now();
      let guard;
      await Promise.race([
        Promise.all(clients.map(connected)),
        new Promise((_, reject) => (guard = setTimeout(() => reject(new Error("not every client came back")), PATIENCE_MS))),
      ]).finally(() => clearTimeout(guard));
      const back = Date.now() - started;

      // Back in the room without joining: the next message reaches every one of them.
      const text = unique("welcome-back");
      const receivers = clients.slice(1);
      const delivered = everyoneGets(receivers, text);
      await ok(clients[0], "message", { room, text });
      await delivered.all;
      assert.equal(delivered.counts.filter((n) => n !== 1).length, 0);
      t.diagnostic(`all 1,000 back ${back} ms after the restart`);
    } finally {
      closeAll(...clients);
    }
  });
});
