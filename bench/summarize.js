// Medians of a results file (a JSON line per run, or per fanout or floor step), and ratios:
// chatoxide to the Node baseline under the same load, a 3-node cluster to 1 node, a pair of
// cluster nodes to the pair of Node servers (`mixed`), a round trip beside 19,000 held
// connections to one beside none, and a server with connection state recovery to itself without
// (`recovery`).
import { readFileSync } from "node:fs";

const runs = readFileSync(process.argv[2], "utf8").trim().split("\n").map((l) => JSON.parse(l));
const median = (xs) => {
  const s = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (!s.length) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x, digits = 2) => (x === null ? null : +x.toFixed(digits));
const sum = (rs, f) => rs.reduce((n, r) => n + f(r), 0);
const groups = new Map();
for (const r of runs) groups.set(r.label, [...(groups.get(r.label) ?? []), r]);

// One row per label: the medians of its runs.
const summarize = {
  durable: (rs) => ({
    acked_per_sec: Math.round(median(rs.map((r) => r.acked_per_sec))),
    p50_ms: median(rs.map((r) => r.ack_latency.p50_ms)),
    p99_ms: median(rs.map((r) => r.ack_latency.p99_ms)),
    p999_ms: median(rs.map((r) => r.ack_latency.p999_ms)),
    errors: sum(rs, (r) => Object.values(r.errors).reduce((a, b) => a + b, 0)),
  }),
  idle: (rs) => ({
    connections: median(rs.map((r) => r.connections)),
    rss_bytes_per_conn: Math.round(median(rs.map((r) => r.rss_bytes_per_connection))),
    kernel_bytes_per_conn: Math.round(median(rs.map((r) => r.kernel_tcp_bytes_per_connection))),
    connections_per_sec: Math.round(median(rs.map((r) => r.connections / r.connect_secs))),
    failed: sum(rs, (r) => r.failed_connections),
  }),
  fanout: (rs) => ({
    deliveries_per_sec: Math.round(median(rs.map((r) => r.deliveries_per_sec))),
    p50_ms: median(rs.map((r) => r.delivery_latency.p50_ms)),
    p99_ms: median(rs.map((r) => r.delivery_latency.p99_ms)),
    cpu_us_per_delivery: round(median(rs.map((r) => r.server_cpu_us_per_delivery))),
    server_cpu: round(median(rs.map((r) => r.server_cpu_util))),
    lost: sum(rs, (r) => r.lost_deliveries),
    redis_dropped: sum(rs, (r) => r.redis_dropped),
    group: rs[0].group,
  }),
  floor: (rs) => ({
    sends_per_sec: Math.round(median(rs.map((r) => r.sends_per_sec))),
    cpu_us_per_send: round(median(rs.map((r) => r.sender_cpu_us_per_send)), 3),
    sender_cpu: round(median(rs.map((r) => r.sender_cpu_util))),
    core_busy_us_per_send: round(median(rs.map((r) => r.core_busy_us_per_send))),
    lag_ms: round(median(rs.map((r) => r.lag_ms))),
    // runs whose sends reached 99 % of the rate asked
    kept_up: `${rs.filter((r) => r.sends_per_sec >= 0.99 * r.target_sends_per_sec).length}/${rs.length}`,
    blocked_writes: sum(rs, (r) => r.blocked_writes),
    lost_bytes: sum(rs, (r) => r.lost_bytes),
  }),
  joinstorm: (rs) => ({
    ok: median(rs.map((r) => r.ok)),
    failed: sum(rs, (r) => Object.values(r.failures).reduce((a, b) => a + b, 0)),
    last_ok_ms: round(median(rs.map((r) => r.last_ok_ms)), 0),
    p50_ms: round(median(rs.map((r) => r.latency.p50_ms)), 0),
    cpu_to_last_answer: round(median(rs.map((r) => r.server_cpu_secs_to_last_answer))),
    cpu_until_quiet: round(median(rs.map((r) => r.server_cpu_secs_until_quiet))),
    next_message_once: median(rs.map((r) => r.next_message_once)),
  }),
  reconnect: (rs) => ({
    back: median(rs.map((r) => r.back)),
    back_after_listening_ms: round(median(rs.map((r) => r.back_after_listening_ms)), 0),
    refused_tries: sum(rs, (r) => r.refused_tries),
    server_cpu_secs: round(median(rs.map((r) => r.server_cpu_secs))),
    message_reached: median(rs.map((r) => r.message_reached)),
  }),
  outbox: (rs) => ({
    lag_p50_s: median(rs.map((r) => r.lag_p50_s)),
    lag_p99_s: median(rs.map((r) => r.lag_p99_s)),
    lag_max_s: median(rs.map((r) => r.lag_max_s)),
    drain_secs: round(median(rs.map((r) => r.drain_secs))),
    published: median(rs.map((r) => r.published)),
  }),
  history: (rs) => ({
    p50_ms: median(rs.map((r) => r.page_latency.p50_ms)),
    p99_ms: median(rs.map((r) => r.page_latency.p99_ms)),
    seed_secs: median(rs.map((r) => r.seed_secs)),
  }),
};
const rows = [...groups].map(([label, rs]) => ({ label, runs: rs.length, ...summarize[rs[0].scenario](rs) }));
console.log(`\nmedians of ${process.argv[2]}`);
console.table(rows.map(({ group, ...row }) => row));

const byLabel = new Map(rows.map((r) => [r.label, r]));
const ratio = (a, b) => (a === null || b === null || b === undefined || !b ? null : +(a / b).toPrecision(2));
const ratios = [];
const fanoutRatios = (r, base) => ({
  "CPU/delivery ÷": ratio(r.cpu_us_per_delivery, base.cpu_us_per_delivery),
  "p99 ÷": ratio(r.p99_ms, base.p99_ms),
});
for (const r of rows) {
  const [target, ...rest] = r.label.split(" ");
  const kind = rest.join(" ");
  let base = byLabel.get(`node-postgres ${kind}`) ?? byLabel.get(`node-memory ${kind}`) ?? byLabel.get(`node-pair ${kind}`);
  let against = base?.label.split(" ")[0] ?? "node";
  if (target === "chatoxide" && /^3-node/.test(kind)) {
    base = byLabel.get(`chatoxide ${kind.replace(/^3-node/, "1-node")}`);
    against = "1 node";
  } else if (/^outbox-(nats|amqp)$/.test(kind)) {
    base = byLabel.get(`${target} outbox-off`);
    against = "outbox off";
  } else if (/^beside-[1-9]/.test(kind)) {
    base = byLabel.get(`${target} beside-0`);
    against = "beside none";
  }
  if (!base || base === r || target.startsWith("node-")) continue;
  const row = { label: r.label, against };
  if (r.acked_per_sec !== undefined) {
    if (!/roundtrip|beside/.test(kind)) row["throughput ×"] = ratio(r.acked_per_sec, base.acked_per_sec);
    row["p50 ÷"] = ratio(r.p50_ms, base.p50_ms);
    row["p99 ÷"] = ratio(r.p99_ms, base.p99_ms);
    row["p99.9 ÷"] = ratio(r.p999_ms, base.p999_ms);
  } else if (r.rss_bytes_per_conn !== undefined) {
    row["RSS/conn ÷"] = ratio(r.rss_bytes_per_conn, base.rss_bytes_per_conn);
    row["connections/s ×"] = ratio(r.connections_per_sec, base.connections_per_sec);
  } else if (r.last_ok_ms !== undefined) {
    row["last ok ÷"] = ratio(r.last_ok_ms, base.last_ok_ms);
    row["CPU until quiet ÷"] = ratio(r.cpu_until_quiet, base.cpu_until_quiet);
  } else if (r.back_after_listening_ms !== undefined) {
    row["all back ÷"] = ratio(r.back_after_listening_ms, base.back_after_listening_ms);
    row["server CPU ÷"] = ratio(r.server_cpu_secs, base.server_cpu_secs);
  } else if (r.deliveries_per_sec !== undefined) {
    if (against === "node-pair") row["deliveries/s ×"] = ratio(r.deliveries_per_sec, base.deliveries_per_sec);
    Object.assign(row, fanoutRatios(r, base));
  }
  ratios.push(row);
}
for (const r of rows.filter((r) => / recovery-on-/.test(r.label))) {
  const base = byLabel.get(r.label.replace(" recovery-on-", " recovery-off-"));
  if (base) ratios.push({ label: r.label, against: "recovery off", ...fanoutRatios(r, base) });
}
if (ratios.length) {
  console.log("ratios (×: higher is better; ÷: lower is better)");
  console.table(ratios);
}

// Fanout: the most deliveries per second a server sustained with p99 under 50 ms and none lost.
const capacity = new Map();
for (const r of rows.filter((r) => r.group !== undefined)) {
  const best = capacity.get(r.group) ?? 0;
  if (r.p99_ms !== null && r.p99_ms < 50 && r.lost === 0 && r.deliveries_per_sec > best) capacity.set(r.group, r.deliveries_per_sec);
  else if (!capacity.has(r.group)) capacity.set(r.group, 0);
}
if (capacity.size) {
  console.log("fanout: deliveries/s at p99 < 50 ms with none lost (the highest step that held)");
  console.table([...capacity].map(([group, deliveries]) => {
    const [target, ...rest] = group.split(" ");
    const node = capacity.get(`node-postgres ${rest.join(" ")}`) ?? capacity.get(`node-pair ${rest.join(" ")}`);
    return { group, deliveries_per_sec: deliveries, "× node": target.startsWith("node-") ? null : ratio(deliveries, node) };
  }));
}
