// history pages and cursors; join { since } catching up.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, NO_RATE_LIMITS } from "../harness/server.js";
import { connectAs, command, ok, unique, closeAll } from "../harness/client.js";

let server;
// Rooms of hundreds of messages from one user: rate limits off (they have their own suite).
before(async () => (server = await startServer({ env: NO_RATE_LIMITS })));
after(() => server.close());

/** A member of a fresh room holding `count` messages t0..t(count-1); returns their ids. */
async function roomWith(count) {
  const room = unique("hist");
  const s = await connectAs(server, unique("writer"));
  await ok(s, "join", { room });
  const ids = [];
  for (let i = 0; i < count; i++) ids.push((await ok(s, "message", { room, text: `t${i}` })).message.id);
  return { s, room, ids };
}

const texts = (page) => page.messages.map((m) => m.text);

test("without cursors: the newest `limit` messages, oldest first", async () => {
  const { s, room } = await roomWith(7);
  try {
    const page = await ok(s, "history", { room, limit: 3 });
    assert.deepEqual(texts(page), ["t4", "t5", "t6"]);
    assert.equal(page.has_more, true);
    const all = await ok(s, "history", { room });
    assert.deepEqual(texts(all), ["t0", "t1", "t2", "t3", "t4", "t5", "t6"]);
    assert.equal(all.has_more, false);
  } finally {
    s.close();
  }
});

test("before pages back until has_more is false", async () => {
  const { s, room } = await roomWith(7);
  try {
    const seen = [];
    let page = await ok(s, "history", { room, limit: 3 });
    seen.unshift(...texts(page));
    while (page.has_more) {
      page = await ok(s, "history", { room, limit: 3, before: page.messages[0].id });
      seen.unshift(...texts(page));
    }
    assert.deepEqual(seen, ["t0", "t1", "t2", "t3", "t4", "t5", "t6"]);
  } finally {
    s.close();
  }
});

test("after pages forward; has_more says whether newer messages remain", async () => {
  const { s, room, ids } = await roomWith(6);
  try {
    const page = await ok(s, "history", { room, after: ids[1], limit: 2 });
    assert.deepEqual(texts(page), ["t2", "t3"]);
    assert.equal(page.has_more, true);
    const last = await ok(s, "history", { room, after: ids[3], limit: 2 });
    assert.deepEqual(texts(last), ["t4", "t5"]);
    assert.equal(last.has_more, false);
    const none = await ok(s, "history", { room, after: ids[5] });
    assert.deepEqual(none, { ok: true, messages: [], has_more: false });
  } finally {
    s.close();
  }
});

test("limit defaults to 50 and larger values are taken as 100", async () => {
  const { s, room } = await roomWith(120);
  try {
    const byDefault = await ok(s, "history", { room });
    assert.equal(byDefault.messages.length, 50);
    assert.equal(byDefault.messages.at(-1).text, "t119");
    const capped = await ok(s, "history", { room, limit: 1000 });
    assert.equal(capped.messages.length, 100);
    assert.equal(capped.messages[0].text, "t20");
    assert.equal(capped.has_more, true);
  } finally {
    s.close();
  }
});

test("bad arguments: bad_request; a cursor from another room: not_found", async () => {
  const { s, room } = await roomWith(2);
  const other = await roomWith(1);
  try {
    for (const arg of [{ room, limit: 0 }, { room, limit: -1 }, { room, limit: "ten" }, { room, limit: 2.5 }, { room, before: "nope" }, { room, after: 5 }]) {
      assert.equal((await command(s, "history", arg)).error.code, "bad_request", JSON.stringify(arg));
    }
    await ok(s, "join", { room: other.room });
    const reply = await command(s, "history", { room, before: other.ids[0] });
    assert.equal(reply.error.code, "not_found");
  } finally {
    closeAll(s, other.s);
  }
});

test("history of a room one has not joined: forbidden", async () => {
  const { s, room } = await roomWith(1);
  const outsider = await connectAs(server, unique("outsider"));
  try {
    assert.equal((await command(outsider, "history", { room })).error.code, "forbidden");
  } finally {
    closeAll(s, outsider);
  }
});

test("join { since } returns what was missed, oldest first, at most 100", async () => {
  const { s, room, ids } = await roomWith(5);
  const late = await connectAs(server, unique("late"));
  try {
    const reply = await ok(late, "join", { room, since: ids[1] });
    assert.deepEqual(reply.missed.map((m) => m.text), ["t2", "t3", "t4"]);
    const upToDate = await ok(late, "join", { room, since: ids[4] });
    assert.deepEqual(upToDate.missed, []);
  } finally {
    closeAll(s, late);
  }
});

test("join { since } caps missed at 100; history { after } fetches the rest", async () => {
  const { s, room, ids } = await roomWith(130);
  try {
    const reply = await ok(s, "join", { room, since: ids[0] });
    assert.equal(reply.missed.length, 100);
    assert.equal(reply.missed[0].text, "t1");
    const rest = await ok(s, "history", { room, after: reply.missed.at(-1).id, limit: 100 });
    assert.deepEqual(texts(rest), Array.from({ length: 29 }, (_, i) => `t${101 + i}`));
  } finally {
    s.close();
  }
});

test("join { since } with a malformed id: bad_request, and the join did not happen", async () => {
  const room = unique("since");
  const s = await connectAs(server, unique("x"));
  try {
    assert.equal((await command(s, "join", { room, since: "garbage" })).error.code, "bad_request");
    assert.equal((await command(s, "history", { room })).error.code, "forbidden");
  } finally {
    s.close();
  }
});
