// A mixed cluster (issue 17): Node socket.io servers on @socket.io/redis-adapter 8.x
// (harness/node-redis-node.js) and chatoxide nodes with REDIS_ADAPTER=node, on one Redis under
// one fresh key, the chatoxide nodes on one database.
import { spawn } from "node:child_process";
import { dirname, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { startCluster } from "./cluster.js";
import { redisUrl } from "./redis.js";

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Starts a Node socket.io server on `key`. Returns { url, call(op, request), kill() }: `call`
 * issues a server-side operation on it (see node-redis-node.js) and resolves with its result.
 */
export async function startNodeServer(key, { redis = redisUrl } = {}) {
  const child = spawn(process.execPath, [resolve(here, "node-redis-node.js"), "--redis", redis, "--key", key], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const log = [];
  child.stderr.setEncoding("utf8").on("data", (c) => log.push(c));
  const waiting = new Map();
  let nextId = 0;
  const port = await new Promise((resolvePort, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (line.startsWith("listening ")) resolvePort(Number(line.slice(10)));
      if (!line.startsWith("reply ")) return log.push(line);
      const { id, result, error } = JSON.parse(line.slice(6));
      const pending = waiting.get(id);
      waiting.delete(id);
      if (error !== undefined) pending?.reject(new Error(error));
      else pending?.resolve(result);
    });
    child.once("exit", (code, signal) => reject(new Error(`Node server exited (${code ?? signal}):\n${log.join("")}`)));
  });
  const exited = new Promise((r) => child.once("exit", r));
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    call(op, request = {}) {
      const id = nextId++;
      return new Promise((resolveCall, reject) => {
        waiting.set(id, { resolve: resolveCall, reject });
        child.stdin.write(`${JSON.stringify({ id, op, ...request })}\n`);
      });
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

/**
 * Starts `size` chatoxide nodes in node mode on `key`, sharing one database; `args` are their
 * command-line arguments (a `--config`). Rate limits are off unless `env` turns them on.
 * Returns { nodes, close() }.
 */
export function startChatoxideNodes(size, key, { args = [], env = {} } = {}) {
  return startCluster(size, {
    prefix: key,
    args,
    env: { REDIS_ADAPTER: "node", CHATOXIDE_RATE_LIMITS: "false", ...env },
  });
}
