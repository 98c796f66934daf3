// Crowds: a reconnect storm of real socket.io-client clients from one address, with
// default settings: the server killed and started again, every client back in its room.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startServer } from "../harness/server.js";
import { unique, closeAll } from "../harness/client.js";
import { PATIENCE_MS, everyoneGets, sure } from "../harness/crowd.js";

describe("a reconnect storm (default settings)", () => {
  let server;
  before(async () => (server = await startServer()));
  after(() => server.close());

  test("1,000 socket.io-client clients from one address, the server killed and restarted: all back in their room", async (t) => {
    const room = unique("storm");
    const prefix = unique("back");
    const client = (i) => io(server.url, { auth: { username: `${prefix}-${i}` }, forceNew: true });
    const clients = [];
    // Connected. A handshake the server refuses is not retried by socket.io-client: one
    // refused `unavailable` (nothing happened, try again: a busy machine's storm can time out
    // the memberships read) is tried again, as the contract asks of a client, and counted;
    // any other refusal fails the test with its reason.
    let unavailable = 0;
    const connected = (socket) =>
      socket.connected
        ? Promise.resolve()
        : new Promise((resolve, reject) => {
            const refused = (err) => {
              if (socket.active) return; // a transport error: the client retries by itself
              if (err.message !== "unavailable") return reject(new Error(`refused: ${err.message}`));
              unavailable += 1;
              setTimeout(() => socket.connect(), 250 + Math.random() * 750);
            };
            socket.on("connect_error", refused);
            socket.once("connect", () => {
              socket.off("connect_error", refused);
              resolve();
            });
          });
    const guarded = (what, promise, ms = PATIENCE_MS) => {
      let guard;
      const late = new Promise((_, reject) => (guard = setTimeout(() => reject(new Error(what)), ms)));
      return Promise.race([promise, late]).finally(() => clearTimeout(guard));
    };
    try {
      // Connected a few hundred at a time: the storm under test is the reconnect, not this.
      for (let first = 0; first < 1000; first += 250) {
        const batch = Array.from({ length: 250 }, (_, i) => client(first + i));
        clients.push(...batch);
        await guarded("not every client connected", Promise.all(batch.map(connected)));
      }
      for (let first = 0; first < clients.length; first += 250) {
        await Promise.all(clients.slice(first, first + 250).map((c) => sure(c, "join", { room })));
      }
      const gone = clients.map((c) => new Promise((r) => c.once("disconnect", r)));

      await server.restart({ signal: "SIGKILL", samePort: true });
      await guarded("not every client saw the server go", Promise.all(gone));
      const started = Date.now();
      // A storm of 1,000 on a debug build and two busy cores took 20 to 45 s here: the guard
      // is twice the crowd patience (the time it took is reported, not judged).
      await guarded("not every client came back", Promise.all(clients.map(connected)), 2 * PATIENCE_MS);
      const back = Date.now() - started;
      // For a failure's message: who dropped again after coming back.
      const dropsAfter = clients.map(() => 0);
      clients.forEach((c, i) => c.on("disconnect", () => (dropsAfter[i] += 1)));

      // Back in the room without joining: the next message reaches every one of them.
      const text = unique("welcome-back");
      const receivers = clients.slice(1);
      const delivered = everyoneGets(receivers, text);
      await sure(clients[0], "message", { room, text });
      await delivered.all.catch((err) => {
        const missing = receivers.flatMap((c, i) =>
          delivered.counts[i] === 0 ? [`${i + 1} (connected ${c.connected}, dropped ${dropsAfter[i + 1]} times since)`] : [],
        );
        throw new Error(`${err.message}: ${missing.join(", ")}`);
      });
      assert.equal(delivered.counts.filter((n) => n !== 1).length, 0);
      t.diagnostic(`all 1,000 back ${back} ms after the restart; ${unavailable} handshakes refused unavailable and tried again`);
    } finally {
      closeAll(...clients);
    }
  });
});
