// Connection state recovery (socket.io 4.x): servers with it on, clients that come back by
// themselves and record what they get, and the cut that sends them away. The relay namespace
// `/live` is served two ways behind one handle: by chatoxide with fixtures/recovery.toml, and by
// Node socket.io 4.8 (harness/recovery-node-server.js, the reference).
import assert from "node:assert/strict";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { startServer } from "./server.js";
import { NodeReference, serverKinds } from "./node-reference.js";
import { connected, next, unique, WAIT_MS } from "./client.js";

const here = dirname(fileURLToPath(import.meta.url));

/** chatoxide's configuration of `/live`: the Node reference's app, written as relay rules. */
export const RECOVERY_CONFIG = resolve(here, "..", "fixtures", "recovery.toml");

/** The relay namespace of the recovery suite. */
export const LIVE = "/live";

/**
 * Pings of the recovery tests: a polling client cut off is seen gone within 2.4 s (a ping
 * after 400 ms, unanswered for 2 s), while a client that a saturated machine stalls for a second
 * (the suites run four files at once, two of them driving Chromium) is not taken for gone: with
 * 400 ms for the answer, a sender's pending ack was cut off by its own ping timeout.
 */
export const QUICK_PINGS = { intervalMs: 400, timeoutMs: 2000 };

/** Both servers' default pings (Node's: 25 s, then 20 s for the answer). */
export const DEFAULT_PINGS = { intervalMs: 25_000, timeoutMs: 20_000 };

/** The servers the `/live` suite runs against (RECOVERY_KINDS, see serverKinds). */
export function recoveryKinds() {
  return serverKinds("RECOVERY_KINDS");
}

/**
 * chatoxide's settings for recovery on `namespaces` (a comma list; every namespace when not
 * given: the flag without a value), sessions kept `maxDisconnectionMs`, pings every
 * `pings.intervalMs`. Returns { args, env } for startServer or startCluster. With
 * `logDisconnects` its debug log says when a socket goes (see `sawDisconnect`).
 */
export function chatoxideRecovery({
  namespaces,
  maxDisconnectionMs = 120_000,
  pings = QUICK_PINGS,
  logDisconnects = true,
} = {}) {
  return {
    args: [
      "--max-disconnection-duration-ms",
      String(maxDisconnectionMs),
      // Last: without a value, the flag must not take the next argument as one.
      ...(namespaces ? ["--connection-state-recovery", namespaces] : ["--connection-state-recovery"]),
    ],
    env: {
      CHATOXIDE_PING_INTERVAL_MS: String(pings.intervalMs),
      CHATOXIDE_PING_TIMEOUT_MS: String(pings.timeoutMs),
      ...(logDisconnects ? { RUST_LOG: "info,chatoxide=debug" } : {}),
    },
  };
}

/** Resolves once chatoxide `server` has logged that socket `sid` went. */
export function sawDisconnect(server, sid) {
  return server.logged((entry) => entry.message === "disconnected" && entry.sid === sid);
}

/**
 * Starts a server of `kind` ("chatoxide" or "node") serving `/live` with recovery on, sessions
 * kept `maxDisconnectionMs`. Returns { kind, url, port, sawDisconnect(sid), stop(signal),
 * start(), close() }: `start()` starts it again on the same port (clients reconnect by
 * themselves), with nothing of the last run kept in memory.
 */
export async function startLive(kind, { maxDisconnectionMs = 120_000, pings = QUICK_PINGS } = {}) {
  if (kind === "chatoxide") return startLiveChatoxide(maxDisconnectionMs, pings);
  if (kind === "node") return startLiveNode(maxDisconnectionMs, pings);
  throw new Error(`the recovery suite's server is "node" or "chatoxide", not ${kind}`);
}

async function startLiveChatoxide(maxDisconnectionMs, pings) {
  const { args, env } = chatoxideRecovery({ namespaces: LIVE, maxDisconnectionMs, pings });
  const server = await startServer({ args: ["--config", RECOVERY_CONFIG, ...args], env });
  return {
    kind: "chatoxide",
    get url() {
      return server.url;
    },
    get port() {
      return server.port;
    },
    sawDisconnect: (sid) => sawDisconnect(server, sid),
    stop: (signal) => server.stop(signal),
    start: () => server.start({ samePort: true }),
    close: () => server.close(),
  };
}

async function startLiveNode(maxDisconnectionMs, pings) {
  const node = new NodeReference("recovery-node-server.js", [
    "--max-disconnection-ms",
    String(maxDisconnectionMs),
    "--ping-interval-ms",
    String(pings.intervalMs),
    "--ping-timeout-ms",
    String(pings.timeoutMs),
  ]);
  await node.start();
  return {
    kind: "node",
    get url() {
      return node.url;
    },
    get port() {
      return node.port;
    },
    sawDisconnect: (sid) => node.printed(new RegExp(`^disconnected ${escapeRegExp(sid)} `)),
    stop: (signal) => node.stop(signal),
    start: () => node.start(),
    close: () => node.stop("SIGKILL"),
  };
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Connects to `url` (a namespace's) over `transport` only, as a client that reconnects by
 * itself, soon (after 100 ms, then at most 500). It records every `event` it gets with all its
 * arguments (an offset is the last) in `received`, and the data of every CONNECT the server
 * sent it (`{ sid, pid? }`) in `connects`.
 */
export async function recoveringClient(url, { transport, auth = {}, event } = {}) {
  const socket = io(url, {
    auth,
    forceNew: true,
    autoConnect: false,
    transports: [transport],
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
  });
  socket.received = [];
  socket.on(event, (...args) => socket.received.push(args));
  socket.connects = [];
  socket.io.on("packet", ({ type, nsp, data }) => {
    if (type === 0 && nsp === socket.nsp) socket.connects.push(data);
  });
  socket.connect();
  await connected(socket);
  return socket;
}

/**
 * Cuts `proxy`, with `socket` behind it, and resolves with the client's disconnect reason once
 * both ends saw the connection go (the client, and the server through `serverSaw(sid)`, unless
 * it is not given) and a reconnection was refused.
 */
export async function cutOff(proxy, socket, serverSaw) {
  const gone = next(socket, "disconnect");
  const refused = next(socket.io, "reconnect_error");
  const seen = serverSaw ? serverSaw(socket.id) : undefined;
  proxy.cut();
  const [reason] = await Promise.all([gone, seen, refused]);
  return reason;
}

/** Restores `proxy` and resolves once `socket` is connected again. */
export async function letBack(proxy, socket) {
  const back = next(socket, "connect");
  proxy.restore();
  await back;
}

/** `enter(room)` on `/live`, which must succeed. */
export async function enter(socket, room) {
  assert.deepEqual(await socket.timeout(WAIT_MS).emitWithAck("enter", room), { ok: true });
}

/** `say(room, text)` on `/live`, which must succeed. */
export async function say(socket, room, text) {
  assert.deepEqual(await socket.timeout(WAIT_MS).emitWithAck("say", room, text), { ok: true });
}

/**
 * A delivery barrier on `/live`: `sender` says a fresh text in `room`; resolves with it once
 * `receiver` has heard it. Anything said to `receiver` before it has arrived by then.
 */
export async function sayBarrier(sender, receiver, room) {
  const text = unique("barrier");
  const heard = next(receiver, "said", (...args) => args[1] === text);
  await say(sender, room, text);
  await heard;
  return text;
}
