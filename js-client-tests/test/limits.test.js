// Rate limits, on by default: a burst, then a few a second, per user; `rate_limited` with a
// retry hint past it; typing dropped in silence; the HTTP publish route's own limit, and the
// API key's history reads'.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { startServer } from "../harness/server.js";
import { connect, connectAs, refusal, command, ok, record, unique, closeAll, barrier, eventually } from "../harness/client.js";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Sends `count` commands at once (from `socketFor(i)`), and returns the replies with the
 * seconds between the first send and the last answer: the server checked every one of them
 * within that time, so at most `burst + ceil(seconds × rate)` can have passed, however slow the
 * machine.
 */
async function burst(count, socketFor, event, argFor) {
  const started = Date.now();
  const replies = await Promise.all(Array.from({ length: count }, (_, i) => command(socketFor(i), event, argFor(i))));
  return { replies, seconds: (Date.now() - started) / 1000 };
}

/** The most that may pass a limit of `burst`, then `perSecond`, within `seconds`. */
const allowance = (burst, perSecond, seconds) => burst + Math.ceil(seconds * perSecond);

describe("the default limits", () => {
  let server;
  before(async () => (server = await startServer()));
  after(() => server.close());

  test("message: a burst of 20, then rate_limited with a retry hint; others are served", async () => {
    const room = unique("burst");
    const name = unique("chatty");
    const tab1 = await connectAs(server, name);
    const tab2 = await connectAs(server, name);
    const other = await connectAs(server, unique("calm"));
    try {
      await ok(tab1, "join", { room });
      await ok(other, "join", { room });
      // Both tabs of one user draw on one allowance: 20 at once, then 5 a second.
      const { replies, seconds } = await burst(40, (i) => (i % 2 ? tab2 : tab1), "message", (i) => ({ room, text: `m${i}` }));
      const passed = replies.filter((r) => r.ok);
      const limited = replies.filter((r) => !r.ok);
      assert.ok(passed.length >= 20, `passed ${passed.length}`);
      assert.ok(passed.length <= allowance(20, 5, seconds), `passed ${passed.length} in ${seconds} s`);
      assert.ok(limited.length >= 1, `none of 40 in ${seconds} s was limited`);
      for (const r of limited) {
        assert.equal(r.error.code, "rate_limited");
        assert.ok(r.error.retry_after_ms > 0 && r.error.retry_after_ms <= 1000, JSON.stringify(r.error));
      }
      // Another user is not affected.
      await ok(other, "message", { room, text: "still served" });
      // After the hinted wait the user passes again.
      await sleep(limited[0].error.retry_after_ms + 50);
      await ok(tab1, "message", { room, text: "after the wait" });

      const metrics = await (await server.fetch("/metrics")).text();
      assert.match(metrics, /chatoxide_rate_limited_total\{limit="message"\} [1-9]/);
      assert.match(metrics, /chatoxide_commands_total\{command="message",outcome="rate_limited"\} [1-9]/);
    } finally {
      closeAll(tab1, tab2, other);
    }
  });

  test("join: a burst of 10", async () => {
    const socket = await connectAs(server, unique("joiner"));
    try {
      // 10 at once, then 1 a second.
      const { replies, seconds } = await burst(16, () => socket, "join", (i) => ({ room: unique(`j${i}`) }));
      const passed = replies.filter((r) => r.ok).length;
      assert.ok(passed >= 10, `passed ${passed}`);
      assert.ok(passed <= allowance(10, 1, seconds), `passed ${passed} in ${seconds} s`);
      const refused = replies.filter((r) => !r.ok);
      assert.ok(refused.length >= 1, `none of 16 in ${seconds} s was limited`);
      for (const r of refused) assert.equal(r.error.code, "rate_limited", JSON.stringify(r));
    } finally {
      socket.close();
    }
  });

  test("typing over its limit is dropped in silence: every ack ok, fewer events", async () => {
    const room = unique("typing");
    const typist = await connectAs(server, unique("typist"));
    const reader = await connectAs(server, unique("reader"));
    try {
      await ok(typist, "join", { room });
      await ok(reader, "join", { room });
      const seen = record(reader, "typing");
      // One after the other: typing is volatile, a burst of signals at once may lose some on
      // the way however the limit counts.
      const started = Date.now();
      for (let i = 0; i < 30; i++) await ok(typist, "typing", { room, typing: i % 2 === 0 });
      const seconds = (Date.now() - started) / 1000;
      await barrier(typist, reader, room);
      // A burst of 5, then 2 a second: of 30 sent within `seconds`, at most that many told
      // (fewer than 30 unless the machine took 13 s for them).
      assert.ok(seen.length >= 5, `saw ${seen.length}`);
      assert.ok(seen.length <= allowance(5, 2, seconds), `saw ${seen.length} of 30 in ${seconds} s`);
    } finally {
      closeAll(typist, reader);
    }
  });
});

describe("configured limits", () => {
  const API_KEY = "limits-key";
  let server;
  before(
    async () =>
      (server = await startServer({
        env: { API_KEY, CHATOXIDE_LIMIT_MESSAGE: "off", CHATOXIDE_LIMIT_PUBLISH: "3:0.01", CHATOXIDE_MAX_ROOMS_PER_USER: "3" },
      })),
  );
  after(() => server.close());

  test("a limit set to off is off", async () => {
    const room = unique("unlimited");
    const socket = await connectAs(server, unique("bulk"));
    try {
      await ok(socket, "join", { room });
      const replies = await Promise.all(
        Array.from({ length: 40 }, (_, i) => command(socket, "message", { room, text: `m${i}` })),
      );
      assert.ok(replies.every((r) => r.ok));
    } finally {
      socket.close();
    }
  });

  test("a user may be a member of at most the configured number of rooms", async () => {
    const socket = await connectAs(server, unique("collector"));
    const rooms = [unique("r1"), unique("r2"), unique("r3")];
    try {
      for (const room of rooms) await ok(socket, "join", { room });
      const refused = await command(socket, "join", { room: unique("r4") });
      assert.equal(refused.error?.code, "forbidden");
      await ok(socket, "join", { room: rooms[0] }); // a room already joined is no new one
      await ok(socket, "leave", { room: rooms[1] });
      await ok(socket, "join", { room: unique("r5") });
    } finally {
      socket.close();
    }
  });

  test("the publish route has its own limit: 429 with Retry-After past it", async () => {
    const room = unique("published");
    const post = () =>
      server.fetch(`/api/rooms/${room}/messages`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ user: { id: "backend" }, text: "hello" }),
      });
    for (let i = 0; i < 3; i++) assert.equal((await post()).status, 200);
    const refused = await post();
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers.get("retry-after")) >= 1);
    const body = await refused.json();
    assert.equal(body.ok, false);
    assert.equal(body.error.code, "rate_limited");
    assert.ok(body.error.retry_after_ms > 0);
  });

  test("history reads by the API key have their own limit, per address: the publish rate", async () => {
    const room = unique("read");
    const socket = await connectAs(server, unique("host"));
    try {
      await ok(socket, "join", { room });
      const read = () => server.fetch(`/api/rooms/${room}/messages`, { headers: { authorization: `Bearer ${API_KEY}` } });
      // The publish route's test above used up its allowance: reads count apart.
      for (let i = 0; i < 3; i++) assert.equal((await read()).status, 200);
      const refused = await read();
      assert.equal(refused.status, 429);
      assert.equal((await refused.json()).error.code, "rate_limited");
    } finally {
      socket.close();
    }
  });
});

describe("connections: per address, per user, and clients that ignore the limits", () => {
  let server;
  before(
    async () =>
      (server = await startServer({
        env: {
          CHATOXIDE_TRUST_X_FORWARDED_FOR: "true",
          CHATOXIDE_LIMIT_CONNECT: "5:0.01",
          CHATOXIDE_MAX_PENDING_SESSIONS: "5",
          CHATOXIDE_MAX_SOCKETS_PER_USER: "3",
          CHATOXIDE_LIMIT_MESSAGE: "2:0.01",
          CHATOXIDE_LIMIT_STRIKES: "3:0.01",
        },
      })),
  );
  after(() => server.close());

  /** Connects as `username` from `address` (the balancer's X-Forwarded-For, trusted here). */
  const from = (address, username, transports = ["websocket"]) =>
    connect(server, { username }, { transports, extraHeaders: { "x-forwarded-for": `203.0.113.9, ${address}` } });
  const refusedFrom = (address, username) =>
    refusal(server, { username }, { transports: ["websocket"], extraHeaders: { "x-forwarded-for": address } });

  test("a connection flood from one address is refused past its allowance; others get in", async () => {
    const address = "198.51.100.1";
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => from(address, unique(`flood${i}`), i % 2 ? ["websocket"] : ["polling"])),
    );
    const admitted = results.filter((r) => r.status === "fulfilled").map((r) => r.value);
    const refused = results.filter((r) => r.status === "rejected").map((r) => r.reason.message);
    try {
      assert.equal(admitted.length, 5);
      // Refused at the door (a 429 to the first request of a session) or at the handshake.
      assert.equal(refused.length, 3);
      const elsewhere = await from("198.51.100.2", unique("neighbour"));
      elsewhere.close();
    } finally {
      closeAll(...admitted);
    }
  });

  test("an address holds a bounded number of sessions that have not connected: past it, 429 at the door", async () => {
    const headers = { "x-forwarded-for": "198.51.100.40" };
    const open = () => server.fetch("/socket.io/?EIO=4&transport=polling", { headers });
    const sids = [];
    for (let i = 0; i < 5; i++) {
      const opened = await open();
      assert.equal(opened.status, 200);
      sids.push(/"sid":"([^"]+)"/.exec(await opened.text())[1]);
    }
    const refused = await open();
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers.get("retry-after")) >= 1);
    const body = await refused.json();
    assert.equal(body.error.code, "rate_limited");
    assert.ok(body.error.retry_after_ms > 0);
    // Requests of existing sessions are not counted (they carry a sid).
    for (let i = 0; i < 8; i++) {
      const poll = await server.fetch(`/socket.io/?EIO=4&transport=polling&sid=${sids[0]}`, {
        method: "POST",
        body: "3",
        headers: { ...headers, "content-type": "text/plain" },
      });
      assert.notEqual(poll.status, 429);
    }
    // A session that connects gives its place back: the address may open one more.
    const connectPacket = `40${JSON.stringify({ username: unique("pending") })}`;
    const connected = await server.fetch(`/socket.io/?EIO=4&transport=polling&sid=${sids[1]}`, {
      method: "POST",
      body: connectPacket,
      headers: { ...headers, "content-type": "text/plain" },
    });
    assert.equal(connected.status, 200);
    let answer = "";
    for (let i = 0; i < 5 && !answer.includes('40{"sid"'); i++) {
      answer += await (await server.fetch(`/socket.io/?EIO=4&transport=polling&sid=${sids[1]}`, { headers })).text();
    }
    assert.match(answer, /40\{"sid"/, "the handshake was admitted");
    assert.equal((await open()).status, 200);
    assert.equal((await open()).status, 429);
  });

  test("a user holds at most the configured number of sockets", async () => {
    const name = unique("hoarder");
    const sockets = [];
    try {
      for (let i = 0; i < 3; i++) sockets.push(await from(`198.51.100.${10 + i}`, name));
      assert.equal((await refusedFrom("198.51.100.20", name)).message, "rate_limited");
      sockets.shift().close();
      // Once the server has seen the close, there is room again. Each try comes from an
      // address of its own: a try refused does not use up an address's handshakes.
      let tries = 0;
      const again = await eventually(
        () => from(`2001:db8::${(++tries).toString(16)}`, name).catch(() => undefined),
        undefined,
        "a socket fits again after one closed",
      );
      sockets.push(again);
    } finally {
      closeAll(...sockets);
    }
  });

  test("a burst of handshakes of one user at once: no more sockets than the limit get in", async () => {
    const name = unique("swarm");
    // Ten tabs of one user at once, each from an address of its own: the check and the count
    // are one step, so exactly three pass however the handshakes interleave.
    const tries = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => from(`203.0.113.${20 + i}`, name)),
    );
    const admitted = tries.filter((t) => t.status === "fulfilled").map((t) => t.value);
    try {
      assert.equal(admitted.length, 3, `${admitted.length} sockets of one user were let in`);
      for (const t of tries.filter((t) => t.status === "rejected")) assert.equal(t.reason.message, "rate_limited");
    } finally {
      closeAll(...admitted);
    }
  });

  test("a client that keeps hammering a limit is disconnected", async () => {
    const room = unique("hammer");
    const socket = await from("198.51.100.30", unique("hammer"));
    try {
      await ok(socket, "join", { room });
      const gone = new Promise((resolve) => socket.once("disconnect", resolve));
      for (let i = 0; i < 2; i++) await ok(socket, "message", { room, text: `fine ${i}` });
      for (let i = 0; i < 3; i++) {
        assert.equal((await command(socket, "message", { room, text: "again" })).error?.code, "rate_limited");
      }
      socket.emit("message", { room, text: "and again" }, () => {});
      assert.equal(await gone, "io server disconnect");
      const metrics = await (await server.fetch("/metrics")).text();
      assert.match(metrics, /chatoxide_abuse_disconnects_total [1-9]/);
    } finally {
      socket.close();
    }
  });
});

describe("a client that stops reading", () => {
  let server;
  before(
    async () =>
      (server = await startServer({
        env: {
          CHATOXIDE_RATE_LIMITS: "false",
          CHATOXIDE_PING_INTERVAL_MS: "500",
          CHATOXIDE_PING_TIMEOUT_MS: "500",
          CHATOXIDE_SOCKET_BUFFER: "64",
          CHATOXIDE_TCP_USER_TIMEOUT_MS: "2000",
        },
      })),
  );
  after(() => server.close());

  test("is disconnected, and the server's memory does not grow with what it was sent", async () => {
    const room = unique("flooded");
    const sloth = unique("sloth");
    // A raw WebSocket client, so that it can stop reading at the TCP level.
    const ws = new WebSocket(`${server.url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`);
    const frames = [];
    ws.on("message", (data) => {
      const frame = data.toString();
      if (frame === "2") ws.send("3");
      frames.push(frame);
    });
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    const frame = async (prefix) => {
      while (!frames.some((f) => f.startsWith(prefix))) await sleep(10);
    };
    ws.send(`40${JSON.stringify({ username: sloth })}`);
    await frame("40"); // events sent before the connect is acknowledged have no socket yet
    ws.send(`421${JSON.stringify(["join", { room }])}`);
    const flooder = await connectAs(server, unique("flooder"));
    try {
      await ok(flooder, "join", { room });
      await frame("431");
      const online = async () => (await ok(flooder, "presence", { room })).users.map((u) => u.id);
      assert.ok((await online()).includes(sloth));

      ws.pause(); // reads nothing from now on: its pings go unanswered, its buffers fill
      const before = server.rssKiB();
      const text = "x".repeat(2000);
      // In windows of 32: the flooder reads, and its own queue holds 64 packets.
      for (let i = 0; i < 2000; i += 32) {
        await Promise.all(Array.from({ length: 32 }, () => command(flooder, "message", { room, text })));
      }
      await eventually(async () => !(await online()).includes(sloth), undefined, "the client that stopped reading is disconnected");
      // 2,000 messages of 2 kB were sent its way; it was holding at most 64 packets.
      const after = server.rssKiB();
      assert.ok(after < before + 16 * 1024, `RSS grew from ${before} to ${after} KiB`);
      await ok(flooder, "message", { room, text: "the rest are served" });
    } finally {
      ws.terminate();
      flooder.close();
    }
  });
});

describe("behind a proxy that is not trusted", () => {
  let server;
  before(async () => (server = await startServer()));
  after(() => server.close());

  test("requests with X-Forwarded-For get one clear warning in the log, and are served", async () => {
    for (let i = 0; i < 3; i++) {
      const opened = await server.fetch("/socket.io/?EIO=4&transport=polling", {
        headers: { "x-forwarded-for": `198.51.100.${i}` },
      });
      assert.equal(opened.status, 200);
    }
    const warnings = server.log
      .flatMap((chunk) => chunk.split("\n"))
      .filter((l) => l.includes("X-Forwarded-For") && l.includes("WARN"));
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(warnings[0], /CHATOXIDE_TRUST_X_FORWARDED_FOR/);
  });
});

describe("every command has a limit (default settings)", () => {
  let server;
  before(async () => (server = await startServer()));
  after(() => server.close());

  // Each command, its default burst (commands that cost alike share an allowance), and the
  // argument it is sent with by a member of `room` whose message is `id`.
  const TABLE = [
    ["message", 20, (room) => ({ room, text: "burst" })],
    ["leave", 10, (room) => ({ room })],
    ["history", 20, (room) => ({ room })],
    ["members", 20, (room) => ({ room })],
    ["presence", 20, (room) => ({ room })],
    ["read", 30, (room, id) => ({ room, message_id: id })],
    ["edit", 10, (room, id) => ({ message_id: id, text: "edited" })],
    ["delete", 10, (room, id) => ({ message_id: id })],
  ];

  for (const [name, burst, arg] of TABLE) {
    test(`${name}: ten past its burst at once meet rate_limited`, async () => {
      const room = unique(`limit-${name}`);
      const socket = await connectAs(server, unique(name));
      try {
        await ok(socket, "join", { room });
        const { message } = await ok(socket, "message", { room, text: "to act on" });
        const replies = await Promise.all(
          Array.from({ length: burst + 10 }, () => command(socket, name, arg(room, message.id))),
        );
        // Ten too many: all but what refilled while they arrived (a few a second) are refused.
        const limited = replies.filter((r) => r.error?.code === "rate_limited");
        assert.ok(limited.length >= 5, `${name}: ${limited.length} of ${burst + 10} limited`);
        assert.ok(limited.every((r) => r.error.retry_after_ms > 0), JSON.stringify(limited[0]));
      } finally {
        socket.close();
      }
    });
  }
});
