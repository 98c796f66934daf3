// join, leave, presence, and membership as a stored fact about the user.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../harness/server.js";
import { connectAs, command, ok, next, record, barrier, unique, closeAll, eventually } from "../harness/client.js";

let server;
before(async () => (server = await startServer()));
after(() => server.close());

test("join creates the room, answers its members, and tells the others", async () => {
  const room = unique("lobby");
  const [alice, bob] = [unique("alice"), unique("bob")];
  const a = await connectAs(server, alice);
  const b = await connectAs(server, bob);
  try {
    const first = await ok(a, "join", { room });
    assert.deepEqual(first, { ok: true, room, members: [{ id: alice, name: alice }], member_count: 1 });
    const joinedEvent = next(a, "user_joined");
    const second = await ok(b, "join", { room });
    // In user id order, with the total.
    assert.deepEqual(second.members, [{ id: alice, name: alice }, { id: bob, name: bob }]);
    assert.equal(second.member_count, 2);
    assert.equal("missed" in second, false);
    assert.deepEqual(await joinedEvent, { room, user: { id: bob, name: bob } });
  } finally {
    closeAll(a, b);
  }
});

test("joining again is harmless and tells no one", async () => {
  const room = unique("again");
  const a = await connectAs(server, unique("a"));
  const b = await connectAs(server, unique("b"));
  try {
    await ok(a, "join", { room });
    const firstJoin = next(a, "user_joined");
    await ok(b, "join", { room });
    await firstJoin;
    const joins = record(a, "user_joined");
    const again = await ok(b, "join", { room });
    assert.equal(again.members.length, 2);
    await barrier(b, a, room);
    assert.deepEqual(joins, []);
  } finally {
    closeAll(a, b);
  }
});

test("room names: 1 to 64 of A-Z a-z 0-9 _ - . :", async () => {
  const s = await connectAs(server, unique("names"));
  try {
    const longest = "r".repeat(60) + unique("").slice(0, 4);
    assert.equal((await ok(s, "join", { room: longest.slice(0, 64) })).room, longest.slice(0, 64));
    assert.equal((await ok(s, "join", { room: `Team_1-a.b:${unique("c")}` })).ok, true);
    for (const room of ["", "r".repeat(65), "has space", "slash/y", "émoji", 42, null]) {
      const reply = await command(s, "join", { room });
      assert.equal(reply.ok, false, JSON.stringify(room));
      assert.equal(reply.error.code, "bad_request", JSON.stringify(room));
      assert.equal(typeof reply.error.message, "string");
    }
  } finally {
    s.close();
  }
});

test("user: rooms are reserved: join answers forbidden", async () => {
  const s = await connectAs(server, unique("snoop"));
  try {
    const reply = await command(s, "join", { room: "user:somebody" });
    assert.equal(reply.ok, false);
    assert.equal(reply.error.code, "forbidden");
  } finally {
    s.close();
  }
});

test("leave answers the room, tells the others, and ends delivery to every tab", async () => {
  const room = unique("exit");
  const leaver = unique("leaver");
  const tab1 = await connectAs(server, leaver);
  const tab2 = await connectAs(server, leaver);
  const stayer = await connectAs(server, unique("stayer"));
  try {
    await ok(tab1, "join", { room });
    await ok(stayer, "join", { room });
    const leftEvent = next(stayer, "user_left");
    assert.deepEqual(await ok(tab1, "leave", { room }), { ok: true, room });
    assert.deepEqual(await leftEvent, { room, user: { id: leaver, name: leaver } });
    const seen = record(tab2, "message");
    await ok(stayer, "message", { room, text: "are you gone?" });
    const bystander = await connectAs(server, unique("bystander"));
    await ok(bystander, "join", { room });
    await barrier(stayer, bystander, room);
    bystander.close();
    // tab2 is checked last: had it still been in the room, the first message would be here.
    const reply = await command(tab2, "message", { room, text: "still here?" });
    assert.equal(reply.error.code, "forbidden");
    assert.deepEqual(seen, []);
  } finally {
    closeAll(tab1, tab2, stayer);
  }
});

test("leave a room one is not in: forbidden", async () => {
  const s = await connectAs(server, unique("stranger"));
  try {
    const reply = await command(s, "leave", { room: unique("never") });
    assert.equal(reply.error.code, "forbidden");
  } finally {
    s.close();
  }
});

test("presence lists members with a connected socket, not every member", async () => {
  const room = unique("presence");
  const [alice, bob] = [unique("alice"), unique("bob")];
  const a = await connectAs(server, alice);
  let b = await connectAs(server, bob);
  try {
    await ok(a, "join", { room });
    await ok(b, "join", { room });
    const both = await ok(a, "presence", { room });
    assert.deepEqual(new Set(both.users.map((u) => u.id)), new Set([alice, bob]));
    b.close();
    // Presence updates when the server has seen the disconnect: poll the command.
    const users = await eventually(async () => {
      const online = (await ok(a, "presence", { room })).users;
      return online.length === 1 && online;
    }, undefined, "bob offline once his socket closed");
    assert.deepEqual(users, [{ id: alice, name: alice }]);
    const joinAck = await ok(a, "join", { room });
    assert.equal(joinAck.members.length, 2, "bob is still a member, only offline");
    b = await connectAs(server, bob);
    assert.equal((await ok(a, "presence", { room })).users.length, 2);
  } finally {
    closeAll(a, b);
  }
});

test("presence of a room one is not in: forbidden", async () => {
  const s = await connectAs(server, unique("peeker"));
  try {
    assert.equal((await command(s, "presence", { room: unique("closed") })).error.code, "forbidden");
  } finally {
    s.close();
  }
});

test("a join and a leave sent at once: the socket is in the room exactly when the user is a member", async () => {
  const [room, side] = [unique("flip"), unique("side")];
  const [name, watcher] = [unique("fickle"), unique("watcher")];
  const s = await connectAs(server, name);
  const other = await connectAs(server, watcher);
  try {
    await ok(other, "join", { room });
    await ok(other, "join", { room: side });
    await ok(s, "join", { room: side });
    await ok(s, "join", { room });
    // Two rounds, one in each order: the allowance join and leave share (10, then 1 a second)
    // covers them and the joins back.
    for (let i = 0; i < 2; i++) {
      // Sent back to back, without waiting: either order may win, but never half of each.
      const answers = await Promise.all(
        i % 2 ? [command(s, "leave", { room }), command(s, "join", { room })] : [command(s, "join", { room }), command(s, "leave", { room })],
      );
      for (const a of answers) assert.ok(a.ok || a.error.code === "forbidden", JSON.stringify(a));
      const member = (await ok(other, "members", { room })).members.some((m) => m.id === name);
      const heard = record(s, "message");
      const text = unique("probe");
      await ok(other, "message", { room, text });
      await barrier(other, s, side);
      assert.equal(heard.some((m) => m.text === text), member, `round ${i}: member ${member}`);
      s.off("message");
      if (!member) await ok(s, "join", { room });
    }
  } finally {
    closeAll(s, other);
  }
});
