// HTTP: health, readiness, metrics, the history page and the publish route with its API key.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../harness/server.js";
import { connectAs, ok, next, command, unique, closeAll } from "../harness/client.js";

const json = (body) => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const withKey = (key, init = {}) => ({ ...init, headers: { ...(init.headers ?? {}), authorization: `Bearer ${key}` } });

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

  test("GET messages is open; it is the history page as JSON", async () => {
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

  test("GET messages needs the key when one is configured", async () => {
    const room = unique("guarded");
    await server.fetch(`/api/rooms/${room}/messages`, withKey(key, json({ user: { id: "x" }, text: "hi" })));
    assert.equal((await server.fetch(`/api/rooms/${room}/messages`)).status, 401);
    const res = await server.fetch(`/api/rooms/${room}/messages`, withKey(key));
    assert.equal(res.status, 200);
    assert.equal((await res.json()).messages.length, 1);
  });
});
