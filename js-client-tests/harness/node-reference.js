// A Node socket.io reference server (a script of this folder) as a child process, stopped and
// started again like chatoxide's handle: on a free port of 127.0.0.1 first, on the same port
// after, so that its clients reconnect by themselves. The script takes `--port` and prints
// `listening <port>` once it accepts connections.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { backend } from "./database.js";

const here = dirname(fileURLToPath(import.meta.url));

/**
 * The servers a suite that holds chatoxide to a Node reference runs against: both by default.
 * `variable` (TUTORIAL_KINDS=node, ...) narrows it, for development only. The Node reference
 * does not use the project's database, so the PostgreSQL run (TEST_DB=postgres) leaves it out.
 */
export function serverKinds(variable) {
  const kinds = (process.env[variable] ?? "node,chatoxide").split(",").map((k) => k.trim());
  return backend === "postgres" ? kinds.filter((k) => k !== "node") : kinds;
}

export class NodeReference {
  /** Everything the process wrote, a line an entry. */
  log = [];
  /** The port of the first run, kept by every later one. */
  port = 0;
  /** Called with each new line (see `printed`). */
  #listeners = new Set();
  /** Where the current run's lines begin in `log`. */
  #runStart = 0;

  /** `script` is a file of this folder; `args` its arguments besides `--port`. */
  constructor(script, args = []) {
    this.script = join(here, script);
    this.args = args;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    const args = [this.script, "--port", String(this.port), ...this.args];
    this.#runStart = this.log.length;
    this.process = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.exited = new Promise((resolve) =>
      this.process.once("close", (code, signal) => resolve({ code, signal })),
    );
    for (const output of [this.process.stdout, this.process.stderr]) {
      createInterface({ input: output }).on("line", (line) => this.#append(line));
    }
    this.port = await new Promise((resolve, reject) => {
      this.printed(/^listening (\d+)$/, Infinity).then((found) => resolve(Number(found[1])));
      this.exited.then(({ code, signal }) =>
        reject(new Error(`${this.script} exited (${code ?? signal}):\n${this.log.join("\n")}`)),
      );
    });
  }

  /**
   * Resolves with the match of `pattern` in the first line of this run (printed so far or to
   * come) it matches: a barrier for what the server does without telling a client. `ms`
   * guards against hanging, it is not a measure.
   */
  printed(pattern, ms = 30_000) {
    return new Promise((resolve, reject) => {
      const done = (value, err) => {
        clearTimeout(timer);
        this.#listeners.delete(listener);
        if (err) reject(err);
        else resolve(value);
      };
      const listener = (line) => {
        const found = pattern.exec(line);
        if (found) done(found);
      };
      const timer =
        ms === Infinity ? undefined : setTimeout(() => done(undefined, new Error(`nothing printed matched ${pattern} in ${ms} ms`)), ms);
      const earlier = this.log.slice(this.#runStart).map((line) => pattern.exec(line)).find(Boolean);
      if (earlier) done(earlier);
      else this.#listeners.add(listener);
    });
  }

  #append(line) {
    this.log.push(line);
    for (const listener of this.#listeners) listener(line);
  }

  /** Stops the process (SIGTERM by default); returns its exit code and signal. */
  async stop(signal = "SIGTERM") {
    const running = this.process.exitCode === null && this.process.signalCode === null;
    if (running) this.process.kill(signal);
    return this.exited;
  }
}
