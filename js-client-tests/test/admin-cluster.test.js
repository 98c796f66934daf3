// The admin UI's namespace on a cluster: one admin socket on one node sees every node's stats and
// sockets, and its commands reach sockets on another node.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startCluster } from "../harness/cluster.js";
import { redisMissing } from "../harness/redis.js";
import { adminProbe } from "../harness/admin-ui.js";
import { connectAs, ok, next, unique, closeAll } from "../harness/client.js";

const skip = await redisMissing();
const ADMIN = { username: "admin", password: randomBytes(12).toString("base64url") };

describe("the admin UI's namespace on two nodes", { skip }, () => {
  let cluster;
  before(async () => {
    cluster = await startCluster(2, { env: { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password } });
  });
  after(() => cluster?.close());

  test("an admin on node0 sees node1's stats and sockets, and moves and reaches node1's socket", async () => {
    const [node0, node1] = cluster.nodes;
    const room = unique("far-room");
    const user = await connectAs(node1, unique("far"));
    let admin;
    try {
      await ok(user, "join", { room });
      const sid = user.id;
      // Logged in after the join: the first list has the room.
      admin = adminProbe(node0, ADMIN);
      await admin.connected;
      // Both nodes report, each under its node id.
      await admin.waitFor("server_stats", (s) => s?.serverId === "node0");
      const [stats1] = await admin.waitFor("server_stats", (s) => s?.serverId === "node1");
      assert.ok(stats1.namespaces.some((n) => n.name === "/" && n.socketsCount >= 1), JSON.stringify(stats1));
      // node1's socket: in all_sockets (asked of the cluster), or announced by node1 soon after.
      const [all] = await admin.waitFor("all_sockets");
      const listed = all.find((s) => s.id === sid);
      if (listed) {
        assert.ok(listed.rooms.includes(room), JSON.stringify(listed));
      } else {
        const [announced] = await admin.waitFor("socket_connected", (s) => s?.id === sid);
        assert.ok(announced.rooms.includes(room), JSON.stringify(announced));
      }
      // A command sent to node0 acts on node1's socket, which node1 reports.
      const extra = unique("admin-room");
      admin.socket.emit("join", "/", extra, sid);
      await admin.waitFor("room_joined", (nsp, r, id) => nsp === "/" && r === extra && id === sid);
      const hello = next(user, "hello-from-admin");
      admin.socket.emit("emit", "/", sid, "hello-from-admin", { across: true });
      assert.deepEqual(await hello, { across: true });
      const gone = new Promise((resolve) => user.once("disconnect", resolve));
      admin.socket.emit("_disconnect", "/", false, sid);
      assert.equal(await gone, "io server disconnect");
      await admin.waitFor("socket_disconnected", (nsp, id) => nsp === "/" && id === sid);
    } finally {
      closeAll(admin, user);
    }
  });
});
