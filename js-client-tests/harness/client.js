// Clients of the chat: the real socket.io-client (4.x, and 2.x for old frontends), and the
// small helpers every test uses.
import { io } from "socket.io-client";
import ioV2 from "socket.io-client-v2";
import { randomBytes } from "node:crypto";

/**
 * How long a test waits for an answer or an event that must come: a guard against hanging on a
 * loaded machine (two cores, four suites at once, a debug build), never a measure.
 */
export const WAIT_MS = 10_000;

/** How long a test waits for a state it polls for (`eventually`): a guard, never a measure. */
export const EVENTUALLY_MS = 30_000;

/** A name no other test uses: tests share servers and run in parallel. */
export function unique(prefix) {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

/**
 * Connects with socket.io-client 4.x and waits for `connect`.
 * `auth` goes in the handshake; `options` are passed to io() (transports, query, ...).
 */
export async function connect(server, auth = {}, options = {}) {
  const socket = io(server.url, { auth, forceNew: true, reconnection: false, ...options });
  await connected(socket);
  return socket;
}

/**
 * Resolves at the socket's next `connect`; at a `connect_error` before it, closes the socket and
 * rejects. Neither listener outlives the answer: a socket that reconnects by itself (reconnection
 * on) is not closed by a refusal it meets later.
 */
export function connected(socket) {
  return new Promise((resolve, reject) => {
    const accepted = () => {
      socket.off("connect_error", refused);
      resolve();
    };
    const refused = (err) => {
      socket.off("connect", accepted);
      socket.close();
      reject(err);
    };
    socket.once("connect", accepted);
    socket.once("connect_error", refused);
  });
}

/** Connects as `username` in open mode. */
export function connectAs(server, username, options = {}) {
  return connect(server, { username }, options);
}

/** The `connect_error` a refused handshake produces (its message is the error code). */
export async function refusal(server, auth = {}, options = {}) {
  const socket = io(server.url, { auth, forceNew: true, reconnection: false, ...options });
  try {
    return await new Promise((resolve, reject) => {
      socket.once("connect", () => reject(new Error("the handshake was accepted")));
      socket.once("connect_error", resolve);
    });
  } finally {
    socket.close();
  }
}

/** Connects with socket.io-client 2.x (Engine.IO 3), identity in the query string. */
export async function connectV2(server, query = {}, options = {}) {
  const socket = ioV2(server.url, { query, forceNew: true, reconnection: false, ...options });
  // 2.x reports a refused connect as an `error` event, the name the chat's own `error` event
  // has: the refusal listeners go once connected, or they would close the socket at the first
  // `error` event of the chat.
  const refused = (reject) => (err) => {
    socket.close();
    reject(err instanceof Error ? err : new Error(String(err)));
  };
  let onError;
  let onConnectError;
  try {
    await new Promise((resolve, reject) => {
      onError = refused(reject);
      onConnectError = refused(reject);
      socket.once("connect", resolve);
      socket.once("error", onError);
      socket.once("connect_error", onConnectError);
    });
  } finally {
    socket.off("error", onError);
    socket.off("connect_error", onConnectError);
  }
  return socket;
}

/** Sends a command and resolves with its acknowledgement (works with both client versions). */
export function command(socket, event, arg) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${event} in ${WAIT_MS} ms`)), WAIT_MS);
    socket.emit(event, arg, (reply) => {
      clearTimeout(timer);
      resolve(reply);
    });
  });
}

/** Sends a command that must succeed; returns the ack. */
export async function ok(socket, event, arg) {
  const reply = await command(socket, event, arg);
  if (!reply || reply.ok !== true) {
    throw new Error(`${event} ${JSON.stringify(arg)} failed: ${JSON.stringify(reply)}`);
  }
  return reply;
}

/**
 * Resolves with the payload (first argument) of the next `event` on `socket` matching `filter`,
 * if given, which is called with all of the event's arguments.
 */
export function next(socket, event, filter = () => true, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, onEvent);
      reject(new Error(`no ${event} event in ${ms} ms`));
    }, ms);
    const onEvent = (payload, ...rest) => {
      if (!filter(payload, ...rest)) return;
      clearTimeout(timer);
      socket.off(event, onEvent);
      resolve(payload);
    };
    socket.on(event, onEvent);
  });
}

/** Collects every `event` on `socket` from now on, for checks that something did NOT arrive. */
export function record(socket, event) {
  const seen = [];
  socket.on(event, (payload) => seen.push(payload));
  return seen;
}

/**
 * A delivery barrier: `sender` posts a fresh message in `room` and this resolves once `receiver`
 * has it. Events to one socket arrive in order, so anything broadcast to `receiver` before the
 * barrier has arrived by then: checks that something was NOT delivered need no sleeping.
 */
export async function barrier(sender, receiver, room) {
  const text = unique("barrier");
  const arrived = next(receiver, "message", (m) => m.text === text);
  await ok(sender, "message", { room, text });
  return arrived;
}

/**
 * Polls `probe` until it returns a truthy value (which it returns); fails after `ms`. For a
 * state the server reaches on its own (a disconnect seen, a lease expired), where no event
 * tells the client: the deadline is a guard against hanging, not a measure. The pauses grow
 * from 50 ms to 1 s, so that a probe that is a command stays under its rate limit.
 */
export async function eventually(probe, ms = EVENTUALLY_MS, what = "the awaited state") {
  const deadline = Date.now() + ms;
  for (let pause = 50; ; pause = Math.min(pause * 2, 1000)) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${typeof what === "function" ? what() : what}`);
    await new Promise((r) => setTimeout(r, pause));
  }
}

/** Closes sockets, ignoring ones already closed. */
export function closeAll(...sockets) {
  for (const s of sockets) s?.close();
}
