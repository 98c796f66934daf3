// The end-to-end check of docker/smoke.sh: real socket.io-client 4.x clients against the
// compose stack it booted, through HAProxy on 127.0.0.1:3000 and against each node (3001, 3002),
// and Prometheus's HTTP API on 9090. One line per check, then `N passed, M failed`; exit 0 only
// when every check passed. The node it stops is named by `--stop` (a command that stops chat2).
//
//   node docker/smoke-check.mjs "<command that stops chat2>"
import { execSync } from "node:child_process";
import { createRequire } from "node:module";
import { randomBytes } from "node:crypto";

const require = createRequire(new URL("../js-client-tests/package.json", import.meta.url));
const { io } = require("socket.io-client");

const [stopChat2] = process.argv.slice(2);
const LB = "http://127.0.0.1:3000";
const NODES = { chat1: "http://127.0.0.1:3001", chat2: "http://127.0.0.1:3002" };
const PROMETHEUS = "http://127.0.0.1:9090";
const WAIT_MS = 10_000;
const unique = (p) => `${p}-${randomBytes(3).toString("hex")}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let passed = 0;
let failed = 0;
async function check(name, body) {
  try {
    await body();
    passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err.message}`);
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

async function client(url, username, transports = ["websocket"]) {
  const socket = io(url, { auth: { username }, transports, forceNew: true, reconnection: false });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${username} not connected to ${url} in time`)), WAIT_MS);
    socket.once("connect", () => (clearTimeout(timer), resolve()));
    socket.once("connect_error", (err) => (clearTimeout(timer), reject(err)));
  });
  return socket;
}

async function ok(socket, event, arg) {
  const answer = await socket.timeout(WAIT_MS).emitWithAck(event, arg);
  assert(answer?.ok === true, `${event}: ${JSON.stringify(answer)}`);
  return answer;
}

function heard(socket, text) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`never heard '${text}'`)), WAIT_MS);
    const on = (m) => {
      if (m.text !== text) return;
      clearTimeout(timer);
      socket.off("message", on);
      resolve(m);
    };
    socket.on("message", on);
  });
}

async function eventually(probe, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(500);
  }
}

const room = unique("smoke");
const [alice, bob] = [unique("alice"), unique("bob")];
const sockets = [];

await check("each node and the balancer answer /healthz", async () => {
  for (const url of [LB, ...Object.values(NODES)]) {
    const res = await fetch(`${url}/healthz`);
    assert(res.status === 200, `${url}/healthz answered ${res.status}`);
  }
});

let a, b;
await check("clients on both nodes see each other's messages", async () => {
  a = await client(NODES.chat1, alice);
  b = await client(NODES.chat2, bob);
  sockets.push(a, b);
  await ok(a, "join", { room });
  await ok(b, "join", { room });
  const toBob = heard(b, "from chat1");
  await ok(a, "message", { room, text: "from chat1" });
  await toBob;
  const toAlice = heard(a, "from chat2");
  await ok(b, "message", { room, text: "from chat2" });
  await toAlice;
});

const names = (answer) => answer.users.map((u) => u.id).sort();
await check("presence agrees on both nodes", async () => {
  const want = [alice, bob].sort().join(",");
  await eventually(async () => {
    const [onA, onB] = [await ok(a, "presence", { room }), await ok(b, "presence", { room })];
    return names(onA).join(",") === want && names(onB).join(",") === want;
  }, WAIT_MS, `both nodes listing ${want}`);
});

await check("a long-polling client works through the balancer (sticky sessions)", async () => {
  const carol = unique("carol");
  const c = await client(LB, carol, ["polling"]);
  sockets.push(c);
  assert(c.io.engine.transport.name === "polling", "not on polling");
  await ok(c, "join", { room });
  const toCarol = heard(c, "to the poller");
  await ok(a, "message", { room, text: "to the poller" });
  await toCarol;
  for (let i = 0; i < 5; i++) await ok(c, "history", { room, limit: 5 });
  const toAlice = heard(a, "from the poller");
  await ok(c, "message", { room, text: "from the poller" });
  await toAlice;
});

await check("Prometheus has scraped both nodes (its HTTP API answers `up` for each)", async () => {
  await eventually(async () => {
    const res = await fetch(`${PROMETHEUS}/api/v1/query?query=${encodeURIComponent('up{job="chatoxide"}')}`);
    if (res.status !== 200) return false;
    const body = await res.json();
    const up = Object.fromEntries(body.data.result.map((r) => [r.metric.node, r.value[1]]));
    return up.chat1 === "1" && up.chat2 === "1";
  }, 30_000, "up == 1 for chat1 and chat2");
});

await check("a node stopped with `docker stop`: the other serves on, its users leave presence", async () => {
  execSync(stopChat2, { stdio: "ignore" });
  const dave = unique("dave");
  const d = await client(NODES.chat1, dave);
  sockets.push(d);
  await ok(d, "join", { room });
  const toAlice = heard(a, "still here");
  await ok(d, "message", { room, text: "still here" });
  await toAlice;
  await eventually(async () => !names(await ok(a, "presence", { room })).includes(bob), 30_000, `${bob} leaving presence`);
  const res = await fetch(`${LB}/healthz`);
  assert(res.status === 200, `the balancer answered ${res.status} with chat2 stopped`);
});

for (const s of sockets) s.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
