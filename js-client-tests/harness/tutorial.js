// The official Socket.IO tutorial's chat (issue 16), served two ways behind one interface: by its
// own Node server (harness/tutorial-node-server.js, the reference) and by chatoxide with the
// relay rules of examples/socketio-tutorial/chatoxide.toml. The tutorial's page is a third-party
// fixture: it is served from the shared fixtures folder, never copied into the project.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "./server.js";
import { NodeReference, serverKinds } from "./node-reference.js";

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

/** The servers the suite runs against: both by default (TUTORIAL_KINDS, see serverKinds). */
export function tutorialKinds() {
  return serverKinds("TUTORIAL_KINDS");
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
  const store = join(dir, "messages.jsonl");
  const node = new NodeReference("tutorial-node-server.js", ["--dir", tutorialPageDir(), "--store", store]);
  await node.start();
  return {
    kind: "node",
    get url() {
      return node.url;
    },
    get log() {
      return node.log;
    },
    kill: () => node.stop("SIGKILL"),
    start: () => node.start(),
    async close() {
      await node.stop("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
