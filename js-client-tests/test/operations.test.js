// What an operator sees: /metrics answers the questions docs/operations.md lists (every metric
// there is served, and every metric served is documented), and log lines carry node, sid and user.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer, NO_RATE_LIMITS } from "../harness/server.js";
import { connectAs, command, ok, next, unique, closeAll, eventually } from "../harness/client.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * Metrics served only by a cluster node (`REDIS_URL` set): the cluster suite sees them. Every
 * other counter and gauge is served from the start, at 0.
 */
const APPEAR_ON_FAILURE = [
  "chatoxide_redis_up", "chatoxide_redis_errors_total", "chatoxide_redis_published_total",
  "chatoxide_redis_received_total", "chatoxide_redis_dropped_total",
];

/** The value of a sample `name{labels}` in Prometheus text, or undefined. */
function sample(text, name, labels = {}) {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-z_:]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries(
      (match[2] ?? "").split(",").filter(Boolean).map((kv) => {
        const [k, v] = kv.split("=");
        return [k, v.replace(/^"|"$/g, "")];
      }),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(match[3]);
  }
  return undefined;
}

/** The metric families /metrics describes (# TYPE lines). */
function families(text) {
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
}

describe("metrics and logs", () => {
  let server;
  before(async () => {
    server = await startServer({ env: { ...NO_RATE_LIMITS, RUST_LOG: "info,chatoxide=debug" } });
  });
  after(() => server.close());

  test("/metrics counts connections, commands, latency, broadcasts, storage and the runtime", async () => {
    const room = unique("ops");
    const ws = await connectAs(server, unique("ws"));
    const polling = await connectAs(server, unique("poll"), { transports: ["polling"] });
    const leaver = await connectAs(server, unique("leaver"));
    try {
      await ok(ws, "join", { room });
      await ok(polling, "join", { room });
      const got = next(polling, "message");
      await ok(ws, "message", { room, text: "measured" });
      await got;
      await command(ws, "join", { room: "" });
      leaver.disconnect();
      // The server counts the disconnect once it has seen it, and the runtime probe reports
      // once a second: scrape until both are there, however busy the machine.
      const text = await eventually(async () => {
        const scraped = await (await server.fetch("/metrics")).text();
        const seen =
          sample(scraped, "chatoxide_disconnects_total", { reason: "client namespace disconnect" }) >= 1 &&
          sample(scraped, "chatoxide_runtime_busy_ratio") !== undefined &&
          sample(scraped, "chatoxide_runtime_schedule_delay_seconds_count") >= 1;
        return seen && scraped;
      }, undefined, "the disconnect counted and the runtime probe reporting");
      assert.ok(sample(text, "chatoxide_connections", { namespace: "/", transport: "websocket" }) >= 1, "websocket connections");
      assert.ok(sample(text, "chatoxide_connections", { namespace: "/", transport: "polling" }) >= 1, "polling connections");
      assert.ok(sample(text, "chatoxide_connects_total", { namespace: "/" }) >= 3);
      assert.ok(sample(text, "chatoxide_disconnects_total", { reason: "client namespace disconnect" }) >= 1);
      assert.ok(sample(text, "chatoxide_commands_total", { command: "message", outcome: "ok" }) >= 1);
      assert.ok(sample(text, "chatoxide_commands_total", { command: "join", outcome: "bad_request" }) >= 1);
      assert.ok(sample(text, "chatoxide_command_seconds_count", { command: "message" }) >= 1);
      assert.ok(sample(text, "chatoxide_command_seconds_bucket", { command: "message", le: "+Inf" }) >= 1, "a histogram with buckets");
      assert.ok(sample(text, "chatoxide_broadcasts_total", { event: "message" }) >= 1);
      // The audience is measured on one broadcast in 16, the process's first among them.
      const audiences = [...text.matchAll(/^chatoxide_broadcast_audience_count\{[^}]*\} (\d+)/gm)];
      assert.ok(audiences.reduce((n, m) => n + Number(m[1]), 0) >= 1, "a broadcast audience measured");
      assert.ok(sample(text, "chatoxide_write_batch_size_count") >= 1);
      assert.ok(sample(text, "chatoxide_write_commit_seconds_bucket", { le: "+Inf" }) >= 1);
      assert.ok(sample(text, "chatoxide_runtime_workers") >= 1);
      const busy = sample(text, "chatoxide_runtime_busy_ratio");
      assert.ok(busy >= 0 && busy <= 1, `busy ratio ${busy}`);
      assert.ok(sample(text, "chatoxide_runtime_schedule_delay_seconds_count") >= 1);
      assert.ok(sample(text, "process_resident_memory_bytes") > 0);
      assert.ok(sample(text, "process_open_fds") > 0);
    } finally {
      closeAll(ws, polling, leaver);
    }
  });

  test("counters and gauges are served at 0 before anything happened: no dashboard sees no data", async () => {
    const fresh = await startServer();
    try {
      const text = await (await fresh.fetch("/metrics")).text();
      assert.equal(sample(text, "chatoxide_write_queue_depth"), 0);
      assert.equal(sample(text, "chatoxide_storage_errors_total", { kind: "unavailable" }), 0);
      assert.equal(sample(text, "chatoxide_storage_errors_total", { kind: "stalled" }), 0);
      assert.equal(sample(text, "chatoxide_rate_limited_total", { limit: "session" }), 0);
      assert.equal(sample(text, "chatoxide_commands_total", { command: "members", outcome: "unavailable" }), 0);
      assert.equal(sample(text, "chatoxide_handshake_rejections_total", { code: "unauthorized" }), 0);
      assert.equal(sample(text, "chatoxide_disconnects_total", { reason: "ping timeout" }), 0);
      assert.equal(sample(text, "chatoxide_broadcasts_total", { event: "member_count" }), 0);
      assert.equal(sample(text, "chatoxide_abuse_disconnects_total"), 0);
      // After a burst of writes the queue is back at 0: it is set when the writer drains it.
      const s = await connectAs(fresh, unique("writer"));
      const room = unique("drained");
      await ok(s, "join", { room });
      await Promise.all(Array.from({ length: 20 }, (_, i) => ok(s, "message", { room, text: `m${i}` })));
      s.close();
      const after = await (await fresh.fetch("/metrics")).text();
      assert.equal(sample(after, "chatoxide_write_queue_depth"), 0);
    } finally {
      await fresh.close();
    }
  });

  test("every chatoxide metric served is in docs/operations.md, and every one there is served", async () => {
    // Storage errors and rate limits must have happened once to be served: a refused command
    // of each kind is not possible here, so the documented list is checked against /metrics'
    // families plus the ones that only appear after a failure.
    const served = families(await (await server.fetch("/metrics")).text());
    const doc = readFileSync(resolve(root, "docs", "operations.md"), "utf8");
    const documented = new Set([...doc.matchAll(/`((?:chatoxide|process)_[a-z_]+)`/g)].map((m) => m[1]));
    for (const name of served) {
      if (name.startsWith("chatoxide_")) assert.ok(documented.has(name), `${name} is served but not in docs/operations.md`);
    }
    const appearOnFailure = new Set(APPEAR_ON_FAILURE);
    for (const name of documented) {
      if (!name.startsWith("chatoxide_") || appearOnFailure.has(name)) continue;
      assert.ok(served.has(name), `${name} is documented but not served`);
    }
  });

  test("every metric the Grafana dashboard queries is served (or appears on its first failure)", async () => {
    const scrape = await (await server.fetch("/metrics")).text();
    const checked = spawnSync(
      process.execPath,
      [resolve(root, "docker", "grafana", "check-dashboard.js"), "--metrics", "-", ...APPEAR_ON_FAILURE],
      { input: scrape, encoding: "utf8" },
    );
    assert.equal(checked.status, 0, `${checked.stdout}\n${checked.stderr}`);
  });

  test("every log line names the node; lines about a socket carry sid and user", async () => {
    const user = unique("logged");
    const s = await connectAs(server, user);
    const sid = s.id;
    s.disconnect();
    await server.logged((l) => l.sid === sid && l.message === "disconnected");
    const lines = server.log
      .flatMap((chunk) => chunk.split("\n"))
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l));
    assert.ok(lines.length > 3);
    for (const line of lines) assert.equal(typeof line.node, "string", JSON.stringify(line));
    const about = lines.filter((l) => l.sid === sid);
    assert.ok(about.some((l) => l.message === "connected"), JSON.stringify(about));
    assert.ok(about.some((l) => l.message === "disconnected"), JSON.stringify(about));
    for (const line of about) assert.equal(line.user, user, JSON.stringify(line));
  });
});
