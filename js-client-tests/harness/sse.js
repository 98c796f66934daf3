// A Server-Sent Events reader over a real HTTP connection (Node's fetch), parsing the stream as
// the HTML standard's EventSource does: `id:`, `event:`, `data:` (lines joined), comments skipped,
// an event dispatched at a blank line. It never reconnects by itself: tests do that, with the
// `Last-Event-ID` they choose.
import { WAIT_MS } from "./client.js";

/**
 * Opens `url` as an event stream with `headers`. Resolves once the response's head arrived (the
 * server has joined the room's live events by then) with { status, headers, events, body?, next(n),
 * ended, close() }: `events` grows as events arrive, each { id, event, data (parsed JSON) };
 * `next(n)` resolves once `n` events beyond those already taken have arrived and returns them;
 * `ended` resolves when the server ends the stream. A response that is not an event stream has
 * `body` (its JSON) and no events.
 */
export async function openFeed(url, headers = {}) {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: abort.signal });
  const feed = {
    status: res.status,
    headers: res.headers,
    events: [],
    taken: 0,
    close: () => abort.abort(),
  };
  if (!(res.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    feed.body = await res.json();
    return feed;
  }
  const waiters = new Set();
  const wake = () => waiters.forEach((w) => w());
  feed.ended = read(res.body, (event) => {
    feed.events.push(event);
    wake();
  }).finally(() => {
    feed.done = true;
    wake();
  });
  feed.next = (n = 1, ms = WAIT_MS) =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (feed.events.length >= feed.taken + n) {
          waiters.delete(check);
          clearTimeout(timer);
          const got = feed.events.slice(feed.taken, feed.taken + n);
          feed.taken += n;
          resolve(got);
        } else if (feed.done) {
          waiters.delete(check);
          clearTimeout(timer);
          reject(new Error(`the stream ended after ${feed.events.length - feed.taken} of ${n} events`));
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`${feed.events.length - feed.taken} of ${n} events within ${ms} ms`));
      }, ms);
      waiters.add(check);
      check();
    });
  return feed;
}

/** Reads an event stream to its end (or its abort), calling `onEvent` for each event. */
async function read(body, onEvent) {
  const decoder = new TextDecoder();
  let buffer = "";
  let event = fresh();
  try {
    for await (const chunk of body) {
      buffer += decoder.decode(chunk, { stream: true });
      let newline;
      while ((newline = buffer.search(/\r\n|\n|\r/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          if (event.data.length) onEvent({ id: event.id, event: event.event, data: JSON.parse(event.data.join("\n")) });
          event = fresh();
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "id") event.id = value;
        else if (field === "event") event.event = value;
        else if (field === "data") event.data.push(value);
      }
    }
  } catch (err) {
    if (err.name !== "AbortError") throw err;
  }
}

function fresh() {
  return { id: undefined, event: "message", data: [] };
}
