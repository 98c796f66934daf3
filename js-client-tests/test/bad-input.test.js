// Bad input: every command with every kind of malformed argument gets a clear error, and the
// server goes on serving everyone else.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, NO_RATE_LIMITS } from "../harness/server.js";
import { connectAs, command, ok, next, unique, closeAll } from "../harness/client.js";

let server;
// Hundreds of bad commands from one user: rate limits off (they have their own suite).
before(async () => (server = await startServer({ env: NO_RATE_LIMITS })));
after(() => server.close());

const huge = "x".repeat(90_000);
const shapes = {
  "a string": "general",
  null: null,
  "an array": [{ room: "general" }],
  "a number": 42,
  "a boolean": true,
  "an empty object": {},
};

const commands = {
  join: { room: "R" },
  leave: { room: "R" },
  message: { room: "R", text: "hi" },
  typing: { room: "R", typing: true },
  history: { room: "R" },
  read: { room: "R", message_id: "M" },
  presence: { room: "R" },
  edit: { message_id: "M", text: "hi" },
  delete: { message_id: "M" },
};

/** Every field of `valid`, replaced in turn by a value of the wrong type and by a huge string. */
function corruptions(valid) {
  const out = [];
  for (const field of Object.keys(valid)) {
    const wrong = typeof valid[field] === "boolean" ? "yes" : { nested: [1, 2] };
    out.push([`${field} of the wrong type`, { ...valid, [field]: wrong }, ["bad_request"]]);
    if (typeof valid[field] === "string") {
      out.push([`${field} huge`, { ...valid, [field]: huge }, ["bad_request", "too_large"]]);
    }
    const missing = { ...valid };
    delete missing[field];
    out.push([`${field} missing`, missing, ["bad_request"]]);
  }
  return out;
}

test("every command refuses malformed arguments with bad_request or too_large", async () => {
  const room = unique("bad");
  const s = await connectAs(server, unique("fuzzy"));
  const healthy = await connectAs(server, unique("healthy"));
  const buddy = await connectAs(server, unique("buddy"));
  try {
    await ok(s, "join", { room });
    await ok(healthy, "join", { room });
    await ok(buddy, "join", { room });
    const { message } = await ok(s, "message", { room, text: "target" });
    const fill = (arg) => JSON.parse(JSON.stringify(arg).replaceAll('"R"', JSON.stringify(room)).replaceAll('"M"', JSON.stringify(message.id)));
    for (const [name, valid] of Object.entries(commands)) {
      const cases = [
        ...Object.entries(shapes).map(([what, arg]) => [what, arg, ["bad_request"]]),
        ...corruptions(fill(valid)),
      ];
      for (const [what, arg, codes] of cases) {
        const reply = await command(s, name, arg);
        assert.equal(reply.ok, false, `${name} with ${what}`);
        assert.ok(codes.includes(reply.error.code), `${name} with ${what}: ${JSON.stringify(reply.error)}`);
        assert.equal(typeof reply.error.message, "string");
      }
      // Between commands, another client is served normally.
      const text = `still serving after ${name}`;
      const live = next(buddy, "message", (m) => m.text === text);
      await ok(healthy, "message", { room, text });
      assert.equal((await live).user.id, healthy.auth.username);
    }
  } finally {
    closeAll(s, healthy, buddy);
  }
});

test("a command with no argument at all, or with extra arguments, is answered", async () => {
  const s = await connectAs(server, unique("argless"));
  try {
    const reply = await new Promise((resolve) => s.emit("join", resolve));
    assert.equal(reply.error.code, "bad_request");
    const room = unique("extra");
    const extra = await new Promise((resolve) => s.emit("join", { room }, "surplus", resolve));
    assert.equal(extra.ok, true);
  } finally {
    s.close();
  }
});

test("unicode: right-to-left, zero-width and astral text is stored exactly; invalid room characters are refused", async () => {
  const room = unique("uni");
  const s = await connectAs(server, unique("unicode"));
  try {
    await ok(s, "join", { room });
    const text = "שלום \u200b zero\u200dwidth 𝄞 👩‍👩‍👧";
    assert.equal((await ok(s, "message", { room, text })).message.text, text);
    assert.equal((await command(s, "join", { room: "room\u200b" })).error.code, "bad_request");
  } finally {
    s.close();
  }
});

test("a binary attachment where text belongs is a bad_request", async () => {
  const room = unique("bin");
  const s = await connectAs(server, unique("binary"));
  try {
    await ok(s, "join", { room });
    const reply = await command(s, "message", { room, text: new Uint8Array([0xff, 0xfe, 0xd8, 0x00]) });
    assert.equal(reply.error.code, "bad_request");
  } finally {
    s.close();
  }
});

test("deep nesting is a bad_request, not a crash", async () => {
  const room = unique("deep");
  const s = await connectAs(server, unique("nester"));
  try {
    await ok(s, "join", { room });
    let deep = "x";
    for (let i = 0; i < 1000; i++) deep = [deep]; // past serde_json's recursion limit (128)
    const reply = await command(s, "message", { room, text: deep });
    assert.equal(reply.error.code, "bad_request");
    await ok(s, "message", { room, text: "still here" });
  } finally {
    s.close();
  }
});

for (const transports of [["websocket"], ["polling"]]) {
  test(`a payload over the limit closes that connection (${transports[0]}); the others are served`, async () => {
    const room = unique("oversize");
    const big = await connectAs(server, unique("big"), { transports });
    const healthy = await connectAs(server, unique("healthy"));
    try {
      await ok(big, "join", { room });
      await ok(healthy, "join", { room });
      const gone = new Promise((resolve) => big.once("disconnect", resolve));
      big.emit("message", { room, text: "x".repeat(200_000) }, () => {});
      await gone;
      await ok(healthy, "message", { room, text: "served" });
      const stored = (await ok(healthy, "history", { room })).messages.map((m) => m.text);
      assert.deepEqual(stored, ["served"]);
    } finally {
      closeAll(big, healthy);
    }
  });
}
