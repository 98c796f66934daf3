// The official Socket.IO tutorial's chat (issue 16), served two ways behind one interface: by its
// own Node server (harness/tutorial-node-server.js, the reference) and by chatoxide with the
// relay rules of examples/socketio-tutorial/chatoxide.toml. The tutorial's page is a third-party
// fixture: it is served from the shared fixtures folder, never copied into the project.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createInterface } from "node:readline";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "./server.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");

/** chatoxide's configuration for the tutorial: its server, written as relay rules. */
export const TUTORIAL_CONFIG = resolve(root, "examples", "socketio-tutorial", "chatoxide.toml");

/** The shared fixtures: CHATOXIDE_FIXTURES, else `../shared/fixtures` beside the project. */
export function fixtureDir() {
  return process.env.CHATOXIDE_FIXTURES ?? resolve(root, "..", "shared", "fixtures");
}

/** The folder that holds the tutorial's index.html, served at `/`. */
export function tutorialPageDir() {
  return join(fixtureDir(), "socketio-tutorial");
}

/**
 * `false` when the tutorial's page is there; otherwise the reason to skip its suite, said
 * loudly. Under CI=true a missing page is a failure, never a skip.
 */
export function tutorialMissing() {
  const page = join(tutorialPageDir(), "index.html");
  if (existsSync(page)) return false;
  const reason = `no Socket.IO tutorial page at ${page} (CHATOXIDE_FIXTURES names the fixtures folder)`;
  if (process.env.CI === "true") throw new Error(reason);
  console.error(`\n!!! SKIPPING THE SOCKET.IO TUTORIAL TESTS: ${reason} !!!\n`);
  return reason;
}

/**
 * The servers the suite runs against: both by default. TUTORIAL_KINDS=node (or =chatoxide) is
 * for development only. The Node reference does not use the project's database, so the
 * PostgreSQL run (TEST_DB=postgres) leaves it out.
 */
export function tutorialKinds() {
  const kinds = (process.env.TUTORIAL_KINDS ?? "node,chatoxide").split(",").map((k) => k.trim());
  return process.env.TEST_DB === "postgres" ? kinds.filter((k) => k !== "node") : kinds;
}

/**
 * Starts the tutorial's server of `kind` ("node" or "chatoxide") on a free port of 127.0.0.1,
 * with an empty message store. Returns { kind, url, log, kill(), start(), close() }: `kill()`
 * is a SIGKILL, `start()` starts it again on the same port and the same store (the pages
 * reconnect by themselves), `close()` stops it for good and drops the store.
 */
export async function startTutorial(kind) {
  if (kind === "node") return startNode();
  if (kind === "chatoxide") return startChatoxide();
  throw new Error(`the tutorial's server is "node" or "chatoxide", not ${kind}`);
}

async function startChatoxide() {
  if (!existsSync(TUTORIAL_CONFIG)) {
    throw new Error(`no ${TUTORIAL_CONFIG}: chatoxide's rules for the tutorial are missing`);
  }
  const server = await startServer({
    args: ["--config", TUTORIAL_CONFIG, "--static-dir", tutorialPageDir()],
  });
  return {
    kind: "chatoxide",
    get url() {
      return server.url;
    },
    get log() {
      return server.log;
    },
    kill: () => server.stop("SIGKILL"),
    start: () => server.start({ samePort: true }),
    close: () => server.close(),
  };
}

async function startNode() {
  const dir = mkdtempSync(join(tmpdir(), "chatoxide-tutorial-"));
  const node = new NodeTutorial(join(dir, "messages.jsonl"));
  await node.start();
  return {
    kind: "node",
    get url() {
      return `http://127.0.0.1:${node.port}`;
    },
    get log() {
      return node.log;
    },
    kill: () => node.kill(),
    start: () => node.start(),
    async close() {
      await node.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The tutorial's Node server as a child process: killed and started again like chatoxide. */
class NodeTutorial {
  /** Everything the process wrote, a line an entry. */
  log = [];
  /** The port of the first run, kept by every later one. */
  port = 0;

  constructor(store) {
    this.store = store;
  }

  async start() {
    const script = join(here, "tutorial-node-server.js");
    const args = ["--port", String(this.port), "--dir", tutorialPageDir(), "--store", this.store];
    this.process = spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    this.exited = new Promise((resolve) =>
      this.process.once("close", (code, signal) => resolve({ code, signal })),
    );
    this.port = await new Promise((resolve, reject) => {
      for (const output of [this.process.stdout, this.process.stderr]) {
        createInterface({ input: output }).on("line", (line) => this.#logged(line, resolve));
      }
      this.exited.then(({ code, signal }) =>
        reject(new Error(`the tutorial's Node server exited (${code ?? signal}):\n${this.log.join("\n")}`)),
      );
    });
  }

  #logged(line, listening) {
    this.log.push(line);
    const port = /^listening (\d+)$/.exec(line)?.[1];
    if (port) listening(Number(port));
  }

  async kill() {
    const running = this.process.exitCode === null && this.process.signalCode === null;
    if (running) this.process.kill("SIGKILL");
    return this.exited;
  }
}
