// A person on the Socket.IO tutorial's page, unchanged, in a browser context of headless Chromium:
// what they type in its form and what its list shows. The page keeps its socket in a top-level
// `const socket` of a classic script, which page.evaluate can reach (the tutorial's own
// disconnect toggle calls socket.disconnect() and socket.connect(); the fixture has no button).
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { openPerson } from "./chat-page.js";
import { eventually } from "./client.js";

/** A bound on waiting for a reconnection after a restart (the client backs off up to 5 s). */
export const RECONNECT_MS = 30_000;

/** Opens the page at `url` as `name`, once its socket is connected. */
export async function openTutorialPage(browser, url, name) {
  const { page, context, trace } = await openPerson(browser, url);
  const person = {
    name,
    page,
    context,
    trace,
    /** Types `text` in the form and presses Send. */
    async send(text) {
      await page.locator("#input").fill(text);
      await page.getByRole("button", { name: "Send" }).click();
    },
    /** The texts of the list, top to bottom. */
    lines: () => page.locator("#messages > li").allTextContents(),
    connected: () => page.evaluate(() => socket.connected),
    /** Waits for the socket to be connected (again). */
    online: (timeout = RECONNECT_MS) => page.waitForFunction(() => socket.connected, null, { timeout }),
    /** Waits until the page knows it is disconnected. */
    offline: (timeout = RECONNECT_MS) => page.waitForFunction(() => !socket.connected, null, { timeout }),
    /** Waits until the socket has upgraded to WebSocket. */
    onWebSocket: () => page.waitForFunction(() => socket.io.engine.transport.name === "websocket"),
    disconnect: () => page.evaluate(() => socket.disconnect()),
    connect: () => page.evaluate(() => socket.connect()),
  };
  await person.online();
  return person;
}

/**
 * Waits until every page in `people` lists exactly `expected`, then asserts it (so that a page
 * that never gets there fails with the difference).
 */
export async function allShow(people, expected) {
  for (const person of people) {
    let lines;
    const same = async () => isDeepStrictEqual((lines = await person.lines()), expected);
    await eventually(same, undefined, `${person.name}'s list`).catch(() => {});
    assert.deepEqual(lines, expected, `${person.name}'s list`);
  }
}

/** Runs `body`; a failure carries each page's list and browser log and the server's log. */
export async function explained(server, people, body) {
  try {
    await body();
  } catch (err) {
    for (const { name, page, trace } of people) {
      const lines = await page.locator("#messages > li").allTextContents().catch(() => "(none)");
      err.message += `\n## ${name}'s list: ${JSON.stringify(lines)}`;
      err.message += `\n## ${name}'s browser:\n${trace.slice(-20).join("\n")}`;
    }
    err.message += `\n## ${server.kind} server log:\n${server.log.slice(-40).join("\n")}`;
    throw err;
  } finally {
    for (const { context } of people) await context.close().catch(() => {});
  }
}
