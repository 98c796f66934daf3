// Several chatoxide nodes on one Redis (a fresh key prefix) and one database: a cluster.
import { startServer } from "./server.js";
import { createDatabase } from "./database.js";
import { redisUrl } from "./redis.js";
import { eventually, unique } from "./client.js";

/** Presence TTL of test clusters: a dead node's users must vanish within it. */
export const PRESENCE_TTL_MS = 3000;

/**
 * Starts `size` nodes. `redis` overrides the Redis URL (a proxy), `prefix` the fresh key prefix,
 * `env` adds settings and `args` command-line arguments (a `--config`).
 * Returns { nodes, database, prefix, close() }.
 */
export async function startCluster(size, { redis = redisUrl, prefix = unique("chatoxide-test"), env = {}, args = [] } = {}) {
  const database = await createDatabase();
  const nodes = [];
  try {
    for (let i = 0; i < size; i++) {
      nodes.push(
        await startServer({
          database,
          args,
          env: {
            REDIS_URL: redis,
            REDIS_PREFIX: prefix,
            CHATOXIDE_NODE_ID: `node${i}`,
            CHATOXIDE_PRESENCE_TTL_MS: String(PRESENCE_TTL_MS),
            ...env,
          },
        }),
      );
    }
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop("SIGKILL")));
    await database.drop();
    throw err;
  }
  return {
    nodes,
    database,
    prefix,
    async close() {
      await Promise.all(nodes.map((n) => n.stop("SIGKILL")));
      await database.drop();
    },
  };
}

/** Polls `probe` until it returns a truthy value; fails after `ms` (see harness/client.js). */
export { eventually };
