// A Node socket.io 4.8 server on @socket.io/redis-adapter 8.x (node-redis 4): the Node side of a
// mixed cluster (issue 17). It runs the classic minimal Node chat's handler and the cookbook's
// roll call (docs/migrating-from-node.md), and takes server-side operations on its standard input
// so that a test can issue them from the Node side:
//
//   node node-redis-node.js --redis <url> --key <key>
//
// Prints `listening <port>` once it accepts connections. Each input line is a JSON request
// `{ id, op, ... }`; each answer a line `reply <json>` with the same `id` and `result` or `error`.
// Binary values travel in these lines as `{ "$bin": [bytes] }`.
import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const { values: options } = parseArgs({
  options: { redis: { type: "string" }, key: { type: "string" }, port: { type: "string", default: "0" } },
});
if (!options.redis || !options.key) {
  console.error("usage: node-redis-node.js --redis <url> --key <key> [--port <port>]");
  process.exit(2);
}

const pub = createClient({ url: options.redis });
const sub = pub.duplicate();
pub.on("error", (err) => console.error("redis pub:", err.message));
sub.on("error", (err) => console.error("redis sub:", err.message));
await Promise.all([pub.connect(), sub.connect()]);

const http = createServer();
const io = new Server(http, { adapter: createAdapter(pub, sub, { key: options.key }) });

// The classic minimal Node chat, in full, and the cookbook's roll call.
io.on("connection", (socket) => {
  socket.on("send-chat-message", (message) => socket.broadcast.emit("chat-message", message));
  socket.on("who-is-there", async (q, ack) => ack(await socket.broadcast.timeout(1000).emitWithAck("roll-call", q)));
});

/** `{ $bin: [..] }` in a request becomes a Buffer; a Buffer in an answer becomes `{ $bin }`. */
const revive = (_, v) => (v && typeof v === "object" && Array.isArray(v.$bin) ? Buffer.from(v.$bin) : v);
const plain = (v) =>
  JSON.parse(JSON.stringify(v, (_, x) => (x && x.type === "Buffer" && Array.isArray(x.data) ? { $bin: x.data } : x)));

/** The selection a request names: `rooms`, `except`. */
function select({ rooms = [], except = [] }) {
  let op = io.of("/");
  if (rooms.length) op = op.to(rooms);
  if (except.length) op = op.except(except);
  return op;
}

const operations = {
  emit: (r) => select(r).emit(r.event, ...r.args),
  volatile: (r) => select(r).volatile.emit(r.event, ...r.args),
  emitWithAck: (r) => select(r).timeout(r.timeout ?? 2000).emitWithAck(r.event, ...r.args),
  fetchSockets: async (r) =>
    (await select(r).fetchSockets()).map((s) => ({
      id: s.id,
      rooms: [...s.rooms],
      handshake: s.handshake,
      data: s.data,
    })),
  socketsJoin: (r) => select(r).socketsJoin(r.room),
  socketsLeave: (r) => select(r).socketsLeave(r.room),
  disconnectSockets: (r) => select(r).disconnectSockets(r.close ?? false),
  allRooms: async () => [...(await io.of("/").adapter.allRooms())],
  serverCount: () => io.of("/").adapter.serverCount(),
};

createInterface({ input: process.stdin }).on("line", async (line) => {
  const request = JSON.parse(line, revive);
  try {
    const result = await operations[request.op](request);
    console.log(`reply ${JSON.stringify({ id: request.id, result: plain(result ?? null) })}`);
  } catch (err) {
    console.log(`reply ${JSON.stringify({ id: request.id, error: String(err?.message ?? err) })}`);
  }
});

http.listen(Number(options.port), "127.0.0.1", () => console.log(`listening ${http.address().port}`));
