// Issue 16: the official Socket.IO tutorial's final chat page (a shared fixture, served unchanged)
// runs against chatoxide with examples/socketio-tutorial/chatoxide.toml as it runs against the
// tutorial's own Node server, the reference: the same scenarios against both, each in headless
// Chromium (skipped loudly without Chromium or without the fixture, except under CI=true), with
// default settings. The page's message ids are opaque here: Node's are integers, chatoxide's hex.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromiumMissing, launchChromium } from "../harness/admin-ui.js";
import { WAIT_MS, eventually } from "../harness/client.js";
import { startLossyProxy } from "../harness/lossy-proxy.js";
import { startTutorial, tutorialKinds, tutorialMissing } from "../harness/tutorial.js";
import { allShow, explained, openTutorialPage } from "../harness/tutorial-page.js";

const noFixture = tutorialMissing();
const noChromium = chromiumMissing();
if (noChromium) console.error("!!! ...AND THE SOCKET.IO TUTORIAL TESTS !!!\n");

// Both servers by default; the Node reference is left out of the PostgreSQL run (TEST_DB=postgres),
// since it does not use the project's database and would only repeat the SQLite run.
const skip = noFixture || noChromium;
for (const kind of tutorialKinds()) {
  describe(`the Socket.IO tutorial's chat, unchanged, on the ${kind} server`, { skip }, () => {
    let browser;
    before(async () => (browser = await launchChromium()));
    after(() => browser?.close());

    /**
     * Runs `body` with a server of its own (an empty store) and a proxy in front of it; `open`
     * opens the page as a person, at the server or (`{ viaProxy: true }`) at the proxy's origin.
     */
    async function scenario(body) {
      const server = await startTutorial(kind);
      const port = Number(new URL(server.url).port);
      const proxy = await startLossyProxy({ host: "127.0.0.1", port });
      const people = [];
      const open = async (name, { viaProxy = false } = {}) => {
        const origin = viaProxy ? proxy.url : server.url;
        const person = await openTutorialPage(browser, `${origin}/`, name);
        people.push(person);
        return person;
      };
      try {
        await explained(server, people, () => body({ server, proxy, open }));
      } finally {
        await proxy.close();
        await server.close();
      }
    }

    test("two pages see each other's messages once each, in the same order", () =>
      scenario(async ({ open }) => {
        const alice = await open("alice");
        const bob = await open("bob");
        const said = { alice: ["alice 1", "alice 2", "alice 3"], bob: ["bob 1", "bob 2", "bob 3"] };
        for (let i = 0; i < 3; i++) {
          await alice.send(said.alice[i]);
          await bob.send(said.bob[i]);
        }
        // Sent without waiting for one another: the server's order decides, one order for both.
        const everything = [...said.alice, ...said.bob];
        const enough = async () => (await alice.lines()).length >= everything.length;
        await eventually(enough, undefined, "alice's page listing six messages");
        const seen = await alice.lines();
        assert.deepEqual([...seen].sort(), [...everything].sort(), "each message once");
        for (const who of ["alice", "bob"]) {
          assert.ok(isSubsequence(said[who], seen), `${who}'s messages in the order sent: ${seen}`);
        }
        await allShow([bob], seen);
        await alice.send("alice 4");
        await allShow([alice, bob], [...seen, "alice 4"]);
      }));

    test("a page that disconnects and reconnects shows exactly what it missed", () =>
      scenario(async ({ open }) => {
        const alice = await open("alice");
        const bob = await open("bob");
        await alice.send("alice 1");
        await allShow([alice, bob], ["alice 1"]);

        // The tutorial's toggle. A disconnect the client asks for is not one socket.io recovers
        // from: on reconnecting the page is caught up from its auth.serverOffset.
        await bob.disconnect();
        await bob.offline();
        for (const text of ["alice 2", "alice 3", "alice 4"]) await alice.send(text);
        await allShow([alice], ["alice 1", "alice 2", "alice 3", "alice 4"]);
        await bob.connect();
        await bob.online();

        await allShow([bob], await alice.lines());
        await bob.send("bob 1");
        await allShow([alice, bob], ["alice 1", "alice 2", "alice 3", "alice 4", "bob 1"]);
      }));

    test("a page whose connection the network cuts shows exactly what it missed", () =>
      scenario(async ({ proxy, open }) => {
        const alice = await open("alice");
        const bob = await open("bob", { viaProxy: true });
        await alice.send("alice 1");
        await allShow([alice, bob], ["alice 1"]);

        // A lost connection is one socket.io recovers from (Node's connection state recovery, two
        // minutes); whichever way the server catches the page up, it shows each message once.
        proxy.cut();
        await bob.offline();
        for (const text of ["alice 2", "alice 3", "alice 4"]) await alice.send(text);
        await allShow([alice], ["alice 1", "alice 2", "alice 3", "alice 4"]);
        proxy.restore();
        await bob.online();

        await allShow([bob], ["alice 1", "alice 2", "alice 3", "alice 4"]);
        await bob.send("bob 1");
        await allShow([alice, bob], ["alice 1", "alice 2", "alice 3", "alice 4", "bob 1"]);
      }));

    test("a page opened later shows the whole history, in order", () =>
      scenario(async ({ open }) => {
        const alice = await open("alice");
        const bob = await open("bob");
        const history = [];
        for (const [person, text] of [[alice, "alice 1"], [bob, "bob 1"], [alice, "alice 2"]]) {
          await person.send(text);
          history.push(text);
          await allShow([alice, bob], [...history]);
        }

        const carol = await open("carol");
        await allShow([carol], history);
        await carol.send("carol 1");
        await allShow([alice, bob, carol], [...history, "carol 1"]);
      }));

    test("after a SIGKILL and a restart on the same port the pages reconnect and lose nothing", () =>
      scenario(async ({ server, open }) => {
        const alice = await open("alice");
        const bob = await open("bob");
        await alice.send("alice 1");
        await allShow([alice, bob], ["alice 1"]);
        await bob.send("bob 1");
        await allShow([alice, bob], ["alice 1", "bob 1"]);

        await server.kill();
        await Promise.all([alice.offline(), bob.offline()]);
        await server.start();
        await Promise.all([alice.online(), bob.online()]);

        await alice.send("alice 2");
        await allShow([alice, bob], ["alice 1", "bob 1", "alice 2"]);
        await bob.send("bob 2");
        const history = ["alice 1", "bob 1", "alice 2", "bob 2"];
        await allShow([alice, bob], history);
        const carol = await open("carol");
        await allShow([carol], history);
      }));

    test("messages typed while the server is down arrive once, everywhere, in order", () =>
      scenario(async ({ server, open }) => {
        const alice = await open("alice");
        const bob = await open("bob");
        await alice.send("alice 1");
        await allShow([alice, bob], ["alice 1"]);

        await server.kill();
        await Promise.all([alice.offline(), bob.offline()]);
        // Queued by the page (its `retries`), each with its clientOffset, sent after the restart.
        const typed = ["alice offline 1", "alice offline 2", "alice offline 3"];
        for (const text of typed) await alice.send(text);
        await server.start();

        await allShow([alice, bob], ["alice 1", ...typed]);
        await bob.send("bob 1");
        const history = ["alice 1", ...typed, "bob 1"];
        await allShow([alice, bob], history);
        const carol = await open("carol");
        await allShow([carol], history);
      }));

    test("an acknowledgement lost on the way: the retry is answered and the message shown once", () =>
      scenario(async ({ proxy, open }) => {
        const alice = await open("alice", { viaProxy: true });
        const bob = await open("bob", { viaProxy: true });
        await alice.send("alice 1");
        await allShow([alice, bob], ["alice 1"]);

        await alice.onWebSocket();
        const lost = proxy.dropNextAck();
        await alice.send("alice 2 (its ack is lost)");
        await within(lost, WAIT_MS, "the proxy dropping the acknowledgement");
        await allShow([alice, bob], ["alice 1", "alice 2 (its ack is lost)"]);
        // Queued behind the unacknowledged message: sent once its retry (after the page's
        // ackTimeout of 10 s) has been answered.
        await alice.send("alice 3");

        const history = ["alice 1", "alice 2 (its ack is lost)", "alice 3"];
        await allShow([alice, bob], history);
        const carol = await open("carol");
        await allShow([carol], history);
      }));
  });
}

/** Whether `part` appears in `whole` in its order (not necessarily side by side). */
function isSubsequence(part, whole) {
  let at = 0;
  for (const item of whole) if (item === part[at]) at++;
  return at === part.length;
}

/** `promise`, or a failure naming `what` after `ms`. */
async function within(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
