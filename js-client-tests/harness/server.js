// Starts the built chatoxide binary on a free port and stops it: the server under test is the
// real process, reached over real sockets.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createDatabase } from "./database.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const binary =
  process.env.CHATOXIDE_BIN ?? resolve(root, "target", "debug", "chatoxide");

/**
 * The value of one series in `server`'s /metrics text (`name` with its labels, as printed:
 * `chatoxide_sse_cuts_total{why="slow"}`); 0 when it is not there.
 */
export async function metric(server, series) {
  const text = await (await server.fetch("/metrics")).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(" ").pop()) : 0;
}

/** Settings for suites that load a server on purpose (rate limits have a suite of their own). */
export const NO_RATE_LIMITS = { CHATOXIDE_RATE_LIMITS: "false" };

/**
 * Starts a server with its own database. `env` adds settings (JWT_SECRET, API_KEY, ...), `args`
 * command-line arguments (`--config file.toml`).
 * The returned handle can stop (SIGTERM by default) and start again on the same database.
 */
export async function startServer({ env = {}, args = [], database } = {}) {
  if (!existsSync(binary)) {
    throw new Error(`no server binary at ${binary}: run cargo build first (or set CHATOXIDE_BIN)`);
  }
  const db = database ?? (await createDatabase());
  const server = new Server(db, env, args);
  await server.start();
  return server;
}

class Server {
  constructor(db, env, args) {
    this.db = db;
    this.env = env;
    this.args = args;
    this.log = [];
    /** Called with each new log entry (see `logged`). */
    this.listeners = new Set();
  }

  /** Starts the process; `samePort` listens where the last run did (clients reconnect there). */
  async start({ samePort = false } = {}) {
    this.process = spawn(binary, this.args, {
      env: {
        PATH: process.env.PATH,
        HOST: "127.0.0.1",
        PORT: samePort && this.port ? String(this.port) : "0",
        DATABASE_URL: this.db.url,
        LOG_FORMAT: "json",
        RUST_LOG: process.env.CHATOXIDE_LOG ?? "info",
        ...this.env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    // `close`, not `exit`: by then every line the process wrote is in `log`.
    this.exited = new Promise((resolve) =>
      this.process.once("close", (code, signal) => resolve({ code, signal })),
    );
    this.port = await this.#listeningPort();
    this.url = `http://127.0.0.1:${this.port}`;
  }

  /** Resolves with the port once the server logs that it listens. */
  #listeningPort() {
    return new Promise((resolve, reject) => {
      let buffered = "";
      const onData = (chunk) => {
        buffered += chunk;
        let newline;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          this.#append(line);
          const addr = parseListening(line);
          if (addr) resolve(Number(addr.split(":").pop()));
        }
      };
      this.process.stdout.setEncoding("utf8").on("data", onData);
      this.process.stderr.setEncoding("utf8").on("data", (c) => this.#append(c));
      this.exited.then(({ code, signal }) =>
        reject(new Error(`server exited (${code ?? signal}) before listening:\n${this.log.join("\n")}`)),
      );
    });
  }

  #append(entry) {
    this.log.push(entry);
    for (const listener of this.listeners) listener(entry);
  }

  /**
   * Resolves with the first JSON log entry (logged so far or to come) for which `match` is
   * true: a barrier for what the server does without telling a client (a disconnect seen).
   * `ms` guards against hanging, it is not a measure.
   */
  logged(match, ms = 30_000) {
    const parse = (line) => {
      try {
        return JSON.parse(line);
      } catch {
        return undefined;
      }
    };
    const matching = (chunk) => chunk.split("\n").map(parse).find((entry) => entry && match(entry));
    return new Promise((resolve, reject) => {
      const done = (value, err) => {
        clearTimeout(timer);
        this.listeners.delete(listener);
        if (err) reject(err);
        else resolve(value);
      };
      const listener = (chunk) => {
        const entry = matching(chunk);
        if (entry) done(entry);
      };
      const timer = setTimeout(() => done(undefined, new Error(`no matching log entry in ${ms} ms`)), ms);
      const earlier = this.log.map(matching).find(Boolean);
      if (earlier) done(earlier);
      else this.listeners.add(listener);
    });
  }

  /** Stops the process; returns its exit code and signal. */
  async stop(signal = "SIGTERM") {
    if (this.process.exitCode === null && this.process.signalCode === null) {
      this.process.kill(signal);
    }
    return this.exited;
  }

  /**
   * Stops (SIGTERM, or `signal`) and starts again on the same database: on a new port, or
   * with `samePort` where the clients were (they reconnect by themselves).
   */
  async restart({ signal = "SIGTERM", samePort = false } = {}) {
    const exit = await this.stop(signal);
    await this.start({ samePort });
    return exit;
  }

  /** Stops the server and drops its database. */
  async close() {
    await this.stop("SIGKILL");
    await this.db.drop();
  }

  /** The server process's resident memory now, in KiB (from /proc). */
  rssKiB() {
    const status = readFileSync(`/proc/${this.process.pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  }

  async fetch(path, init) {
    return fetch(`${this.url}${path}`, init);
  }
}

function parseListening(line) {
  try {
    const entry = JSON.parse(line);
    return entry.message === "listening" ? entry.addr : undefined;
  } catch {
    return undefined;
  }
}
