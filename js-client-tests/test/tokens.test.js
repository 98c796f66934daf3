// Token claims beyond the signature: iss, aud, nbf and exp with a leeway, the rooms claim, and
// sessions that end when their token expires; tokens that are no string, tokens without exp, and
// where a token may come from (auth, or the query string of Engine.IO 3 clients only).
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import jwt from "jsonwebtoken";
import { startServer } from "../harness/server.js";
import { connect, connectV2, refusal, ok, next, record, unique, closeAll, command, eventually, WAIT_MS } from "../harness/client.js";

const secret = "tokens-secret-" + unique("s");
const ISSUER = "https://auth.example.test/";
const AUDIENCE = "chat";
const LEEWAY = 2;
const now = () => Math.floor(Date.now() / 1000);

/** A token for `sub`, valid for 5 minutes, from the right issuer for the right audience. */
const sign = (claims) =>
  jwt.sign({ iss: ISSUER, aud: AUDIENCE, exp: now() + 300, ...claims }, secret, { algorithm: "HS256" });

describe("token checks: iss, aud, nbf, exp with leeway, rooms", () => {
  let server;
  before(
    async () =>
      (server = await startServer({
        env: { JWT_SECRET: secret, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWT_LEEWAY_SECS: String(LEEWAY) },
      })),
  );
  after(() => server.close());

  test("the right issuer and audience are accepted", async () => {
    const socket = await connect(server, { token: sign({ sub: unique("u") }) });
    socket.close();
  });

  const refused = [
    ["from another issuer", () => sign({ sub: "x", iss: "https://evil.example/" })],
    ["for another audience", () => sign({ sub: "x", aud: "billing" })],
    ["without an audience", () => jwt.sign({ sub: "x", iss: ISSUER, exp: now() + 300 }, secret)],
    ["without an issuer", () => jwt.sign({ sub: "x", aud: AUDIENCE, exp: now() + 300 }, secret)],
    ["not valid yet (nbf past the leeway)", () => sign({ sub: "x", nbf: now() + 60 })],
    ["expired past the leeway", () => sign({ sub: "x", exp: now() - LEEWAY - 30 })],
    ["with a malformed rooms claim", () => sign({ sub: "x", rooms: ["team red"] })],
    ["without exp (JWT_ALLOW_NO_EXP unset)", () => jwt.sign({ sub: "x", iss: ISSUER, aud: AUDIENCE }, secret)],
  ];
  for (const [why, token] of refused) {
    test(`a token ${why} is refused with unauthorized`, async () => {
      assert.equal((await refusal(server, { token: token() })).message, "unauthorized");
    });
  }

  for (const [what, token] of [
    ["a number", 42],
    ["an array", [sign({ sub: "x" })]],
    ["an object", { token: sign({ sub: "x" }) }],
    ["a boolean", true],
  ]) {
    test(`a token that is ${what}, not a string, is refused with unauthorized`, async () => {
      assert.equal((await refusal(server, { token })).message, "unauthorized");
    });
  }

  test("socket.io-client 4.x may not send its token in the query string (URLs reach proxy logs)", async () => {
    const token = sign({ sub: unique("u") });
    assert.equal((await refusal(server, {}, { query: { token } })).message, "unauthorized");
    // Not even beside a token in auth: the URL has carried it already.
    assert.equal((await refusal(server, { token }, { query: { token } })).message, "unauthorized");
  });

  test("socket.io-client 2.x, which cannot send auth, sends its token in the query string", async () => {
    const sub = unique("old");
    const socket = await connectV2(server, { token: sign({ sub, name: "Old Client" }) });
    try {
      const reply = await command(socket, "join", { room: unique("v2") });
      assert.equal(reply.ok, true);
      assert.deepEqual(reply.members, [{ id: sub, name: "Old Client" }]);
    } finally {
      socket.close();
    }
  });

  test("socket.io-client 2.x is refused like any client when its query token is bad", async () => {
    await assert.rejects(connectV2(server, { token: sign({ sub: "x", iss: "https://evil.example/" }) }));
  });

  test("a clock a second off either way is forgiven (leeway)", async () => {
    const early = await connect(server, { token: sign({ sub: unique("u"), nbf: now() + 1 }) });
    early.close();
  });

  test("the rooms claim limits joins to its patterns", async () => {
    const socket = await connect(server, { token: sign({ sub: unique("u"), rooms: ["lobby", "team-*"] }) });
    try {
      await ok(socket, "join", { room: "lobby" });
      await ok(socket, "join", { room: unique("team") });
      const reply = await command(socket, "join", { room: unique("random") });
      assert.equal(reply.ok, false);
      assert.equal(reply.error.code, "forbidden");
    } finally {
      socket.close();
    }
  });

  test("a membership the current token does not allow is not used", async () => {
    const sub = unique("u");
    const secretRoom = unique("secret");
    const other = await connect(server, { token: sign({ sub: unique("o") }) });
    let wide = await connect(server, { token: sign({ sub }) });
    let narrow;
    try {
      await ok(wide, "join", { room: secretRoom });
      await ok(other, "join", { room: secretRoom });
      wide.close();

      narrow = await connect(server, { token: sign({ sub, rooms: ["team-*"] }) });
      const refusedSend = await command(narrow, "message", { room: secretRoom, text: "hi" });
      assert.equal(refusedSend.error?.code, "forbidden");
      const refusedHistory = await command(narrow, "history", { room: secretRoom });
      assert.equal(refusedHistory.error?.code, "forbidden");
      narrow.close();

      // The membership is still stored: a token that allows the room finds it again.
      wide = await connect(server, { token: sign({ sub }) });
      const live = next(wide, "message");
      const { message } = await ok(other, "message", { room: secretRoom, text: "welcome back" });
      assert.deepEqual(await live, message);
    } finally {
      closeAll(other, wide, narrow);
    }
  });

  test("a session ends when its token expires: an error event, then the disconnect", async () => {
    // Valid for 2 to 3 s (plus the leeway): time enough to connect on a busy machine.
    const socket = await connect(server, { token: sign({ sub: unique("u"), exp: now() + 3 }) });
    try {
      const error = next(socket, "error", () => true, (3 + LEEWAY) * 1000 + WAIT_MS);
      const gone = new Promise((resolve) => socket.once("disconnect", resolve));
      assert.equal((await error).code, "unauthorized");
      assert.equal(await gone, "io server disconnect");
    } finally {
      socket.close();
    }
  });
});

describe("sessions that outlive their tokens (CHATOXIDE_END_SESSION_ON_EXPIRY=false)", () => {
  let server;
  before(
    async () =>
      (server = await startServer({
        env: { JWT_SECRET: secret, JWT_LEEWAY_SECS: "0", CHATOXIDE_END_SESSION_ON_EXPIRY: "false" },
      })),
  );
  after(() => server.close());

  test("the socket stays connected and served past the token's exp", async () => {
    // Valid for 1 to 2 s: time enough to connect on a busy machine.
    const token = jwt.sign({ sub: unique("u"), exp: now() + 2 }, secret);
    const socket = await connect(server, { token });
    try {
      const errors = record(socket, "error");
      const disconnects = record(socket, "disconnect");
      // Rather than a sleep: once the server refuses this very token, its clock is past the
      // token's exp, when a session that ends with its token would have been ended.
      await eventually(
        () => refusal(server, { token }).then((err) => err.message === "unauthorized", () => false),
        undefined,
        "the server refuses the expired token",
      );
      await ok(socket, "join", { room: unique("still") });
      assert.equal(socket.connected, true);
      assert.deepEqual(errors, []);
      assert.deepEqual(disconnects, []);
    } finally {
      socket.close();
    }
  });
});

describe("tokens without exp (JWT_ALLOW_NO_EXP=true)", () => {
  let server;
  before(async () => (server = await startServer({ env: { JWT_SECRET: secret, JWT_ALLOW_NO_EXP: "true" } })));
  after(() => server.close());

  test("a token without exp is accepted", async () => {
    const sub = unique("u");
    const socket = await connect(server, { token: jwt.sign({ sub }, secret) });
    try {
      const { members } = await ok(socket, "join", { room: unique("no-exp") });
      assert.deepEqual(members, [{ id: sub, name: sub }]);
    } finally {
      socket.close();
    }
  });

  test("a token with an exp in the past is still refused", async () => {
    const token = jwt.sign({ sub: "late", exp: now() - 60 }, secret);
    assert.equal((await refusal(server, { token })).message, "unauthorized");
  });
});
