// HTTP: health, readiness, metrics, the history page (open in open mode, for members in token
// mode, everything for the API key) and the publish route with its API key.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import jwt from "jsonwebtoken";
import { startServer } from "../harness/server.js";
import { connect, connectAs, ok, next, command, unique, closeAll } from "../harness/client.js";

const json = (body) => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const withKey = (key, init = {}) => ({ ...init, headers: { ...(init.headers ?? {}), authorization: `Bearer ${key}` } });
/** The warnings the server logged at start that anyone reads history over HTTP. */
const openHistoryWarnings = (server) =>
  server.log.flatMap((chunk) => chunk.split("\n")).filter((l) => l.includes("WARN") && l.includes("/api/rooms/"));

describe("without an API key configured", () => {
  let server;
  before(async () => (server = await startServer()));
  after(() => server.close());

  test("GET /healthz answers 200", async () => {
    assert.equal((await server.fetch("/healthz")).status, 200);
  });

  test("GET /readyz answers 200 when storage answers", async () => {
    const res = await server.fetch("/readyz");
    assert.equal(res.status, 200);
    assert.equal((await res.json()).status, "ready");
  });

  test("GET /metrics: Prometheus text with connections and commands by name and outcome", async () => {
    const s = await connectAs(server, unique("metered"));
    try {
      await ok(s, "join", { room: unique("m") });
      await command(s, "join", { room: "" });
      const res = await server.fetch("/metrics");
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type"), /^text\/plain/);
      const text = await res.text();
      assert.match(text, /^chatoxide_connections\{namespace="\/",transport="(websocket|polling)"\} [1-9]/m);
      assert.match(text, /^chatoxide_commands_total\{command="join",outcome="ok"\} \d+/m);
      assert.match(text, /^chatoxide_commands_total\{command="join",outcome="bad_request"\} \d+/m);
    } finally {
      s.close();
    }
  });

  test("GET messages is open in open mode; it is the history page as JSON", async () => {
    const room = unique("page");
    const s = await connectAs(server, unique("w"));
    try {
      await ok(s, "join", { room });
      const ids = [];
      for (const text of ["a", "b", "c"]) ids.push((await ok(s, "message", { room, text })).message.id);
      const res = await server.fetch(`/api/rooms/${room}/messages?limit=2`);
      assert.equal(res.status, 200);
      const page = await res.json();
      assert.deepEqual(page, { ...(await ok(s, "history", { room, limit: 2 })) });
      assert.deepEqual(page.messages.map((m) => m.text), ["b", "c"]);
      const older = await (await server.fetch(`/api/rooms/${room}/messages?before=${ids[1]}`)).json();
      assert.deepEqual(older.messages.map((m) => m.text), ["a"]);
      assert.equal(older.has_more, false);
      const newer = await (await server.fetch(`/api/rooms/${room}/messages?after=${ids[0]}&limit=1`)).json();
      assert.deepEqual([newer.messages.map((m) => m.text), newer.has_more], [["b"], true]);
    } finally {
      s.close();
    }
  });

  test("GET messages: unknown room 404, bad room or limit 400", async () => {
    const unknown = await server.fetch(`/api/rooms/${unique("nobody")}/messages`);
    assert.equal(unknown.status, 404);
    assert.equal((await unknown.json()).error.code, "not_found");
    const badRoom = await server.fetch(`/api/rooms/${encodeURIComponent("bad room")}/messages`);
    assert.equal(badRoom.status, 400);
    assert.deepEqual(Object.keys(await badRoom.json()).sort(), ["error", "ok"]);
    assert.equal((await server.fetch(`/api/rooms/x/messages?limit=abc`)).status, 400);
  });

  test("the server says at start, once, that anyone may read history over HTTP", async () => {
    const warnings = openHistoryWarnings(server);
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(warnings[0], /API_KEY/);
  });

  test("POST messages answers 403 forbidden: there is no key to present", async () => {
    const res = await server.fetch(`/api/rooms/${unique("r")}/messages`, json({ user: { id: "bot" }, text: "hi" }));
    assert.equal(res.status, 403);
    const body = await res.json();
    assert.equal(body.ok, false);
    assert.equal(body.error.code, "forbidden");
    assert.equal(typeof body.error.message, "string");
  });
});

describe("with an API key", () => {
  const key = "k-" + unique("key");
  let server;
  before(async () => (server = await startServer({ env: { API_KEY: key } })));
  after(() => server.close());

  test("POST stores and broadcasts exactly as a socket would", async () => {
    const room = unique("pub");
    const listener = await connectAs(server, unique("listener"));
    try {
      await ok(listener, "join", { room });
      const live = next(listener, "message");
      const res = await server.fetch(`/api/rooms/${room}/messages`, withKey(key, json({ user: { id: "bot", name: "Robot" }, text: " deploy done ", client_id: "job-1" })));
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.ok, true);
      assert.deepEqual(body.message.user, { id: "bot", name: "Robot" });
      assert.equal(body.message.text, "deploy done");
      assert.equal(body.message.room, room);
      assert.deepEqual(await live, body.message);
      const again = await (await server.fetch(`/api/rooms/${room}/messages`, withKey(key, json({ user: { id: "bot" }, text: "deploy done", client_id: "job-1" })))).json();
      assert.equal(again.message.id, body.message.id);
      const history = await ok(listener, "history", { room });
      assert.deepEqual(history.messages, [body.message]);
    } finally {
      listener.close();
    }
  });

  test("POST without the name uses the id; into a room nobody joined yet, it creates it", async () => {
    const room = unique("fresh");
    const res = await server.fetch(`/api/rooms/${room}/messages`, withKey(key, json({ user: { id: "cron" }, text: "tick" })));
    assert.deepEqual((await res.json()).message.user, { id: "cron", name: "cron" });
  });

  test("POST with a missing or wrong key: 401 unauthorized", async () => {
    const path = `/api/rooms/${unique("r")}/messages`;
    const missing = await server.fetch(path, json({ user: { id: "x" }, text: "hi" }));
    assert.equal(missing.status, 401);
    assert.equal((await missing.json()).error.code, "unauthorized");
    const wrong = await server.fetch(path, withKey(key + "x", json({ user: { id: "x" }, text: "hi" })));
    assert.equal(wrong.status, 401);
  });

  test("POST with bad input: 400 bad_request or 413 too_large, with the error body", async () => {
    const path = `/api/rooms/${unique("r")}/messages`;
    for (const body of [{}, { user: { id: "x" } }, { user: "x", text: "hi" }, { user: { id: "" }, text: "hi" }, { user: { id: "x" }, text: "  " }]) {
      const res = await server.fetch(path, withKey(key, json(body)));
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal((await res.json()).error.code, "bad_request");
    }
    const notJson = await server.fetch(path, withKey(key, { method: "POST", headers: { "content-type": "application/json" }, body: "{oops" }));
    assert.equal(notJson.status, 400);
    const long = await server.fetch(path, withKey(key, json({ user: { id: "x" }, text: "x".repeat(4001) })));
    assert.equal(long.status, 413);
    assert.equal((await long.json()).error.code, "too_large");
  });

  test("with a key, open mode does not warn that history is open", () => {
    assert.deepEqual(openHistoryWarnings(server), []);
  });

  test("GET messages needs the key when one is configured", async () => {
    const room = unique("guarded");
    await server.fetch(`/api/rooms/${room}/messages`, withKey(key, json({ user: { id: "x" }, text: "hi" })));
    assert.equal((await server.fetch(`/api/rooms/${room}/messages`)).status, 401);
    const res = await server.fetch(`/api/rooms/${room}/messages`, withKey(key));
    assert.equal(res.status, 200);
    assert.equal((await res.json()).messages.length, 1);
  });
});

const secret = "http-secret-" + unique("s");
const now = () => Math.floor(Date.now() / 1000);
/** A token the server takes, valid for 5 minutes. */
const sign = (claims, key = secret) => jwt.sign({ exp: now() + 300, ...claims }, key, { algorithm: "HS256" });
const bearer = (credential) => ({ headers: { authorization: `Bearer ${credential}` } });

/**
 * A room with one message by a member, and the tokens of the cases: its member, a stranger, the
 * member with a `rooms` claim that leaves the room out.
 */
async function roomWithHistory(server) {
  const room = unique("kept");
  const member = unique("member");
  const socket = await connect(server, { token: sign({ sub: member }) });
  try {
    await ok(socket, "join", { room });
    const { message } = await ok(socket, "message", { room, text: "for members" });
    return {
      room,
      message,
      member: sign({ sub: member }),
      stranger: sign({ sub: unique("stranger") }),
      elsewhere: sign({ sub: member, rooms: ["elsewhere-*"] }),
    };
  } finally {
    socket.close();
  }
}

/** Each case: what the caller presents, and the status and error code it gets (`null`: ok). */
const tokenModeCases = (key) => [
  ["no credentials", () => ({}), 401, "unauthorized"],
  ["a member's token", (t) => bearer(t.member), 200, null],
  ["a non-member's token", (t) => bearer(t.stranger), 403, "forbidden"],
  ["a member's token whose rooms claim leaves the room out", (t) => bearer(t.elsewhere), 403, "forbidden"],
  ["a token signed with another secret", () => bearer(sign({ sub: "x" }, "not-the-secret")), 401, "unauthorized"],
  ["an expired token", (t) => bearer(sign({ sub: "x", exp: now() - 600 })), 401, "unauthorized"],
  ["not a token at all", () => bearer("nonsense"), 401, "unauthorized"],
  ["a token in another scheme", (t) => ({ headers: { authorization: `Basic ${t.member}` } }), 401, "unauthorized"],
  ...(key ? [["the API key", () => bearer(key), 200, null]] : []),
];

async function assertReads(server, room, init, status, code, message) {
  const res = await server.fetch(`/api/rooms/${room}/messages`, init);
  const body = await res.json();
  assert.equal(res.status, status, JSON.stringify(body));
  if (code) {
    assert.deepEqual([body.ok, body.error.code, typeof body.error.message], [false, code, "string"]);
  } else {
    assert.deepEqual(body, { ok: true, messages: [message], has_more: false });
  }
}

for (const key of [null, "k-" + unique("key")]) {
  describe(`token mode ${key ? "with" : "without"} an API key: history over HTTP`, () => {
    let server;
    let t;
    before(async () => {
      server = await startServer({ env: { JWT_SECRET: secret, ...(key ? { API_KEY: key } : {}) } });
      t = await roomWithHistory(server);
    });
    after(() => server.close());

    for (const [who, init, status, code] of tokenModeCases(key)) {
      test(`${who}: ${status}${code ? ` ${code}` : ""}`, async () => {
        await assertReads(server, t.room, init(t), status, code, t.message);
      });
    }

    test("token mode does not warn that history is open", () => {
      assert.deepEqual(openHistoryWarnings(server), []);
    });

    test("a member's token on a room that does not exist: 403, as for any room it is not in", async () => {
      const res = await server.fetch(`/api/rooms/${unique("nowhere")}/messages`, bearer(t.member));
      assert.equal(res.status, 403);
      assert.equal((await res.json()).error.code, "forbidden");
    });

    test("a member who left no longer reads the room", async () => {
      const room = unique("left");
      const user = unique("leaver");
      const token = sign({ sub: user });
      const socket = await connect(server, { token });
      try {
        await ok(socket, "join", { room });
        assert.equal((await server.fetch(`/api/rooms/${room}/messages`, bearer(token))).status, 200);
        await ok(socket, "leave", { room });
        assert.equal((await server.fetch(`/api/rooms/${room}/messages`, bearer(token))).status, 403);
      } finally {
        socket.close();
      }
    });
  });
}

describe("token mode with the default limits: history over HTTP", () => {
  let server;
  before(async () => (server = await startServer({ env: { JWT_SECRET: secret } })));
  after(() => server.close());

  test("a burst of GETs by one user meets the history limit: 429 rate_limited with Retry-After", async () => {
    const room = unique("burst");
    const token = sign({ sub: unique("reader") });
    const socket = await connect(server, { token });
    try {
      await ok(socket, "join", { room });
      // All at once: the default burst is 20, and refilling 5 a second cannot serve 200 in time.
      const responses = await Promise.all(
        Array.from({ length: 200 }, () => server.fetch(`/api/rooms/${room}/messages`, bearer(token))),
      );
      const bodies = await Promise.all(responses.map((r) => r.json()));
      const statuses = responses.map((r) => r.status);
      assert.deepEqual(statuses.filter((s) => s !== 200 && s !== 429), []);
      assert.ok(statuses.filter((s) => s === 200).length >= 20, statuses.join(","));
      const refused = statuses.indexOf(429);
      assert.ok(refused >= 0, "some are refused");
      assert.ok(Number(responses[refused].headers.get("retry-after")) >= 1);
      assert.equal(bodies[refused].ok, false);
      assert.equal(bodies[refused].error.code, "rate_limited");
    } finally {
      socket.close();
    }
  });
});
