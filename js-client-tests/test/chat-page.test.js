// The chat page chatoxide serves at `/` (src/http/page/), used as a person would: two people in
// two browser contexts of headless Chromium (skipped loudly without Chromium, except under
// CI=true), over each transport; a reload catches up; CHATOXIDE_CHAT_PAGE=false turns the page
// off. SCREENSHOTS=1 writes the README's picture to docs/images/chat-page.png (otherwise it goes
// to artifacts/). A cut connection, older pages and edits: chat-page-recovery.test.js (each file
// well inside the runner's per-file timeout on a loaded machine).
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "../harness/server.js";
import { chromiumMissing, launchChromium } from "../harness/admin-ui.js";
import { openPerson, explained, signIn, join, say, shown, online } from "../harness/chat-page.js";
import { unique } from "../harness/client.js";
import jwt from "jsonwebtoken";

const here = dirname(fileURLToPath(import.meta.url));
const screenshot =
  process.env.SCREENSHOTS === "1"
    ? resolve(here, "..", "..", "docs", "images", "chat-page.png")
    : resolve(here, "..", "artifacts", "chat-page.png");

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

  const person = (url) => openPerson(browser, url);

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
        const token = jwt.sign({ sub: unique("tok"), exp: Math.floor(Date.now() / 1000) + 300 }, secret, { algorithm: "HS256" });
        await page.getByTestId("token").fill(token);
        await page.getByTestId("enter").click();
        await page.locator('[data-testid="status"][data-state="online"]').waitFor();
      });
    } finally {
      await open.close();
      await tokens.close();
    }
  });
});
