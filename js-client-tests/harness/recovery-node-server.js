// The reference the connection-state-recovery suite holds chatoxide to: Node socket.io 4.8 with
// `connectionStateRecovery` (its in-memory adapter keeps the sessions and the packets), serving
// on `/live` the app chatoxide serves with fixtures/recovery.toml: `enter(room)` joins the room,
// `say(room, text)` relays `said(room, text)` to the room's other sockets, both acknowledged.
//
//   node recovery-node-server.js --port <port|0> --max-disconnection-ms <ms>
//        --ping-interval-ms <ms> --ping-timeout-ms <ms>
//
// Prints `listening <port>` once it accepts connections, and `disconnected <sid> <reason>` when
// it sees a socket of `/live` go. SIGTERM closes every socket (io.close()) and exits 0.
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Server } from "socket.io";

const { values: options } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    "max-disconnection-ms": { type: "string", default: "120000" },
    "ping-interval-ms": { type: "string", default: "25000" },
    "ping-timeout-ms": { type: "string", default: "20000" },
  },
});

const http = createServer();
const io = new Server(http, {
  pingInterval: Number(options["ping-interval-ms"]),
  pingTimeout: Number(options["ping-timeout-ms"]),
  connectionStateRecovery: {
    maxDisconnectionDuration: Number(options["max-disconnection-ms"]),
    skipMiddlewares: true,
  },
});

/** The answer chatoxide's rules give to an argument that is not a room name. */
const notARoom = {
  ok: false,
  error: { code: "bad_request", message: "the event's first argument must be a room name" },
};
const isRoom = (room) => typeof room === "string" && room.length > 0;

io.of("/live").on("connection", (socket) => {
  socket.on("enter", (room, ack) => {
    if (!isRoom(room)) return ack?.(notARoom);
    socket.join(room);
    ack?.({ ok: true });
  });
  socket.on("say", (room, text, ack) => {
    if (!isRoom(room)) return ack?.(notARoom);
    socket.to(room).emit("said", room, text);
    ack?.({ ok: true });
  });
  socket.on("disconnect", (reason) => console.log(`disconnected ${socket.id} ${reason}`));
});

process.once("SIGTERM", () => io.close(() => process.exit(0)));

http.listen(Number(options.port), "127.0.0.1", () => {
  console.log(`listening ${http.address().port}`);
});
