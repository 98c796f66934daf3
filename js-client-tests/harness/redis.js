// The Redis the cluster tests run on: REDIS_URL (default 127.0.0.1:6379). Every test cluster
// gets a key prefix of its own, so runs and tests never see each other's keys or channels.
import net from "node:net";

export const redisUrl = process.env.TEST_REDIS_URL ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** Where the Redis server is, for tests that put a proxy in front of it. */
export function redisAddress() {
  const url = new URL(redisUrl);
  return { host: url.hostname, port: Number(url.port || 6379) };
}

/** Whether Redis answers PING (a raw RESP exchange: no client library needed for this). */
export function redisAnswers(ms = 2000) {
  return new Promise((resolve) => {
    const socket = net.connect(redisAddress());
    const done = (answer) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(false), ms);
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")));
    socket.once("error", () => done(false));
  });
}

/**
 * `false` when the cluster tests can run; otherwise the reason to skip them. Under CI=true a
 * missing Redis is a failure, never a skip.
 */
export async function redisMissing() {
  if (await redisAnswers()) return false;
  const reason = `Redis does not answer at ${redisUrl}: the cluster tests need Redis 7`;
  if (process.env.CI === "true") throw new Error(reason);
  console.error(`\n!!! SKIPPING THE CLUSTER TESTS: ${reason} !!!\n`);
  return reason;
}
