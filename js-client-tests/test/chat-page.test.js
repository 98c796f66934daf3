// The chat page chatoxide serves at `/` (src/http/page/), used as a person would: two people in
// two browser contexts of headless Chromium (skipped loudly without Chromium, except under
// CI=true), over each transport; a reload and a cut connection catch up; CHATOXIDE_CHAT_PAGE=false
// turns the page off. SCREENSHOTS=1 writes the README's picture to docs/images/chat-page.png
// (otherwise it goes to artifacts/).
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer, NO_RATE_LIMITS } from "../harness/server.js";
import { startProxy } from "../harness/proxy.js";
import { connectAs, next, ok, unique, closeAll } from "../harness/client.js";
import { chromiumMissing, launchChromium, logTail } from "../harness/admin-ui.js";
import jwt from "jsonwebtoken";

const here = dirname(fileURLToPath(import.meta.url));
const screenshot =
  process.env.SCREENSHOTS === "1"
    ? resolve(here, "..", "..", "docs", "images", "chat-page.png")
    : resolve(here, "..", "artifacts", "chat-page.png");

/** Every wait on the page is bounded by this. */
const PAGE_WAIT_MS = 10_000;

describe("the chat page over HTTP", () => {
  test("/ serves the page, its script and stylesheet, with types and revalidation", async () => {
    const server = await startServer();
    try {
      const page = await server.fetch("/");
      assert.equal(page.status, 200);
      assert.match(page.headers.get("content-type"), /^text\/html/);
      assert.equal(page.headers.get("cache-control"), "no-cache");
      assert.match(page.headers.get("content-security-policy"), /script-src 'self'/);
      const html = await page.text();
      for (const path of ["/socket.io/socket.io.js", "/chat.js", "/chat.css"]) {
        assert.ok(html.includes(path), `the page loads ${path}`);
      }
      for (const [path, type] of [["/chat.js", /^text\/javascript/], ["/chat.css", /^text\/css/]]) {
        const asset = await server.fetch(path);
        assert.equal(asset.status, 200, path);
        assert.match(asset.headers.get("content-type"), type, path);
        const etag = asset.headers.get("etag");
        const again = await server.fetch(path, { headers: { "if-none-match": etag } });
        assert.equal(again.status, 304, `${path} with its ETag`);
      }
    } finally {
      await server.close();
    }
  });

  test("/chat-config.json tells the page the server's mode", async () => {
    for (const [env, auth] of [[{}, "open"], [{ JWT_SECRET: "page-secret" }, "token"]]) {
      const server = await startServer({ env });
      try {
        const reply = await server.fetch("/chat-config.json");
        assert.equal(reply.status, 200);
        assert.match(reply.headers.get("content-type"), /application\/json/);
        assert.deepEqual(await reply.json(), { auth });
      } finally {
        await server.close();
      }
    }
  });

  test("CHATOXIDE_CHAT_PAGE=false: / answers 404, the rest is served", async () => {
    const server = await startServer({ env: { CHATOXIDE_CHAT_PAGE: "false" } });
    try {
      assert.equal((await server.fetch("/")).status, 404);
      assert.equal((await server.fetch("/chat.js")).status, 404);
      assert.equal((await server.fetch("/healthz")).status, 200);
      assert.equal((await server.fetch("/socket.io/socket.io.js")).status, 200);
    } finally {
      await server.close();
    }
  });
});

const noChromium = chromiumMissing();
if (noChromium) console.error("!!! ...AND THE CHAT PAGE BROWSER TESTS !!!\n");

describe("the chat page in headless Chromium", { skip: noChromium }, () => {
  let browser;
  before(async () => (browser = await launchChromium()));
  after(() => browser?.close());

  /** A person: a fresh browser context (empty localStorage) on the page at `url`. */
  async function person(url) {
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(PAGE_WAIT_MS);
    const trace = [];
    page.on("console", (m) => trace.push(`console.${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => trace.push(`pageerror: ${e.message}`));
    page.on("requestfailed", (r) => trace.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
    await page.goto(url);
    return { page, context, trace };
  }

  /** Runs `body`; a failure carries each page's text and messages and the server's log. */
  async function explained(server, people, body) {
    try {
      await body();
    } catch (err) {
      for (const [name, { page, trace }] of Object.entries(people)) {
        const text = await page.locator("body").innerText({ timeout: 1000 }).catch(() => "(none)");
        err.message += `\n## ${name}'s page: ${text.replace(/\s+/g, " ").slice(0, 1200)}`;
        err.message += `\n## ${name}'s browser:\n${trace.slice(-20).join("\n")}`;
      }
      err.message += `\n## server log:\n${logTail(server)}`;
      throw err;
    } finally {
      for (const { context } of Object.values(people)) await context.close().catch(() => {});
    }
  }

  async function signIn(page, name, transportLabel = /online/) {
    await page.getByTestId("name").fill(name);
    await page.getByTestId("enter").click();
    await page.locator('[data-testid="status"][data-state="online"]').waitFor();
    await page.getByTestId("status").filter({ hasText: transportLabel }).waitFor();
  }

  async function join(page, room) {
    await page.getByTestId("join-room").fill(room);
    await page.getByTestId("join").click();
    await page.getByTestId("room-title").filter({ hasText: room }).waitFor();
    await page.locator(`[data-testid="room"][data-room="${room}"]`).waitFor();
  }

  async function say(page, text) {
    await page.getByTestId("text").fill(text);
    await page.getByTestId("text").press("Enter");
    await shown(page, text);
  }

  /** Waits for a message with exactly `text` on `page`. */
  function shown(page, text) {
    return page.getByTestId("message-text").filter({ hasText: text }).first().waitFor();
  }

  function online(page, name) {
    return page.locator(`[data-testid="presence-user"][data-user="${name}"][data-online="true"]`).waitFor();
  }

  const transports = [
    { query: "", label: /WebSocket/, what: "default transports (polling, upgraded to WebSocket)" },
    { query: "?transport=polling", label: /polling/, what: "long-polling only" },
    { query: "?transport=websocket", label: /WebSocket/, what: "WebSocket only" },
  ];
  for (const { query, label, what } of transports) {
    test(`two people chat, type, see each other and read marks; a reload brings history back (${what})`, async () => {
      // A server (and database) of its own: every name is unique to this test, so the people
      // and rooms can have plain names (this is the README's picture).
      const server = await startServer();
      const alice = await person(`${server.url}/${query}`);
      const bob = await person(`${server.url}/${query}`);
      const room = "general";
      await explained(server, { alice, bob }, async () => {
        await signIn(alice.page, "alice", label);
        await join(alice.page, "random"); // a second room in alice's list
        await join(alice.page, room);
        await signIn(bob.page, "bob", label);
        await join(bob.page, room);

        // Presence: each sees both online (alice hears bob's user_joined).
        await online(alice.page, "bob");
        await online(alice.page, "alice");
        await online(bob.page, "alice");
        await online(bob.page, "bob");

        // Live messages both ways.
        const conversation = [
          [alice, bob, "Hi Bob! This page is served by chatoxide itself: no build step, no framework."],
          [bob, alice, "Nice. And if my Wi-Fi drops for a minute?"],
          [alice, bob, "It joins your rooms again with `since` and shows what you missed."],
          [alice, bob, "Rooms, history, typing, presence and read marks, over WebSocket or polling."],
        ];
        for (const [from, to, text] of conversation) {
          await say(from.page, text);
          await shown(to.page, text);
        }

        // Read marks: bob's page read alice's newest message; alice is told.
        await alice.page.getByTestId("read-by").filter({ hasText: "bob" }).waitFor();

        // Typing: bob types, alice sees it.
        await bob.page.getByTestId("text").pressSequentially("Reloading to check the his");
        await alice.page.getByTestId("typing").filter({ hasText: "bob is typing" }).waitFor();
        if (!query) {
          mkdirSync(dirname(screenshot), { recursive: true });
          await alice.page.screenshot({ path: screenshot, animations: "disabled" });
        }
        await bob.page.getByTestId("text").pressSequentially("tory…");
        await bob.page.getByTestId("text").press("Enter");
        await shown(alice.page, "Reloading to check the history…");
        await alice.page.getByTestId("typing").filter({ hasText: /^$/ }).waitFor();

        // User text is text, never markup.
        const markup = '<img src=x onerror="document.title=1"> is shown as text';
        await say(alice.page, markup);
        await shown(bob.page, markup);
        assert.equal(await bob.page.locator('[data-testid="message"] img').count(), 0);

        // An error acknowledgement is shown.
        await bob.page.getByTestId("join-room").fill("no spaces allowed");
        await bob.page.getByTestId("join").click();
        await bob.page.getByTestId("error").filter({ hasText: "bad_request" }).waitFor();

        // Reload: bob is signed in again, his room restored, its history shown.
        await bob.page.reload();
        await bob.page.locator('[data-testid="status"][data-state="online"]').waitFor();
        await bob.page.getByTestId("room-title").filter({ hasText: room }).waitFor();
        await bob.page.locator(`[data-testid="room"][data-room="${room}"]`).waitFor();
        await shown(bob.page, conversation[0][2]);
        await shown(bob.page, markup);
        await shown(bob.page, "Reloading to check the history…");
        await online(bob.page, "alice");

        // And the chat goes on after the reload.
        await say(alice.page, "Welcome back.");
        await shown(bob.page, "Welcome back.");
      }).finally(() => server.close());
    });
  }

  test("the login card asks for what the server's mode needs: a name in open mode, a token in token mode", async () => {
    const secret = "page-secret-" + unique("s");
    const open = await startServer();
    const tokens = await startServer({ env: { JWT_SECRET: secret } });
    const people = {};
    try {
      await explained(open, people, async () => {
        people.guest = await person(open.url);
        await people.guest.page.getByTestId("name").waitFor({ state: "visible" });
        assert.equal(await people.guest.page.getByTestId("token").isVisible(), false);
      });
      await explained(tokens, people, async () => {
        people.member = await person(tokens.url);
        const { page } = people.member;
        await page.getByTestId("token").waitFor({ state: "visible" });
        assert.equal(await page.getByTestId("name").isVisible(), false);
        const sub = unique("tok");
        const token = jwt.sign({ sub, exp: Math.floor(Date.now() / 1000) + 300 }, secret, { algorithm: "HS256" });
        await page.getByTestId("token").fill(token);
        await page.getByTestId("enter").click();
        await page.locator('[data-testid="status"][data-state="online"]').waitFor();
      });
    } finally {
      await open.close();
      await tokens.close();
    }
  });

  test("a cut connection reconnects by itself and catches up on what was missed", async () => {
    const server = await startServer();
    const proxy = await startProxy({ host: "127.0.0.1", port: server.port });
    const bob = await person(`http://127.0.0.1:${proxy.port}/`);
    const room = unique("outage");
    const alice = await connectAs(server, "alice");
    await explained(server, { bob }, async () => {
      await ok(alice, "join", { room });
      await signIn(bob.page, "bob");
      await join(bob.page, room);
      await ok(alice, "message", { room, text: "before the outage" });
      await shown(bob.page, "before the outage");

      proxy.cut();
      await bob.page.locator('[data-testid="status"]:not([data-state="online"])').waitFor();
      for (const text of ["missed one", "missed two"]) await ok(alice, "message", { room, text });
      proxy.restore();

      await bob.page.locator('[data-testid="status"][data-state="online"]').waitFor();
      await shown(bob.page, "missed one");
      await shown(bob.page, "missed two");
      await ok(alice, "message", { room, text: "after the outage" });
      await shown(bob.page, "after the outage");
      const texts = await bob.page.getByTestId("message-text").allInnerTexts();
      assert.deepEqual(texts, ["before the outage", "missed one", "missed two", "after the outage"]);
    }).finally(async () => {
      closeAll(alice);
      await proxy.close();
      await server.close();
    });
  });

  test("scrolling to the top loads older pages, up to the beginning of the room", async () => {
    const server = await startServer({ env: NO_RATE_LIMITS }); // 120 messages at once
    const room = unique("long");
    const alice = await connectAs(server, "alice");
    const carol = await person(`${server.url}/`);
    await explained(server, { carol }, async () => {
      await ok(alice, "join", { room });
      const sent = Array.from({ length: 120 }, (_, i) => `message ${String(i).padStart(3, "0")}`);
      for (const text of sent) await ok(alice, "message", { room, text });

      await signIn(carol.page, "carol");
      await join(carol.page, room);
      await shown(carol.page, "message 119");
      await carol.page.getByTestId("load-older").waitFor();
      for (const loaded of [100, 120]) {
        await carol.page.getByTestId("messages").evaluate((pane) => (pane.scrollTop = 0));
        await carol.page.getByTestId("message-text").nth(loaded - 1).waitFor();
      }
      await carol.page.getByTestId("load-older").waitFor({ state: "hidden" });
      assert.deepEqual(await carol.page.getByTestId("message-text").allInnerTexts(), sent);
    }).finally(async () => {
      closeAll(alice);
      await server.close();
    });
  });

  test("one's own messages can be edited and deleted; the room is told", async () => {
    const server = await startServer();
    const room = unique("fix");
    const bob = await connectAs(server, "bob");
    const alice = await person(`${server.url}/`);
    await explained(server, { alice }, async () => {
      await ok(bob, "join", { room });
      await signIn(alice.page, "alice");
      await join(alice.page, room);
      await say(alice.page, "helo");
      const id = await alice.page.getByTestId("message").filter({ hasText: "helo" }).getAttribute("data-id");
      const mine = alice.page.locator(`[data-testid="message"][data-id="${id}"]`);

      const updated = next(bob, "message_updated");
      await mine.hover();
      await mine.getByTestId("edit").click();
      await alice.page.getByTestId("text").fill("hello");
      await alice.page.getByTestId("text").press("Enter");
      assert.equal((await updated).text, "hello");
      await mine.filter({ hasText: "hello (edited)" }).waitFor();

      const deleted = next(bob, "message_deleted");
      alice.page.once("dialog", (dialog) => dialog.accept());
      await mine.hover();
      await mine.getByTestId("delete").click();
      assert.equal((await deleted).room, room);
      await mine.filter({ hasText: "message deleted" }).waitFor();
    }).finally(async () => {
      closeAll(bob);
      await server.close();
    });
  });
});
