// The chat page in headless Chromium, when things go wrong or grow: a cut connection
// reconnects and catches up, older pages load on scrolling up, one's own messages are edited
// and deleted (the conversation itself: chat-page.test.js). Skipped loudly without Chromium,
// except under CI=true.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, NO_RATE_LIMITS } from "../harness/server.js";
import { startProxy } from "../harness/proxy.js";
import { connectAs, next, ok, unique, closeAll } from "../harness/client.js";
import { chromiumMissing, launchChromium } from "../harness/admin-ui.js";
import { openPerson, explained, signIn, join, say, shown } from "../harness/chat-page.js";

const noChromium = chromiumMissing();
if (noChromium) console.error("!!! ...AND THE CHAT PAGE RECOVERY BROWSER TESTS !!!\n");

describe("the chat page in headless Chromium, when things go wrong or grow", { skip: noChromium }, () => {
  let browser;
  before(async () => (browser = await launchChromium()));
  after(() => browser?.close());

  const person = (url) => openPerson(browser, url);

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
