// A token's `rooms` claim limits delivery, not only commands: a join made on a tab with a wider
// token puts the user's other tabs in the room only where their own tokens allow it.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import jwt from "jsonwebtoken";
import { startServer } from "../harness/server.js";
import { connect, ok, next, record, unique, closeAll } from "../harness/client.js";

const secret = "delivery-secret-" + unique("s");
const sign = (claims) => jwt.sign({ exp: Math.floor(Date.now() / 1000) + 300, ...claims }, secret, { algorithm: "HS256" });

describe("delivery to a socket whose token excludes the room", () => {
  let server;
  before(async () => (server = await startServer({ env: { JWT_SECRET: secret } })));
  after(() => server.close());

  test("a join on a wide tab reaches a narrow tab only in the rooms its token allows", async () => {
    const sub = unique("u");
    const secretRoom = unique("secret");
    const teamRoom = unique("team");
    const wide = await connect(server, { token: sign({ sub }) });
    const narrow = await connect(server, { token: sign({ sub, rooms: ["team-*"] }) });
    const other = await connect(server, { token: sign({ sub: unique("o") }) });
    try {
      await ok(other, "join", { room: secretRoom });
      await ok(other, "join", { room: teamRoom });
      const leaked = record(narrow, "message");
      await ok(wide, "join", { room: secretRoom });
      await ok(wide, "join", { room: teamRoom });

      // The wide tab hears the secret room; the narrow one must not.
      const wideHears = next(wide, "message", (m) => m.room === secretRoom);
      await ok(other, "message", { room: secretRoom, text: "not for narrow" });
      await wideHears;
      // Barrier: the team room's message, sent after, reaches the narrow tab (its token allows
      // the room), so the secret one would have arrived before it.
      const narrowHears = next(narrow, "message", (m) => m.room === teamRoom);
      await ok(other, "message", { room: teamRoom, text: "for everyone" });
      await narrowHears;
      assert.deepEqual(
        leaked.map((m) => m.room),
        [teamRoom],
      );
    } finally {
      closeAll(wide, narrow, other);
    }
  });
});
