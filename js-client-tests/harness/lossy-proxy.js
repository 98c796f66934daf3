// A proxy between a browser and the server under test that can lose what a network loses: every
// connection at once (`cut`), or, on a WebSocket, the next Socket.IO acknowledgement on its way
// to the client (`dropNextAck`). HTTP requests (long-polling, the page, its script) are forwarded
// as they are; an upgrade is forwarded without Sec-WebSocket-Extensions (no compression, so the
// proxy can read the server's frames), then its bytes are passed through, frame by frame.
import http from "node:http";
import net from "node:net";

/** Hop-by-hop headers: about one connection, never forwarded. */
const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"];

/**
 * Listens on a free port of 127.0.0.1 and forwards to `target` ({ host, port }), which may be
 * down for a while (a restarted server). Returns { url, port, dropNextAck(), cut(), restore(),
 * close() }.
 */
export async function startLossyProxy(target) {
  const sockets = new Set();
  const acks = { armed: null };
  let isCut = false;
  const track = (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    return socket;
  };

  const server = http.createServer((req, res) => forward(target, req, res, track));
  server.on("connection", (socket) => (isCut ? socket.destroy() : track(socket)));
  server.on("upgrade", (req, socket, head) => upgrade(target, req, socket, head, acks, track));
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = server.address().port;

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    /**
     * Drops the next whole Socket.IO ACK message (`43…`: Engine.IO message, ACK, namespace `/`)
     * the server sends on any WebSocket. Resolves once one has been dropped.
     */
    dropNextAck() {
      return new Promise((resolve) => (acks.armed = resolve));
    },
    /** Resets every connection and refuses new ones until `restore()`. */
    cut() {
      isCut = true;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    restore() {
      isCut = false;
    },
    async close() {
      this.cut();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Forwards one HTTP request; a server that is down is a 502. */
function forward(target, req, res, track) {
  const upstream = http.request({
    ...target,
    method: req.method,
    path: req.url,
    headers: withoutHopByHop(req.headers),
    agent: false,
  });
  upstream.on("socket", track);
  upstream.on("response", (reply) => {
    res.writeHead(reply.statusCode, withoutHopByHop(reply.headers));
    reply.pipe(res);
    reply.on("error", () => res.destroy());
  });
  upstream.on("error", () => {
    if (res.headersSent) res.destroy();
    else res.writeHead(502).end();
  });
  // A request the browser gave up (a long-poll of a closed page) is given up upstream too.
  res.on("close", () => upstream.destroy());
  req.pipe(upstream);
}

function withoutHopByHop(headers) {
  const kept = { ...headers };
  for (const name of HOP_BY_HOP) delete kept[name];
  return kept;
}

/** Forwards a WebSocket upgrade: the request head as sent, less its extensions. */
function upgrade(target, req, client, head, acks, track) {
  track(client);
  const upstream = track(net.connect(target));
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on("error", close).on("close", close);
  upstream.on("error", close).on("close", close);

  const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i].toLowerCase() === "sec-websocket-extensions") continue;
    lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
  }
  upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
  if (head.length) upstream.write(head);
  client.pipe(upstream);

  // The response head goes on as it is; after a 101 the bytes are frames, else (a refusal) as is.
  const frames = new ServerFrames(acks, (bytes) => client.write(bytes));
  let received = Buffer.alloc(0);
  let onward = null;
  upstream.on("data", (chunk) => {
    if (onward) return onward(chunk);
    received = Buffer.concat([received, chunk]);
    const end = received.indexOf("\r\n\r\n");
    if (end < 0) return;
    const statusLine = received.subarray(0, received.indexOf("\r\n")).toString("latin1");
    const switched = / 101 /.test(statusLine);
    onward = switched ? (bytes) => frames.push(bytes) : (bytes) => client.write(bytes);
    client.write(received.subarray(0, end + 4));
    const rest = received.subarray(end + 4);
    if (rest.length) onward(rest);
  });
}

/**
 * The server→client half of a WebSocket, read as frames (RFC 6455 §5.2). Each frame is passed on
 * byte for byte once whole; a text message is passed on once all its fragments are in (control
 * frames between them pass at once), or, if it begins with `43` while an ACK is awaited,
 * dropped whole.
 */
class ServerFrames {
  /** Bytes received and not yet a whole frame. */
  pending = Buffer.alloc(0);
  /** The fragments of an unfinished text message, { raw: Buffer[], payload: Buffer[] }, or null. */
  message = null;

  constructor(acks, pass) {
    this.acks = acks;
    this.pass = pass;
  }

  push(chunk) {
    this.pending = Buffer.concat([this.pending, chunk]);
    for (let frame; (frame = readFrame(this.pending)); ) {
      this.pending = this.pending.subarray(frame.raw.length);
      this.#frame(frame);
    }
  }

  #frame(frame) {
    const control = frame.opcode >= 8;
    if (control || (this.message === null && frame.opcode !== 1)) return this.pass(frame.raw);
    this.message ??= { raw: [], payload: [] };
    this.message.raw.push(frame.raw);
    this.message.payload.push(frame.payload);
    if (!frame.fin) return;
    const { raw, payload } = this.message;
    this.message = null;
    const ack = Buffer.concat(payload).subarray(0, 2).toString("latin1") === "43";
    if (ack && this.acks.armed) {
      const dropped = this.acks.armed;
      this.acks.armed = null;
      return dropped();
    }
    this.pass(Buffer.concat(raw));
  }
}

/** The first whole frame of `bytes` ({ fin, opcode, payload, raw }), or null if incomplete. */
function readFrame(bytes) {
  if (bytes.length < 2) return null;
  const fin = (bytes[0] & 0x80) !== 0;
  const opcode = bytes[0] & 0x0f;
  const masked = (bytes[1] & 0x80) !== 0;
  let length = bytes[1] & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (bytes.length < 4) return null;
    length = bytes.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (bytes.length < 10) return null;
    length = Number(bytes.readBigUInt64BE(2));
    offset = 10;
  }
  const mask = masked ? bytes.subarray(offset, offset + 4) : null;
  if (masked) offset += 4;
  if (bytes.length < offset + length) return null;
  const payload = Buffer.from(bytes.subarray(offset, offset + length));
  if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
  return { fin, opcode, payload, raw: bytes.subarray(0, offset + length) };
}
