// The room feed (issue 20): GET /api/rooms/{room}/events, a room's `message`, `message_updated`
// and `message_deleted` as Server-Sent Events (`id:` the message id, `event:` the event, `data:`
// the Socket.IO event's JSON), resumed by `Last-Event-ID` or `?since=` from the store with
// nothing missed and nothing twice, with the history page's credentials; a reader that falls
// behind is cut and comes back from where it got to; on a cluster, events from every node.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import jwt from "jsonwebtoken";
import { metric, startServer, NO_RATE_LIMITS } from "../harness/server.js";
import { startCluster } from "../harness/cluster.js";
import { redisMissing } from "../harness/redis.js";
import { connect, connectAs, ok, unique, closeAll, eventually } from "../harness/client.js";
import { openFeed } from "../harness/sse.js";

const feedOf = (server, room, headers, query = "") => openFeed(`${server.url}/api/rooms/${room}/events${query}`, headers);
const said = (events) => events.map(({ event, id, data }) => [event, id, data.text ?? data.message_id]);

/** `user` joins `room` (made if new) and says each of `texts`; resolves with the stored messages. */
async function say(socket, room, texts) {
  const messages = [];
  for (const text of texts) messages.push((await ok(socket, "message", { room, text })).message);
  return messages;
}

describe("the room feed, default settings, open mode", () => {
  let server, alice;
  before(async () => {
    server = await startServer();
    alice = await connectAs(server, unique("alice"));
  });
  after(async () => {
    closeAll(alice);
    await server.close();
  });

  test("live: every stored event of the room, in order, as the Socket.IO events carry them", async () => {
    const room = unique("live");
    await ok(alice, "join", { room });
    const feed = await feedOf(server, room);
    try {
      assert.equal(feed.status, 200);
      assert.match(feed.headers.get("content-type"), /^text\/event-stream/);
      const [first, second] = await say(alice, room, ["one", "two"]);
      const { message: edited } = await ok(alice, "edit", { message_id: first.id, text: "one, edited" });
      await ok(alice, "delete", { message_id: second.id });
      await say(alice, room, ["three"]);
      const events = await feed.next(5);
      assert.deepEqual(
        events.map(({ event, id }) => [event, id]),
        [
          ["message", first.id],
          ["message", second.id],
          ["message_updated", first.id],
          ["message_deleted", second.id],
          ["message", events[4].data.id],
        ],
      );
      assert.deepEqual(events[0].data, first, "data: the message, as the `message` event carries it");
      assert.deepEqual(events[2].data, edited, "the edited message");
      assert.deepEqual(events[3].data, { room, message_id: second.id });
      assert.equal(events[4].data.text, "three");
    } finally {
      feed.close();
    }
  });

  test("another room's events do not reach the feed", async () => {
    const [room, other] = [unique("mine"), unique("other")];
    await ok(alice, "join", { room });
    await ok(alice, "join", { room: other });
    const feed = await feedOf(server, room);
    try {
      await say(alice, other, ["not here"]);
      const [mine] = await say(alice, room, ["here"]);
      const [event] = await feed.next(1);
      assert.equal(event.id, mine.id);
      assert.equal(feed.events.length, 1);
    } finally {
      feed.close();
    }
  });

  test("Last-Event-ID resumes with exactly what was missed, then live; ?since= the same", async () => {
    const room = unique("resume");
    await ok(alice, "join", { room });
    const first = await feedOf(server, room);
    const before = await say(alice, room, ["a", "b"]);
    const seen = await first.next(2);
    first.close();
    const missed = await say(alice, room, ["c", "d", "e"]);
    for (const resume of [
      (r) => feedOf(server, r, { "last-event-id": seen.at(-1).id }),
      (r) => feedOf(server, r, {}, `?since=${seen.at(-1).id}`),
    ]) {
      const again = await resume(room);
      try {
        assert.deepEqual(said(await again.next(missed.length)), missed.map((m) => ["message", m.id, m.text]));
        const [live] = await say(alice, room, ["live"]);
        const [event] = await again.next(1);
        assert.equal(event.id, live.id);
        missed.push(live);
      } finally {
        again.close();
      }
    }
    assert.deepEqual(seen.map((e) => e.id), before.map((m) => m.id));
  });

  test("a crowd at the seam: 300 messages sent while a reader resumes, each exactly once, in order", async () => {
    const room = unique("seam");
    const senders = await Promise.all(Array.from({ length: 10 }, () => connectAs(server, unique("s"))));
    try {
      await Promise.all(senders.map((s) => ok(s, "join", { room })));
      const [mark] = await say(senders[0], room, ["mark"]);
      // The default limit allows a burst of 20 messages per user: 10 users × 30 over ~2 s.
      const sending = Promise.all(
        senders.map(async (s, i) => {
          const stored = [];
          for (let j = 0; j < 30; j++) {
            const ack = await s.timeout(10_000).emitWithAck("message", { room, text: `${i}-${j}` });
            if (ack.ok) stored.push(ack.message.id);
            else if (ack.error.code === "rate_limited") await new Promise((r) => setTimeout(r, 250));
            else assert.fail(`message refused: ${JSON.stringify(ack)}`);
          }
          return stored;
        }),
      );
      await new Promise((r) => setTimeout(r, 20));
      const feed = await feedOf(server, room, { "last-event-id": mark.id });
      try {
        const stored = (await sending).flat().sort();
        await eventually(() => feed.events.length >= stored.length, 20_000, () => `${feed.events.length} of ${stored.length} events`);
        await new Promise((r) => setTimeout(r, 200));
        const ids = feed.events.map((e) => e.id);
        assert.deepEqual(ids, [...ids].sort(), "in the order they were stored");
        assert.deepEqual(ids, stored, "every acknowledged message once, nothing else");
      } finally {
        feed.close();
      }
    } finally {
      closeAll(...senders);
    }
  });

  test("a crowd of 500 readers opening at once: each hears every message once, in order", async () => {
    const room = unique("crowd");
    await ok(alice, "join", { room });
    const feeds = await Promise.all(Array.from({ length: 500 }, () => feedOf(server, room)));
    try {
      assert.deepEqual([...new Set(feeds.map((f) => f.status))], [200]);
      const sent = await say(alice, room, ["one", "two", "three"]);
      await Promise.all(feeds.map((f) => f.next(3, 20_000)));
      for (const f of feeds) assert.deepEqual(f.events.map((e) => e.id), sent.map((m) => m.id));
      assert.ok((await metric(server, "chatoxide_sse_streams")) >= 500, "each feed counted while open");
    } finally {
      feeds.forEach((f) => f.close());
    }
    await eventually(async () => (await metric(server, "chatoxide_sse_streams")) === 0, 10_000, "every feed closed");
  });

  test("bad resume points and rooms are refused with the contract's errors", async () => {
    const room = unique("bad");
    await ok(alice, "join", { room });
    const [m] = await say(alice, room, ["x"]);
    const otherRoom = unique("other");
    await ok(alice, "join", { room: otherRoom });
    const [elsewhere] = await say(alice, otherRoom, ["y"]);
    for (const [what, feed] of [
      ["a malformed Last-Event-ID", await feedOf(server, room, { "last-event-id": "nope" })],
      ["a malformed ?since=", await feedOf(server, room, {}, "?since=zz")],
      ["an invalid room name", await feedOf(server, "x".repeat(300))],
    ]) {
      assert.equal(feed.status, 400, what);
      assert.equal(feed.body.ok, false, what);
      assert.equal(feed.body.error.code, "bad_request", what);
    }
    // As for the history page's cursors: another room's id names no message of this one.
    for (const [what, feed] of [
      ["an id of another room", await feedOf(server, room, { "last-event-id": elsewhere.id })],
      ["a room that does not exist", await feedOf(server, unique("nowhere"))],
    ]) {
      assert.equal(feed.status, 404, what);
      assert.equal(feed.body.error.code, "not_found", what);
    }
    const fine = await feedOf(server, room, {}, `?since=${m.id}`);
    assert.equal(fine.status, 200, "the same room's id resumes");
    fine.close();
  });

  test("shutdown ends every feed, and the server exits promptly", async () => {
    const own = await startServer();
    const s = await connectAs(own, unique("bob"));
    const room = unique("bye");
    await ok(s, "join", { room });
    const feed = await feedOf(own, room);
    const [m] = await say(s, room, ["last words"]);
    await feed.next(1);
    s.close();
    const started = Date.now();
    const { code } = await own.stop("SIGTERM");
    await feed.ended;
    assert.equal(code, 0);
    assert.ok(Date.now() - started < 10_000, "it did not wait out the grace period for the feed");
    assert.equal(feed.events.at(-1).id, m.id);
    await own.close();
  });
});

describe("the room feed in token mode, with an API key", () => {
  const secret = "room-feed-secret";
  const key = "room-feed-key";
  const sign = (sub, ttl = 300) => jwt.sign({ sub, exp: Math.floor(Date.now() / 1000) + ttl }, secret, { algorithm: "HS256" });
  let server, room, member, first, message;
  before(async () => {
    server = await startServer({ env: { JWT_SECRET: secret, API_KEY: key } });
    room = unique("members");
    member = sign(unique("member"));
    const socket = await connect(server, { token: member });
    await ok(socket, "join", { room });
    [first, message] = await say(socket, room, ["before", "for members"]);
    socket.close();
  });
  after(() => server.close());

  test("no credentials: 401; another user's token: 403; the member and the API key read", async () => {
    const none = await feedOf(server, room);
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, "unauthorized");
    const stranger = await feedOf(server, room, { authorization: `Bearer ${sign(unique("stranger"))}` });
    assert.equal(stranger.status, 403);
    assert.equal(stranger.body.error.code, "forbidden");
    const forged = await feedOf(server, room, { authorization: "Bearer not-a-token" });
    assert.equal(forged.status, 401);
    for (const credential of [member, key]) {
      const feed = await feedOf(server, room, { authorization: `Bearer ${credential}` }, `?since=${first.id}`);
      try {
        assert.equal(feed.status, 200);
        const [event] = await feed.next(1);
        assert.deepEqual(event.data, message);
      } finally {
        feed.close();
      }
    }
  });

  test("a member's feed ends when its token expires (with the default leeway), as a socket's session does", async () => {
    const user = unique("brief");
    const token = sign(user, 1);
    const socket = await connect(server, { token });
    const own = unique("brief-room");
    await ok(socket, "join", { room: own });
    socket.close();
    const feed = await feedOf(server, own, { authorization: `Bearer ${token}` });
    assert.equal(feed.status, 200);
    const started = Date.now();
    await Promise.race([feed.ended, new Promise((_, reject) => setTimeout(() => reject(new Error("still open after 15 s")), 15_000))]);
    assert.ok(Date.now() - started >= 1000, "not before the token's expiry");
    assert.ok((await metric(server, 'chatoxide_sse_cuts_total{why="expired"}')) >= 1, "counted as expired");
  });
});

describe("a reader that does not keep up, rate limits off to fill its connection", () => {
  let server;
  before(async () => (server = await startServer({ env: NO_RATE_LIMITS })));
  after(() => server.close());

  test("is cut rather than buffered for, and comes back from where it got to with nothing lost", async () => {
    const room = unique("slow");
    const alice = await connectAs(server, unique("alice"));
    try {
      await ok(alice, "join", { room });
      const [mark] = await say(alice, room, ["mark"]);
      const slow = await rawFeed(server, room, mark.id);
      slow.socket.pause();
      // ≈ 17 MB of events: more than the two ends' socket buffers and the feed's backlog.
      const text = "x".repeat(4000);
      const stored = [];
      for (let batch = 0; batch < 40; batch++) {
        const acks = await Promise.all(Array.from({ length: 100 }, () => ok(alice, "message", { room, text })));
        stored.push(...acks.map((a) => a.message.id));
      }
      stored.sort(); // the order they were stored in, which concurrent sends need not keep
      slow.socket.resume();
      await slow.ended;
      const got = slow.ids();
      assert.ok(got.length < stored.length, `cut before the end (${got.length} of ${stored.length})`);
      assert.deepEqual(got, stored.slice(0, got.length), "what it got, in order, without a gap");
      assert.ok((await metric(server, 'chatoxide_sse_cuts_total{why="slow"}')) >= 1, "counted as slow");
      const back = await feedOf(server, room, { "last-event-id": got.at(-1) });
      try {
        const rest = await back.next(stored.length - got.length, 30_000);
        assert.deepEqual(rest.map((e) => e.id), stored.slice(got.length), "the rest, from the store");
      } finally {
        back.close();
      }
    } finally {
      alice.close();
    }
  });
});

/**
 * A feed read over a raw TCP socket, so that the test can stop reading (`socket.pause()`) and
 * let the connection fill. `ids()` parses what arrived; `ended` resolves when the server closed it.
 */
async function rawFeed(server, room, since) {
  const socket = net.connect(server.port, "127.0.0.1");
  const chunks = [];
  await new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  socket.write(`GET /api/rooms/${room}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: ${since}\r\nConnection: close\r\n\r\n`);
  await new Promise((resolve) => socket.once("data", (c) => resolve(chunks.push(c))));
  socket.on("data", (c) => chunks.push(c));
  const ended = new Promise((resolve) => socket.once("end", resolve).once("close", resolve));
  return {
    socket,
    ended,
    ids: () => [...Buffer.concat(chunks).toString("utf8").matchAll(/^id: ?(\S+)$/gm)].map((m) => m[1]),
  };
}

const skipCluster = await redisMissing();

describe("the room feed on a cluster", { skip: skipCluster }, () => {
  let cluster;
  before(async () => (cluster = await startCluster(2)));
  after(() => cluster?.close());

  test("a feed on one node hears what is stored through the other, and resumes on either", async () => {
    const [a, b] = cluster.nodes;
    const room = unique("cluster");
    const alice = await connectAs(a, unique("alice"));
    try {
      await ok(alice, "join", { room });
      const onB = await feedOf(b, room);
      const sent = await say(alice, room, ["one", "two", "three"]);
      const heard = await onB.next(3);
      onB.close();
      assert.deepEqual(heard.map((e) => e.id), sent.map((m) => m.id));
      const { message: edited } = await ok(alice, "edit", { message_id: sent[0].id, text: "uno" });
      const later = await say(alice, room, ["four"]);
      const onA = await feedOf(a, room, { "last-event-id": sent[1].id });
      try {
        const events = await onA.next(2);
        assert.deepEqual(said(events), [["message", sent[2].id, "three"], ["message", later[0].id, "four"]]);
        const again = await feedOf(b, room, { "last-event-id": later[0].id });
        try {
          await ok(alice, "edit", { message_id: sent[0].id, text: "eins" });
          const [update] = await again.next(1);
          assert.equal(update.event, "message_updated");
          assert.equal(update.data.text, "eins");
          assert.notEqual(edited.text, update.data.text);
        } finally {
          again.close();
        }
      } finally {
        onA.close();
      }
    } finally {
      alice.close();
    }
  });
});
