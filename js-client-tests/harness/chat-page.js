// A person on the chat page chatoxide serves at `/`, in a browser context of headless Chromium,
// and what the browser suites do there (sign in, join, say, wait to see).
import { logTail } from "./admin-ui.js";

/** Every wait on the page is bounded by this: a guard against hanging, not a measure. */
export const PAGE_WAIT_MS = 20_000;

/** A person: a fresh context of `browser` (empty localStorage) on the page at `url`. */
export async function openPerson(browser, url) {
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
export async function explained(server, people, body) {
  try {
    await body();
  } catch (err) {
    for (const [name, { page, trace }] of Object.entries(people)) {
      const text = await page.locator("body").innerText({ timeout: 1000 }).catch(() => "(none)");
      err.message += `\n## ${name}'s page: ${text.replace(/\s+/g, " ").slice(0, 1200)}`;
      // The page's last error toast, also once it has hidden itself again.
      const toast = await page.locator("#toast").textContent({ timeout: 1000 }).catch(() => "(none)");
      err.message += `\n## ${name}'s last toast: ${toast || "(none)"}`;
      err.message += `\n## ${name}'s browser:\n${trace.slice(-20).join("\n")}`;
    }
    err.message += `\n## server log:\n${logTail(server)}`;
    throw err;
  } finally {
    for (const { context } of Object.values(people)) await context.close().catch(() => {});
  }
}

export async function signIn(page, name, transportLabel = /online/) {
  await page.getByTestId("name").fill(name);
  await page.getByTestId("enter").click();
  await page.locator('[data-testid="status"][data-state="online"]').waitFor();
  await page.getByTestId("status").filter({ hasText: transportLabel }).waitFor();
}

export async function join(page, room) {
  await page.getByTestId("join-room").fill(room);
  await page.getByTestId("join").click();
  await page.getByTestId("room-title").filter({ hasText: room }).waitFor();
  await page.locator(`[data-testid="room"][data-room="${room}"]`).waitFor();
}

export async function say(page, text) {
  await page.getByTestId("text").fill(text);
  await page.getByTestId("text").press("Enter");
  await shown(page, text);
}

/** Waits for a message with exactly `text` on `page`. */
export function shown(page, text) {
  return page.getByTestId("message-text").filter({ hasText: text }).first().waitFor();
}

export function online(page, name) {
  return page.locator(`[data-testid="presence-user"][data-user="${name}"][data-online="true"]`).waitFor();
}
