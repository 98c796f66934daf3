// The Node baseline: socket.io 4.8 (ws with bufferutil, no compression) with one PostgreSQL
// INSERT per message, acknowledged after the insert, the design the usual guides describe. Same
// events and payloads as chatoxide, for every scenario of bench/run.sh: handshake
// `auth.username`, `join { room }`, `message { room, text, client_id }` (the room gets
// `message`), `typing { room, typing }` (the room gets a volatile `typing`).
//   DATABASE_URL=postgres://... PORT=3100 node server.js
// With REDIS_URL it is a node of a cluster on @socket.io/redis-adapter 8.x (node-redis 4), its
// `key` REDIS_PREFIX (default `socket.io`): the Node side of bench/run.sh's `mixed` scenario,
// where chatoxide nodes with REDIS_ADAPTER=node join the same cluster.
// With RECOVERY=1 it has socket.io's connection state recovery (`connectionStateRecovery: {}`,
// in memory): every broadcast without an ack, not volatile, is kept and carries its offset as one
// more last argument (bench/run.sh's `recovery`).
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";
import pg from "pg";

const port = Number(process.env.PORT ?? 3100);
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 16 });

await pool.query(`CREATE TABLE IF NOT EXISTS node_messages (
  id BIGSERIAL PRIMARY KEY, room TEXT NOT NULL, user_id TEXT NOT NULL, user_name TEXT NOT NULL,
  text TEXT NOT NULL, client_id TEXT, created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (user_id, client_id))`);
await pool.query(`CREATE TABLE IF NOT EXISTS node_memberships (
  room TEXT NOT NULL, user_id TEXT NOT NULL, user_name TEXT NOT NULL, PRIMARY KEY (room, user_id))`);

/** The cluster's adapter with REDIS_URL, socket.io's in-memory one without. */
async function redisAdapter() {
  if (!process.env.REDIS_URL) return {};
  const pub = createClient({ url: process.env.REDIS_URL });
  const sub = pub.duplicate();
  pub.on("error", (err) => console.error("redis pub:", err.message));
  sub.on("error", (err) => console.error("redis sub:", err.message));
  await Promise.all([pub.connect(), sub.connect()]);
  return { adapter: createAdapter(pub, sub, { key: process.env.REDIS_PREFIX || "socket.io" }) };
}

// Paths other than socket.io's (the load tool reads every node's /metrics) are answered 404,
// not left hanging.
const http = createServer((_req, res) => res.writeHead(404).end());
const io = new Server(http, {
  cors: { origin: "*" },
  perMessageDeflate: false,
  httpCompression: false,
  ...(process.env.RECOVERY === "1" ? { connectionStateRecovery: {} } : {}),
  ...(await redisAdapter()),
});

io.on("connection", (socket) => {
  const name = socket.handshake.auth?.username ?? `guest-${socket.id.slice(0, 8)}`;
  const user = { id: name, name };
  socket.on("join", async ({ room }, ack) => {
    // JOIN_STORE=1: the membership is stored first, as chatoxide stores it.
    if (process.env.JOIN_STORE === "1") {
      try {
        await pool.query(
          "INSERT INTO node_memberships (room, user_id, user_name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
          [room, user.id, user.name],
        );
      } catch (err) {
        ack?.({ ok: false, error: { code: "unavailable", message: err.message } });
        return;
      }
    }
    socket.join(room);
    // JOIN_EVENTS=1: the room hears of every join, as the usual chat app tells it.
    if (process.env.JOIN_EVENTS === "1") socket.to(room).emit("user_joined", { room, user });
    ack?.({ ok: true, room, members: [user] });
  });
  socket.on("typing", ({ room, typing }, ack) => {
    socket.volatile.to(room).emit("typing", { room, user, typing: Boolean(typing) });
    ack?.({ ok: true });
  });
  socket.on("message", async ({ room, text, client_id }, ack) => {
    try {
      const { rows } = await pool.query(
        "INSERT INTO node_messages (room, user_id, user_name, text, client_id) VALUES ($1, $2, $3, $4, $5) RETURNING id, created_at",
        [room, user.id, user.name, text, client_id ?? null],
      );
      const message = { id: String(rows[0].id), room, user, text, client_id: client_id ?? null, created_at: rows[0].created_at.toISOString(), edited_at: null, deleted: false };
      socket.to(room).emit("message", message);
      ack?.({ ok: true, message });
    } catch (err) {
      ack?.({ ok: false, error: { code: "unavailable", message: err.message } });
    }
  });
});

http.listen(port, "127.0.0.1", () => console.log(`node baseline on ${port}`));
const stop = () => io.close(() => pool.end().then(() => process.exit(0)));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
