// Connecting and identity: open mode, token mode (HS256, RS256), the query-string fallback,
// and the per-user room that reaches every tab.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import jwt from "jsonwebtoken";
import { startServer } from "../harness/server.js";
import {
  connect, connectAs, connectV2, refusal, ok, next, unique, closeAll, command,
} from "../harness/client.js";

describe("open mode", () => {
  let server;
  before(async () => (server = await startServer()));
  after(() => server.close());

  test("auth.username is the user id and the name", async () => {
    const name = unique("alice");
    const socket = await connectAs(server, name);
    try {
      const { members } = await ok(socket, "join", { room: unique("open") });
      assert.deepEqual(members, [{ id: name, name }]);
    } finally {
      socket.close();
    }
  });

  test("a socket without a name is a guest-<short id>", async () => {
    const socket = await connect(server, {});
    try {
      const { members } = await ok(socket, "join", { room: unique("guests") });
      assert.match(members[0].id, /^guest-[0-9a-z]+$/);
      assert.equal(members[0].name, members[0].id);
    } finally {
      socket.close();
    }
  });

  for (const [why, username] of [
    ["empty", ""],
    ["longer than 64 characters", "x".repeat(65)],
    ["with a control character", "bad\u0007name"],
  ]) {
    test(`a name ${why} is refused with bad_request`, async () => {
      const err = await refusal(server, { username });
      assert.equal(err.message, "bad_request");
    });
  }

  test("a name that is not a string is refused with bad_request", async () => {
    assert.equal((await refusal(server, { username: 42 })).message, "bad_request");
  });

  test("clients without auth send the name in the query string", async () => {
    const name = unique("query");
    const socket = await connect(server, undefined, { query: { username: name } });
    try {
      const { members } = await ok(socket, "join", { room: unique("q") });
      assert.deepEqual(members, [{ id: name, name }]);
    } finally {
      socket.close();
    }
  });

  test("socket.io-client 2.x identifies through the query string", async () => {
    const name = unique("old");
    const socket = await connectV2(server, { username: name });
    try {
      const reply = await command(socket, "join", { room: unique("v2") });
      assert.equal(reply.ok, true);
      assert.deepEqual(reply.members, [{ id: name, name }]);
    } finally {
      socket.close();
    }
  });

  test("a user's sockets share everything: what one tab joins, every tab receives", async () => {
    const name = unique("tabs");
    const room = unique("tabs");
    const tab1 = await connectAs(server, name);
    const tab2 = await connectAs(server, name);
    const other = await connectAs(server, unique("other"));
    try {
      await ok(tab1, "join", { room });
      await ok(other, "join", { room });
      const onTab2 = next(tab2, "message");
      const { message } = await ok(other, "message", { room, text: "to both tabs" });
      assert.deepEqual(await onTab2, message);
      // tab2 never sent join, yet it is a member: it may send.
      assert.equal((await ok(tab2, "message", { room, text: "from tab 2" })).message.user.id, name);
    } finally {
      closeAll(tab1, tab2, other);
    }
  });
});

describe("token mode, HS256", () => {
  const secret = "test-secret-" + unique("s");
  let server;
  before(async () => (server = await startServer({ env: { JWT_SECRET: secret } })));
  after(() => server.close());

  const sign = (claims, key = secret, options = { expiresIn: "5m" }) =>
    jwt.sign(claims, key, { algorithm: "HS256", ...options });

  test("a good token: id from sub, name from name", async () => {
    const sub = unique("u");
    const socket = await connect(server, { token: sign({ sub, name: "Alice Smith" }) });
    try {
      const { members } = await ok(socket, "join", { room: unique("t") });
      assert.deepEqual(members, [{ id: sub, name: "Alice Smith" }]);
    } finally {
      socket.close();
    }
  });

  test("without a name claim the name is sub", async () => {
    const sub = unique("u");
    const socket = await connect(server, { token: sign({ sub }) });
    try {
      const { members } = await ok(socket, "join", { room: unique("t") });
      assert.deepEqual(members, [{ id: sub, name: sub }]);
    } finally {
      socket.close();
    }
  });

  const refused = [
    ["missing", {}],
    ["malformed", { token: "not-a-jwt" }],
    ["badly signed", { token: sign({ sub: "mallory" }, "another-secret") }],
    ["expired", { token: sign({ sub: "late", exp: Math.floor(Date.now() / 1000) - 30 }, secret, {}) }],
    ["unsigned (alg none)", { token: jwt.sign({ sub: "mallory" }, null, { algorithm: "none", expiresIn: "5m" }) }],
    ["a username instead of a token", { username: "alice" }],
  ];
  for (const [why, auth] of refused) {
    test(`a ${why} token is refused with unauthorized`, async () => {
      assert.equal((await refusal(server, auth)).message, "unauthorized");
    });
  }
});

describe("token mode, RS256", () => {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  let server;
  before(async () => (server = await startServer({ env: { JWT_PUBLIC_KEY: publicKey } })));
  after(() => server.close());

  test("a token signed with the private key is accepted", async () => {
    const sub = unique("rsa");
    const token = jwt.sign({ sub, name: "Rita" }, privateKey, { algorithm: "RS256", expiresIn: "5m" });
    const socket = await connect(server, { token });
    try {
      const { members } = await ok(socket, "join", { room: unique("rsa") });
      assert.deepEqual(members, [{ id: sub, name: "Rita" }]);
    } finally {
      socket.close();
    }
  });

  test("HS256 signed with the public key as secret is refused", async () => {
    const token = jwt.sign({ sub: "mallory" }, Buffer.from(publicKey), { algorithm: "HS256", expiresIn: "5m" });
    assert.equal((await refusal(server, { token })).message, "unauthorized");
  });

  test("a token signed by another key is refused", async () => {
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    const token = jwt.sign({ sub: "mallory" }, other, { algorithm: "RS256", expiresIn: "5m" });
    assert.equal((await refusal(server, { token })).message, "unauthorized");
  });
});
