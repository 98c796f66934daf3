// A TCP proxy the tests control: to cut a server off from its database and give it back, or a
// client off from its server (every connection at once, as a network does) and then send it to
// another server.
import net from "node:net";

/**
 * Listens on a free port of 127.0.0.1 and forwards to `target` ({ host, port }). `cut()` destroys
 * both ends of every open connection (a WebSocket and a pending long-poll break alike, on the
 * client's side and on the server's) and refuses new ones until `restore()`; `retarget(target)`
 * sends new connections to another address (open ones stay where they are).
 */
export async function startProxy(target) {
  const open = new Set();
  let cut = false;
  const server = net.createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target);
    const pair = { client, upstream };
    open.add(pair);
    const close = () => {
      open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = server.address().port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    cut() {
      cut = true;
      for (const { client, upstream } of open) {
        client.destroy();
        upstream.destroy();
      }
      open.clear();
    },
    restore() {
      cut = false;
    },
    retarget(to) {
      target = to;
    },
    async close() {
      this.cut();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
