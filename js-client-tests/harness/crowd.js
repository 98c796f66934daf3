// Crowds of clients for the crowd suites: thousands of sockets of one process, commands that
// wait as long as a crowd needs (a guard against hanging, not a measure), and checks that every
// socket got something exactly once.
import assert from "node:assert/strict";
import { connectAs } from "./client.js";

/** How long a crowd test waits for anything (a guard against hanging, not a measure). */
export const PATIENCE_MS = 45_000;

/** Sends a command and resolves with its acknowledgement, waiting up to PATIENCE_MS. */
export function ask(socket, event, arg) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${event}`)), PATIENCE_MS);
    socket.emit(event, arg, (reply) => {
      clearTimeout(timer);
      resolve(reply);
    });
  });
}

/** Sends a command that must succeed, waiting up to PATIENCE_MS; returns the ack. */
export async function sure(socket, event, arg) {
  const reply = await ask(socket, event, arg);
  assert.equal(reply?.ok, true, `${event} ${JSON.stringify(arg)} failed: ${JSON.stringify(reply)}`);
  return reply;
}

/** `n` sockets of users `<prefix>-00000`…, connected over WebSocket, a few hundred at a time. */
export async function crowd(server, prefix, n) {
  const sockets = [];
  for (let first = 0; first < n; first += 250) {
    const batch = Array.from({ length: Math.min(250, n - first) }, (_, i) =>
      connectAs(server, `${prefix}-${String(first + i).padStart(5, "0")}`, { transports: ["websocket"] }),
    );
    sockets.push(...(await Promise.all(batch)));
  }
  return sockets;
}

/** Resolves once every socket has had `event` with `text`, counting how often each had it. */
export function everyoneGets(sockets, text) {
  const counts = sockets.map(() => 0);
  let missing = sockets.length;
  return {
    counts,
    all: new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${missing} sockets never got '${text}'`)), PATIENCE_MS);
      sockets.forEach((s, i) =>
        s.on("message", (m) => {
          if (m.text !== text) return;
          counts[i] += 1;
          if (counts[i] === 1 && --missing === 0) {
            clearTimeout(timer);
            resolve();
          }
        }),
      );
    }),
  };
}

/** Every member of `room`, paged with `members` as a client would (waiting when told to). */
export async function allMembers(socket, room) {
  const members = [];
  let after;
  for (;;) {
    const reply = await ask(socket, "members", { room, after, limit: 100 });
    if (reply.error?.code === "rate_limited") {
      await new Promise((r) => setTimeout(r, reply.error.retry_after_ms));
      continue;
    }
    assert.equal(reply.ok, true, JSON.stringify(reply));
    members.push(...reply.members);
    if (!reply.has_more) return members;
    after = reply.members.at(-1).id;
  }
}
