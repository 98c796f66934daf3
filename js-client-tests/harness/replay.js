// Clients of a relay rule that replays (the Socket.IO tutorial's `chat message`): they send
// `(text, key)` with an acknowledgement, keep `auth.serverOffset` from the id appended to every
// message they receive, as the tutorial's page does, and record what they received.
import { resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { WAIT_MS, eventually } from "./client.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The tutorial's rules file, as users run it. */
export const TUTORIAL_CONFIG = resolve(root, "examples", "socketio-tutorial", "chatoxide.toml");

export const EVENT = "chat message";

/**
 * Connects as the tutorial's page does (`auth: { serverOffset }`, `ackTimeout`, `retries`), and
 * records every `chat message` as `[text, id]` in `socket.received`. These clients do not
 * reconnect: with `retries`, a packet sent by one that was disconnected waits for a reconnection
 * forever, so `retries` is 0 unless a test asks for it (and then must keep its socket up).
 * Resolves once connected.
 */
export async function tutorialClient(
  server,
  { serverOffset = 0, transports = ["websocket"], retries = 0, ackTimeout = WAIT_MS, namespace = "", event = EVENT } = {},
) {
  const socket = io(`${server.url}${namespace}`, {
    auth: { serverOffset },
    ackTimeout,
    retries,
    transports,
    forceNew: true,
    reconnection: false,
  });
  socket.received = [];
  socket.on(event, (text, id) => {
    socket.received.push([text, id]);
    socket.auth.serverOffset = id;
  });
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  return socket;
}

/** The sequence number within its room of a message id (its last 16 hex digits). */
export function seqOf(id) {
  return parseInt(id.slice(16), 16);
}

/** Sends `(text, key)` and resolves with the acknowledgement's arguments (an array). */
export function send(socket, text, key, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    socket.timeout(ms).emit(EVENT, text, key, (err, ...args) => (err ? reject(err) : resolve(args)));
  });
}

/**
 * Sends `(text, key)` until it is acknowledged, as a client with `retries` does: a replaying
 * rule's `ack = "empty"` leaves a failure a retry may cure (storage busy) unanswered, and the
 * same key again stores nothing twice. Unlike socket.io-client's own retries, every message of
 * a burst is in flight at once. Resolves with the acknowledgement's arguments.
 */
export async function sendSurely(socket, text, key, ms = WAIT_MS, tries = 6) {
  for (let tried = 1; ; tried++) {
    try {
      return await send(socket, text, key, ms);
    } catch (err) {
      if (tried >= tries || !socket.connected) throw err;
    }
  }
}

/** Waits until `socket` has received `n` messages; returns them. */
export async function receivedAll(socket, n, ms) {
  await eventually(() => socket.received.length >= n, ms, `${n} messages (had ${socket.received.length})`);
  return socket.received;
}

/** Everything stored in `room`, `[text, id]` in store order, read over HTTP (history pages). */
export async function stored(server, room = "tutorial") {
  const pages = [];
  let before = "";
  for (;;) {
    const res = await server.fetch(`/api/rooms/${room}/messages?limit=100&before=${before}`);
    if (res.status === 404) return [];
    const body = await res.json();
    if (!body.ok) throw new Error(`history of ${room}: ${JSON.stringify(body)}`);
    pages.unshift(body.messages.map((m) => [m.text, m.id]));
    if (!body.has_more || body.messages.length === 0) break;
    before = body.messages[0].id;
  }
  return pages.flat();
}
