// The Socket.IO admin UI (@socket.io/admin-ui 0.5.1) on chatoxide's /admin namespace, enabled by
// ADMIN_USERNAME + ADMIN_PASSWORD: the protocol with a plain socket.io-client, then the real UI
// in headless Chromium (skipped loudly without Chromium, except under CI=true).
// ADMIN_UI_REFERENCE=node runs the same checks against Node socket.io + instrument().
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { connectAs, ok, unique, closeAll } from "../harness/client.js";
import {
  FEATURES,
  UI_WAIT_MS,
  adminProbe,
  chromiumMissing,
  launchChromium,
  logTail,
  reference,
  serveUi,
  startAdminTarget,
} from "../harness/admin-ui.js";

const artifacts = resolve(dirname(fileURLToPath(import.meta.url)), "..", "artifacts");

const ADMIN = { username: "admin", password: randomBytes(12).toString("base64url") };

/** The connect_error of `/admin` with `auth`. */
async function adminRefusal(server, auth) {
  const probe = adminProbe(server, auth);
  let timer;
  try {
    await Promise.race([
      probe.connected,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`/admin neither accepted nor refused ${JSON.stringify(auth)} in ${UI_WAIT_MS} ms`)), UI_WAIT_MS);
      }),
    ]);
  } catch (err) {
    if (err.message.startsWith("/admin neither")) throw err;
    return err;
  } finally {
    clearTimeout(timer);
    probe.close();
  }
  throw new Error(`/admin accepted ${JSON.stringify(auth)}`);
}

/** A chat user in a fresh room: { user, sid, room }. */
async function userInRoom(server, prefix) {
  const user = await connectAs(server, unique(prefix));
  const room = unique(`${prefix}-room`);
  await ok(user, "join", { room });
  return { user, sid: user.id, room };
}

/** Resolves with the reason of the socket's next disconnect. */
function disconnected(socket, ms = UI_WAIT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the user socket was not disconnected within ${ms} ms`)), ms);
    socket.once("disconnect", (reason) => {
      clearTimeout(timer);
      resolve(reason);
    });
  });
}

const isTimestamp = (ts) => ts !== undefined && !Number.isNaN(new Date(ts).getTime());

describe("/admin without ADMIN_USERNAME and ADMIN_PASSWORD", () => {
  let server;
  before(async () => (server = await startAdminTarget(null)));
  after(() => server.close());

  test("the namespace does not exist", async () => {
    const err = await adminRefusal(server, ADMIN);
    assert.equal(err.message, "Invalid namespace");
  });
});

describe("/admin with credentials (socket.io-client speaking the UI's protocol)", () => {
  let server;
  before(async () => (server = await startAdminTarget(ADMIN)));
  after(() => server.close());

  test("wrong or missing credentials: connect_error 'invalid credentials'", async () => {
    for (const auth of [
      { username: "admin", password: "wrong" },
      { username: "root", password: ADMIN.password },
      { username: "", password: "" },
      // Node's instrument() never answers this one (bcrypt.compare(undefined) rejects).
      ...(reference ? [] : [{ username: "admin" }]),
      {},
    ]) {
      const err = await adminRefusal(server, auth);
      assert.equal(err.message, "invalid credentials", JSON.stringify(auth));
    }
  });

  test("right credentials: session, config, all_sockets with the user's socket, server_stats", async () => {
    const { user, sid, room } = await userInRoom(server, "listed");
    const admin = adminProbe(server, ADMIN);
    try {
      await admin.connected;
      const [config] = await admin.waitFor("config");
      assert.ok(Array.isArray(config?.supportedFeatures), JSON.stringify(config));
      for (const feature of FEATURES) assert.ok(config.supportedFeatures.includes(feature), `${feature} in ${JSON.stringify(config)}`);

      const [sockets] = await admin.waitFor("all_sockets");
      assert.ok(Array.isArray(sockets), JSON.stringify(sockets));
      const mine = sockets.find((s) => s.id === sid);
      assert.ok(mine, `${sid} not in all_sockets ${JSON.stringify(sockets).slice(0, 2000)}`);
      assert.equal(mine.nsp, "/");
      assert.ok(Array.isArray(mine.rooms) && mine.rooms.includes(room), JSON.stringify(mine));

      // The first stats may only come with the 2 s tick.
      const [stats] = await admin.waitFor("server_stats", () => true, 3000);
      assert.equal(typeof stats.serverId, "string", JSON.stringify(stats));
      assert.equal(typeof stats.uptime, "number", JSON.stringify(stats));
      assert.equal(typeof stats.clientsCount, "number", JSON.stringify(stats));
      assert.ok(Array.isArray(stats.namespaces), JSON.stringify(stats));
      // The UI ignores stats without aggregatedEvents (AGGREGATED_EVENTS is announced).
      assert.ok(Array.isArray(stats.aggregatedEvents), JSON.stringify(stats));

      const [session] = await admin.waitFor("session");
      assert.equal(typeof session, "string");
    } finally {
      closeAll(admin, user);
    }
  });

  test("all_sockets entries carry what the UI's socket details page reads", async () => {
    const { user, sid } = await userInRoom(server, "details");
    const admin = adminProbe(server, ADMIN);
    try {
      await admin.connected;
      const [sockets] = await admin.waitFor("all_sockets");
      const mine = sockets.find((s) => s.id === sid);
      assert.ok(mine, `${sid} not in all_sockets`);
      const shape = JSON.stringify(mine);
      assert.equal(typeof mine.clientId, "string", shape); // groups sockets on the Clients page
      assert.equal(typeof mine.transport, "string", shape);
      assert.equal(typeof mine.handshake?.headers, "object", shape); // Object.keys(...) on both
      assert.equal(typeof mine.handshake?.query, "object", shape);
      assert.equal(typeof mine.handshake?.issued, "number", shape); // new Date(issued).toISOString()
    } finally {
      closeAll(admin, user);
    }
  });

  test("a socket that connects later is announced with socket_connected", async () => {
    const admin = adminProbe(server, ADMIN);
    let user;
    try {
      await admin.connected;
      await admin.waitFor("all_sockets");
      user = await connectAs(server, unique("late"));
      const sid = user.id;
      const [socket, ts] = await admin.waitFor("socket_connected", (s) => s?.id === sid);
      assert.equal(socket.nsp, "/");
      assert.ok(Array.isArray(socket.rooms), JSON.stringify(socket));
      assert.ok(isTimestamp(ts), `timestamp ${JSON.stringify(ts)}`);
    } finally {
      closeAll(admin, user);
    }
  });

  test("commands: join -> room_joined, emit reaches the user, leave -> room_left", async () => {
    const { user, sid } = await userInRoom(server, "commanded");
    const admin = adminProbe(server, ADMIN);
    try {
      await admin.connected;
      await admin.waitFor("all_sockets");
      const newRoom = unique("admin-joined");

      admin.socket.emit("join", "/", newRoom, sid);
      const joined = await admin.waitFor("room_joined", (nsp, room, id) => nsp === "/" && room === newRoom && id === sid);
      assert.ok(isTimestamp(joined[3]), `room_joined ${JSON.stringify(joined)}`);

      const hello = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("hello-from-admin never reached the user")), UI_WAIT_MS);
        user.once("hello-from-admin", (...args) => {
          clearTimeout(timer);
          resolve(args);
        });
      });
      admin.socket.emit("emit", "/", sid, "hello-from-admin", { x: 1 });
      assert.deepEqual(await hello, [{ x: 1 }]);

      admin.socket.emit("leave", "/", newRoom, sid);
      const left = await admin.waitFor("room_left", (nsp, room, id) => nsp === "/" && room === newRoom && id === sid);
      assert.ok(isTimestamp(left[3]), `room_left ${JSON.stringify(left)}`);
    } finally {
      closeAll(admin, user);
    }
  });

  test("_disconnect: the user gets 'io server disconnect'; socket_disconnected and room_left follow", async () => {
    const { user, sid, room } = await userInRoom(server, "kicked");
    const admin = adminProbe(server, ADMIN);
    try {
      await admin.connected;
      await admin.waitFor("all_sockets");
      const reason = disconnected(user);
      admin.socket.emit("_disconnect", "/", false, sid);
      assert.equal(await reason, "io server disconnect");
      const gone = await admin.waitFor("socket_disconnected", (nsp, id) => nsp === "/" && id === sid);
      assert.ok(isTimestamp(gone[3]), `socket_disconnected ${JSON.stringify(gone)}`);
      // Without room_left the UI's Rooms page keeps the socket in the room.
      await admin.waitFor("room_left", (nsp, r, id) => nsp === "/" && r === room && id === sid);
    } finally {
      closeAll(admin, user);
    }
  });
});

const noChromium = chromiumMissing();

describe("the admin UI in headless Chromium", { skip: noChromium }, () => {
  let server;
  let ui;
  let browser;
  before(async () => {
    ui = await serveUi();
    // The UI polls with credentials (withCredentials: true) from its own origin, which a
    // wildcard CORS answer does not allow: its origin is listed, as a deployment lists
    // https://admin.socket.io.
    server = await startAdminTarget(ADMIN, { CHATOXIDE_CORS_ORIGINS: new URL(ui.url).origin });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await ui?.close();
    await server?.close();
  });

  /** A fresh page (empty localStorage) recording what is needed to explain a failure. */
  async function openUi() {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } }); // >= 1264: nav drawer open
    const page = await context.newPage();
    page.setDefaultTimeout(UI_WAIT_MS);
    const trace = [];
    page.on("console", (m) => trace.push(`console.${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => trace.push(`pageerror: ${e.message}`));
    page.on("requestfailed", (r) => trace.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
    page.on("websocket", (ws) => {
      trace.push(`websocket: ${ws.url()}`);
      ws.on("framereceived", (f) => trace.push(`  ws <= ${String(f.payload).slice(0, 400)}`));
      ws.on("framesent", (f) => trace.push(`  ws => ${String(f.payload).slice(0, 400)}`));
      ws.on("close", () => trace.push("  ws closed"));
    });
    page.on("response", async (r) => {
      if (!r.url().includes("/socket.io/")) return;
      const body = await r.text().catch(() => "(no body)");
      trace.push(`polling ${r.request().method()} ${r.status()} <= ${body.slice(0, 400)}`);
    });
    // index.html loads Roboto and the icon font from these hosts: offline-safe without them.
    await page.route(/fonts\.googleapis\.com|fonts\.gstatic\.com|cdn\.jsdelivr\.net/, (route) => route.abort());
    await page.goto(ui.url, { waitUntil: "domcontentloaded" });
    return { page, context, trace };
  }

  /** Runs `body`; a failure carries the page's state, its traffic and the server's log. */
  async function withDiagnostics({ page, trace }, body) {
    try {
      await body();
    } catch (err) {
      const dialog = await page
        .locator(".v-dialog")
        .first()
        .innerText({ timeout: 1000 })
        .catch(() => "(no dialog)");
      const text = await page
        .locator("body")
        .innerText({ timeout: 1000 })
        .catch(() => "(no body)");
      err.message +=
        `\n## page ${page.url()}\n## dialog: ${dialog.replace(/\s+/g, " ")}` +
        `\n## visible text: ${text.replace(/\s+/g, " ").slice(0, 1500)}` +
        `\n## browser (last 60):\n${trace.slice(-60).join("\n")}` +
        `\n## server log (last 40):\n${logTail(server)}`;
      throw err;
    }
  }

  async function logIn(page, { password = ADMIN.password, wsOnly = false } = {}) {
    await page.getByLabel("Server URL").fill(server.url); // no trailing slash: the UI appends "/admin"
    await page.getByLabel("Username").fill(ADMIN.username);
    await page.getByLabel("Password").fill(password);
    if (wsOnly) {
      await page.getByText("Advanced options").click();
      await page.getByText("WebSocket only?").click();
    }
    await page.getByRole("button", { name: "Connect" }).click();
  }

  async function goTo(page, item, url) {
    await page.locator("a.v-list-item", { hasText: item }).click();
    await page.waitForURL(url);
  }

  for (const wsOnly of [false, true]) {
    const mode = wsOnly ? "WebSocket only" : "default transports, polling then WebSocket";
    test(`log in, see the socket and its room, disconnect it from the UI (${mode})`, async () => {
      const { user, sid, room } = await userInRoom(server, wsOnly ? "ui-ws" : "ui");
      const opened = await openUi();
      const { page } = opened;
      try {
        await withDiagnostics(opened, async () => {
          await logIn(page, { wsOnly });
          await page.locator(".v-dialog").waitFor({ state: "hidden" });
          await page.getByText("connected", { exact: true }).first().waitFor();

          await goTo(page, "Sockets", /#\/sockets\/?$/);
          const row = page.locator(".v-data-table tbody tr", { hasText: sid }).first();
          await row.waitFor();
          mkdirSync(artifacts, { recursive: true });
          await page.screenshot({
            path: resolve(artifacts, wsOnly ? "admin-ui-sockets-ws.png" : "admin-ui-sockets.png"),
            animations: "disabled", // the route's fade-in finished
          });

          await goTo(page, "Rooms", /#\/rooms\/?$/);
          await page.locator(".v-data-table tbody tr", { hasText: room }).first().waitFor();

          await goTo(page, "Sockets", /#\/sockets\/?$/);
          await row.waitFor();
          const reason = disconnected(user);
          // The row's only button is "disconnect" (its click also opens the socket's page).
          await row.locator("button").click();
          assert.equal(await reason, "io server disconnect");
          await goTo(page, "Sockets", /#\/sockets\/?$/);
          await page.locator(".v-data-table tbody tr", { hasText: sid }).first().waitFor({ state: "detached" });
        });
      } finally {
        await opened.context.close();
        user.close();
      }
    });
  }

  test("a wrong password shows 'Invalid credentials' in the login modal", async () => {
    const opened = await openUi();
    const { page } = opened;
    try {
      await withDiagnostics(opened, async () => {
        await logIn(page, { password: "not-the-password" });
        await page.locator(".v-dialog").getByText("Invalid credentials").waitFor();
        assert.ok(await page.locator(".v-dialog").isVisible(), "the login modal stays open");
      });
    } finally {
      await opened.context.close();
    }
  });
});
