// The official Socket.IO tutorial's final server, the reference the tutorial suite holds chatoxide
// to: express 4 + socket.io 4 with connection state recovery, serving the tutorial's page at `/`.
// Its SQLite table is an append-only JSON-lines file here (no native module): one row a line,
// `{ id, client_offset, content }`, written with appendFileSync so that what was acknowledged
// survives a SIGKILL. Everything the tutorial awaits on its local database is synchronous here,
// so a replay on connect and an insert never interleave (as with the tutorial's local SQLite).
//
//   node tutorial-node-server.js --port <port|0> --dir <static dir> --store <file>
//
// Prints `listening <port>` once it accepts connections.
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import express from "express";
import { Server } from "socket.io";

const { values: options } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    dir: { type: "string" },
    store: { type: "string" },
  },
});
if (!options.dir || !options.store) {
  console.error("usage: tutorial-node-server.js --port <port> --dir <static dir> --store <file>");
  process.exit(2);
}

/** The tutorial's `messages` table: ids increase from 1, `client_offset` is UNIQUE. */
class Messages {
  /** Every row, sorted by id. */
  rows = [];
  /** The client offsets taken (NULL, as in SQLite, is never a duplicate). */
  offsets = new Set();

  constructor(file) {
    this.file = file;
    if (!existsSync(file)) return;
    for (const line of readFileSync(file, "utf8").split("\n")) {
      if (line.trim()) this.#remember(JSON.parse(line));
    }
  }

  /** `INSERT INTO messages (content, client_offset)`: the new row's id, or null on a duplicate. */
  insert(content, clientOffset) {
    const offset = clientOffset ?? null;
    if (offset !== null && this.offsets.has(offset)) return null;
    const row = { id: (this.rows.at(-1)?.id ?? 0) + 1, client_offset: offset, content };
    appendFileSync(this.file, `${JSON.stringify(row)}\n`);
    this.#remember(row);
    return row.id;
  }

  /** `SELECT id, content FROM messages WHERE id > ?`, in id order. */
  after(id) {
    return this.rows.filter((row) => row.id > id);
  }

  #remember(row) {
    this.rows.push(row);
    if (row.client_offset !== null) this.offsets.add(row.client_offset);
  }
}

const messages = new Messages(resolve(options.store));
const app = express();
const server = createServer(app);
const io = new Server(server, { connectionStateRecovery: {} });

app.get("/", (_req, res) => res.sendFile(join(resolve(options.dir), "index.html")));

io.on("connection", (socket) => {
  socket.on("chat message", (msg, clientOffset, callback) => {
    const id = messages.insert(msg, clientOffset);
    // A duplicate (a retry whose first ack was lost): acknowledged, neither stored nor sent.
    if (id !== null) io.emit("chat message", msg, id);
    callback?.();
  });
  if (!socket.recovered) {
    for (const row of messages.after(Number(socket.handshake.auth.serverOffset) || 0)) {
      socket.emit("chat message", row.content, row.id);
    }
  }
});

server.listen(Number(options.port), "127.0.0.1", () => {
  console.log(`listening ${server.address().port}`);
});
