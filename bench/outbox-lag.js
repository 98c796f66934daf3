// The outbox's lag under load (bench/run.sh outbox): samples a chatoxide server's
// `chatoxide_outbox_lag_seconds` every 100 ms from /metrics while the load runs (until the file
// STOP exists), then until the outbox has drained (lag 0 twice in a row); prints one JSON line:
// the lag's p50, p99 and maximum while loaded, how long the drain took after the load, and how
// many events the broker confirmed.
//
//   node bench/outbox-lag.js URL STOP LABEL
import { existsSync } from "node:fs";

const [url, stop, label] = process.argv.slice(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function scrape() {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const value = (name) => Number(text.split("\n").find((l) => l.startsWith(`${name} `))?.split(" ").pop() ?? NaN);
    return { lag: value("chatoxide_outbox_lag_seconds"), published: value("chatoxide_outbox_published_total") };
  } catch {
    return null;
  }
}

const samples = [];
while (!existsSync(stop)) {
  const s = await scrape();
  if (s) samples.push(s.lag);
  await sleep(100);
}
const loadEnded = Date.now();
let last;
for (let zeros = 0; zeros < 2; ) {
  last = await scrape();
  zeros = last && last.lag === 0 ? zeros + 1 : 0;
  if (Date.now() - loadEnded > 120_000) break;
  await sleep(100);
}
const sorted = samples.filter(Number.isFinite).sort((a, b) => a - b);
const pick = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null);
console.log(
  JSON.stringify({
    scenario: "outbox",
    label,
    lag_p50_s: pick(0.5),
    lag_p99_s: pick(0.99),
    lag_max_s: sorted.at(-1) ?? null,
    drain_secs: (Date.now() - loadEnded) / 1000,
    published: last?.published ?? null,
  }),
);
