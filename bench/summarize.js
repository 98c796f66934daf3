// Medians of a results file (one JSON line per run), and ratios to the Node baseline.
import { readFileSync } from "node:fs";

const runs = readFileSync(process.argv[2], "utf8").trim().split("\n").map((l) => JSON.parse(l));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const groups = new Map();
for (const r of runs) groups.set(r.label, [...(groups.get(r.label) ?? []), r]);

const rows = [];
for (const [label, rs] of groups) {
  if (rs[0].scenario === "durable") {
    rows.push({
      label,
      runs: rs.length,
      acked_per_sec: Math.round(median(rs.map((r) => r.acked_per_sec))),
      p50_ms: median(rs.map((r) => r.ack_latency.p50_ms)),
      p99_ms: median(rs.map((r) => r.ack_latency.p99_ms)),
      p999_ms: median(rs.map((r) => r.ack_latency.p999_ms)),
      errors: rs.reduce((n, r) => n + Object.values(r.errors).reduce((a, b) => a + b, 0), 0),
    });
  } else if (rs[0].scenario === "idle") {
    rows.push({
      label,
      runs: rs.length,
      connections: median(rs.map((r) => r.connections)),
      rss_bytes_per_conn: Math.round(median(rs.map((r) => r.rss_bytes_per_connection))),
      kernel_bytes_per_conn: Math.round(median(rs.map((r) => r.kernel_tcp_bytes_per_connection))),
      connect_secs: +median(rs.map((r) => r.connect_secs)).toFixed(2),
      failed: rs.reduce((n, r) => n + r.failed_connections, 0),
    });
  } else if (rs[0].scenario === "cluster") {
    rows.push({
      label,
      runs: rs.length,
      deliveries_per_sec: Math.round(median(rs.map((r) => r.deliveries_per_sec))),
      p50_ms: median(rs.map((r) => r.delivery_latency.p50_ms)),
      p99_ms: median(rs.map((r) => r.delivery_latency.p99_ms)),
      ack_p99_ms: median(rs.map((r) => r.ack_latency.p99_ms)),
      lost: rs.reduce((n, r) => n + r.lost_deliveries, 0),
      redis_dropped: rs.reduce((n, r) => n + r.redis_dropped, 0),
    });
  } else {
    rows.push({ label, runs: rs.length, p50_ms: median(rs.map((r) => r.page_latency.p50_ms)), p99_ms: median(rs.map((r) => r.page_latency.p99_ms)), seed_secs: median(rs.map((r) => r.seed_secs)) });
  }
}
console.log(`\nmedians of ${process.argv[2]}`);
console.table(rows);

const byLabel = new Map(rows.map((r) => [r.label, r]));
const ratios = [];
for (const r of rows) {
  const [target, kind] = r.label.split(" ");
  const node = byLabel.get(`node-postgres ${kind}`);
  if (!node || target === "node-postgres" || r.acked_per_sec === undefined) continue;
  ratios.push({
    label: r.label,
    "throughput × node": +(r.acked_per_sec / node.acked_per_sec).toFixed(2),
    "p99 ÷ node": +(r.p99_ms / node.p99_ms).toFixed(2),
  });
}
// Idle: memory per connection against Node's.
for (const r of rows) {
  const node = byLabel.get("node-postgres idle");
  if (r.rss_bytes_per_conn === undefined || !node || r.label === node.label) continue;
  ratios.push({ label: r.label, "RSS per connection ÷ node": +(r.rss_bytes_per_conn / node.rss_bytes_per_conn).toFixed(2) });
}
// Cluster: three nodes against one node at the same rate.
for (const r of rows) {
  const m = /^chatoxide 3-node (.*)$/.exec(r.label);
  const one = m && byLabel.get(`chatoxide 1-node ${m[1]}`);
  if (!one) continue;
  ratios.push({ label: r.label, "p50 ÷ 1-node": +(r.p50_ms / one.p50_ms).toFixed(2), "p99 ÷ 1-node": +(r.p99_ms / one.p99_ms).toFixed(2) });
}
if (ratios.length) {
  console.log("ratios: durable to node-postgres (throughput: higher is better; p99: lower is better), cluster 3 nodes to 1 node");
  console.table(ratios);
}
