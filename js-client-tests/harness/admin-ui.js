// The official Socket.IO admin UI (@socket.io/admin-ui 0.5.1) against chatoxide's /admin
// namespace: its built files on a local static server, headless Chromium (the system's, through
// playwright-core; Playwright's own browser downloads are not used), an admin-socket probe, and the
// Node reference implementation the same tests can run against (ADMIN_UI_REFERENCE=node).
import http from "node:http";
import { createReadStream, existsSync, statSync } from "node:fs";
import { dirname, extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { startServer } from "./server.js";

const here = dirname(fileURLToPath(import.meta.url));
export const UI_DIR = resolve(here, "..", "node_modules", "@socket.io", "admin-ui", "ui", "dist");

/** Generous, bounded waits: the server promises changes within about a second, stats every 2 s. */
export const UI_WAIT_MS = 10_000;

/** What supportedFeatures must list for every page and button of the UI. */
export const FEATURES = ["JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "EMIT", "AGGREGATED_EVENTS", "ALL_EVENTS"];

/** ADMIN_UI_REFERENCE=node runs the suite against Node socket.io + instrument() instead. */
export const reference = process.env.ADMIN_UI_REFERENCE === "node";

// ---------------------------------------------------------------------------------------------
// Chromium

/** The browser binary: CHROMIUM_PATH, else /usr/bin/chromium (scripts/ensure-chromium). */
export const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/**
 * `false` when the browser tests can run; otherwise the reason to skip them. Under CI=true a
 * missing Chromium is a failure, never a skip.
 */
export function chromiumMissing() {
  if (existsSync(chromiumPath)) return false;
  const reason = `no Chromium at ${chromiumPath} (run scripts/ensure-chromium or set CHROMIUM_PATH): the admin UI browser tests need it`;
  if (process.env.CI === "true") throw new Error(reason);
  console.error(`\n!!! SKIPPING THE ADMIN UI BROWSER TESTS: ${reason} !!!\n`);
  return reason;
}

export async function launchChromium() {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: chromiumPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

// ---------------------------------------------------------------------------------------------
// The UI's files

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "application/javascript",
  ".css": "text/css",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".map": "application/json",
};

/**
 * Serves ui/dist at http://127.0.0.1:<port>/ui/ (its asset URLs are relative and its router uses
 * the hash, so any prefix ending in `/` works). Returns { url, close() }.
 */
export async function serveUi() {
  const server = http.createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    if (path === "/ui") {
      res.writeHead(301, { location: "/ui/" });
      return res.end();
    }
    if (!path.startsWith("/ui/")) {
      res.writeHead(404);
      return res.end("not found");
    }
    const rel = path.slice("/ui/".length) || "index.html";
    const file = join(UI_DIR, normalize(rel));
    if (!file.startsWith(UI_DIR + "/") || !existsSync(file) || statSync(file).isDirectory()) {
      res.writeHead(404);
      return res.end("not found");
    }
    res.writeHead(200, { "content-type": MIME[extname(file)] ?? "application/octet-stream" });
    createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}/ui/`,
    close: () => new Promise((r) => server.close(r)),
  };
}

// ---------------------------------------------------------------------------------------------
// The server under test

/**
 * chatoxide with ADMIN_USERNAME/ADMIN_PASSWORD when `admin` ({ username, password }) is given,
 * without them otherwise, `env` adding settings; or, with ADMIN_UI_REFERENCE=node, the Node
 * reference server.
 * Returns { url, log, close() }.
 */
export async function startAdminTarget(admin, env = {}) {
  if (reference) return startReference(admin);
  const credentials = admin ? { ADMIN_USERNAME: admin.username, ADMIN_PASSWORD: admin.password } : {};
  return startServer({ env: { ...credentials, ...env } });
}

/**
 * socket.io 4 + instrument() (bcrypt-hashed password, development mode), with the chat's `join`
 * command contract ({ room } -> { ok: true, room }) and the CORS setting the admin UI's README asks for.
 */
async function startReference(admin) {
  const { Server } = await import("socket.io");
  const httpServer = http.createServer();
  const ioServer = new Server(httpServer, { cors: { origin: true, credentials: true } });
  ioServer.on("connection", (socket) => {
    socket.on("join", (arg, ack) => {
      socket.join(arg.room);
      ack?.({ ok: true, room: arg.room });
    });
  });
  if (admin) {
    const { instrument } = await import("@socket.io/admin-ui");
    const { default: bcrypt } = await import("bcryptjs");
    instrument(ioServer, {
      auth: { type: "basic", username: admin.username, password: bcrypt.hashSync(admin.password, 4) },
      mode: "development",
    });
  }
  await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${httpServer.address().port}`,
    log: ["(Node reference server: no log)"],
    close: () => new Promise((r) => ioServer.close(() => r())),
  };
}

/** The server's last log lines, for failure messages. */
export function logTail(server, lines = 40) {
  return (server?.log ?? []).slice(-lines).join("\n");
}

// ---------------------------------------------------------------------------------------------
// An admin socket as the UI opens it, recording every event (with all its arguments)

/**
 * Opens `/admin` with `auth` and records everything from the first packet on (config and
 * all_sockets come right after the connect). `connected` resolves on connect and rejects with the
 * connect_error.
 */
export function adminProbe(server, auth) {
  const socket = io(`${server.url}/admin`, { auth, forceNew: true, reconnection: false, transports: ["websocket"] });
  const events = [];
  const waiters = new Set();
  socket.onAny((event, ...args) => {
    events.push({ event, args, beforeConnect: !socket.connected, at: Date.now() });
    for (const w of waiters) w();
  });
  const connected = new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (err) => {
      socket.close();
      reject(err);
    });
  });
  return {
    socket,
    events,
    connected,
    /** Resolves with the args of the first `event` (seen so far or to come) matching `filter`. */
    waitFor(event, filter = () => true, ms = UI_WAIT_MS) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = events.find((e) => e.event === event && filter(...e.args));
          if (!hit) return false;
          done();
          resolve(hit.args);
          return true;
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${event} event matching within ${ms} ms; admin socket received:\n${this.summary()}`));
        }, ms);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        if (!check()) waiters.add(check);
      });
    },
    /** The events received so far, one line each, payloads cut short. */
    summary(limit = 40) {
      return events
        .slice(-limit)
        .map((e) => `  ${e.beforeConnect ? "(before connect) " : ""}${e.event} ${JSON.stringify(e.args).slice(0, 400)}`)
        .join("\n");
    },
    close() {
      socket.close();
    },
  };
}
