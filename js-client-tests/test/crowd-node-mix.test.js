// A crowd on a mixed cluster (issue 17), with chatoxide's default settings: a Node socket.io
// server on @socket.io/redis-adapter 8.x and two chatoxide nodes with REDIS_ADAPTER=node, 100
// clients on each, and the classic chat's `send-chat-message` sent by all of them at once. Every
// client gets every message of the others exactly once, whichever node either is on.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { connect, closeAll, eventually, unique } from "../harness/client.js";
import { redisMissing } from "../harness/redis.js";
import { startChatoxideNodes, startNodeServer } from "../harness/node-mix.js";
import { PATIENCE_MS } from "../harness/crowd.js";

const examples = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "examples");
const PER_SERVER = 100;
const EACH = 3;
const skip = await redisMissing();

describe("the classic chat on a mixed cluster, a crowd, default settings", { skip }, () => {
  let node, oxide, folder;
  before(async () => {
    const key = unique("mixcrowd");
    folder = mkdtempSync(join(tmpdir(), "chatoxide-mixcrowd-"));
    const config = join(folder, "chatoxide.toml");
    writeFileSync(config, readFileSync(join(examples, "classic-node-chat.toml"), "utf8"));
    node = await startNodeServer(key);
    // The harness turns rate limits off for the functional suite; this one runs on defaults.
    oxide = await startChatoxideNodes(2, key, { args: ["--config", config], env: { CHATOXIDE_RATE_LIMITS: "true" } });
  });
  after(async () => {
    await node?.kill();
    await oxide?.close();
    if (folder) rmSync(folder, { recursive: true, force: true });
  });

  test(`${3 * PER_SERVER} clients over three servers send ${EACH} messages each at once`, async () => {
    const servers = [{ url: node.url }, ...oxide.nodes];
    const clients = [];
    try {
      for (const server of servers) {
        const batch = Array.from({ length: PER_SERVER }, () => connect(server, {}, { transports: ["websocket"] }));
        clients.push(...(await Promise.all(batch)));
      }
      const heard = clients.map((c) => {
        const counts = new Map();
        c.on("chat-message", (text) => counts.set(text, (counts.get(text) ?? 0) + 1));
        return counts;
      });

      /** Which server's clients fell short, how far, whether they were still connected. */
      function shortfall(which) {
        const lines = servers.map((server, s) => {
          const mine = which.filter((i) => Math.floor(i / PER_SERVER) === s);
          if (!mine.length) return `server ${s} (${server.url}): all heard everything`;
          const had = mine.map((i) => heard[i].size);
          const connected = mine.filter((i) => clients[i].connected).length;
          return `server ${s} (${server.url}): ${mine.length} short (heard ${Math.min(...had)}-${Math.max(...had)}), ${connected} of them connected`;
        });
        return `${lines.join("; ")}; Node server's log: ${node.log.join("").slice(-2000)}`;
      }

      const tag = unique("crowd");
      const sent = clients.map((c, i) =>
        Array.from({ length: EACH }, (_, j) => {
          const text = `${tag}-${i}-${j}`;
          c.emit("send-chat-message", text);
          return text;
        }),
      );
      const everything = sent.flat();
      const others = everything.length - EACH;
      const short = () => heard.flatMap((counts, i) => (counts.size < others ? [i] : []));
      await eventually(() => short().length === 0, PATIENCE_MS, () => `every client hearing ${others} messages; ${shortfall(short())}`);
      for (const [i, counts] of heard.entries()) {
        const expected = everything.filter((t) => !sent[i].includes(t));
        assert.deepEqual([...counts.keys()].sort(), expected.sort(), `client ${i}: the others' messages, not its own`);
        assert.ok([...counts.values()].every((n) => n === 1), `client ${i}: each once`);
      }
    } finally {
      closeAll(...clients);
    }
  });
});
