// The classic minimal Node chat's frontend, unchanged, against chatoxide started with
// examples/classic-node-chat.toml: its script runs as written, in a page of its own (the few
// DOM calls it makes), with the real socket.io-client as its `io`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import vm from "node:vm";
import { createRequire } from "node:module";
import { io } from "socket.io-client";
import { startServer } from "../harness/server.js";
import { WAIT_MS } from "../harness/client.js";

const require = createRequire(import.meta.url);
// The package's folder (its `exports` do not list dist/).
const clientPackage = dirname(require.resolve("socket.io-client/package.json"));
const examples = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "examples");
const frontend = readFileSync(resolve(examples, "classic-node-chat", "script.js"), "utf8");

/** The elements of examples/classic-node-chat/index.html that the script uses. */
class Element {
  constructor(tag) {
    this.tag = tag;
    this.children = [];
    this.listeners = {};
    this.value = "";
    this.innerText = "";
  }
  addEventListener(type, listener) {
    (this.listeners[type] ??= []).push(listener);
  }
  append(child) {
    this.children.push(child);
  }
}

/** A browser tab running the frontend, its `io` pointed at the server under test. */
function openTab(server) {
  const elements = {
    "message-container": new Element("div"),
    "send-container": new Element("form"),
    "message-input": new Element("input"),
  };
  const opened = [];
  const page = {
    io: (url, options) => {
      opened.push(url);
      // A separate connection per tab, as separate browsers have; the URL the frontend was
      // written with (its Node server's) stands for the server under test.
      const socket = io(server.url, { ...options, forceNew: true });
      page.socket = socket;
      return socket;
    },
    document: {
      getElementById: (id) => elements[id] ?? null,
      createElement: (tag) => new Element(tag),
    },
  };
  vm.runInNewContext(frontend, page, { filename: "script.js" });
  return {
    opened,
    socket: page.socket,
    connected: () =>
      page.socket.connected ? Promise.resolve() : new Promise((r) => page.socket.once("connect", r)),
    /** Types `text` and presses Send. */
    send(text) {
      elements["message-input"].value = text;
      for (const submit of elements["send-container"].listeners.submit ?? []) {
        submit({ preventDefault() {} });
      }
    },
    lines: () => elements["message-container"].children.map((e) => e.innerText),
    close: () => page.socket.close(),
  };
}

function until(check, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = () => {
      if (check()) return resolve();
      if (Date.now() - started > ms) return reject(new Error("timed out"));
      setTimeout(poll, 20);
    };
    poll();
  });
}

let server;
before(async () => {
  server = await startServer({ args: ["--config", resolve(examples, "classic-node-chat.toml")] });
});
after(() => server.close());

test("the page's <script src=\"…/socket.io/socket.io.js\"> gets the socket.io-client build, as from Node", async () => {
  const page = readFileSync(resolve(examples, "classic-node-chat", "index.html"), "utf8");
  assert.match(page, /src="http:\/\/localhost:3000\/socket\.io\/socket\.io\.js"/);
  const npmBuild = readFileSync(resolve(clientPackage, "dist", "socket.io.min.js"));
  for (const path of ["/socket.io/socket.io.js", "/socket.io/socket.io.min.js"]) {
    const response = await fetch(`${server.url}${path}`);
    assert.equal(response.status, 200, path);
    assert.match(response.headers.get("content-type"), /javascript/);
    const served = Buffer.from(await response.arrayBuffer());
    assert.ok(served.equals(npmBuild), `${path} is not socket.io-client's build: run scripts/vendor-socket.io-client`);
    const again = await fetch(`${server.url}${path}`, { headers: { "if-none-match": response.headers.get("etag") } });
    assert.equal(again.status, 304);
  }
  // Loading the script is not opening a session: page loads do not use up an address's
  // allowance of new sessions (50 at once by default).
  const loads = await Promise.all(Array.from({ length: 60 }, () => fetch(`${server.url}/socket.io/socket.io.js`)));
  assert.deepEqual([...new Set(loads.map((r) => r.status))], [200]);
  await Promise.all(loads.map((r) => r.arrayBuffer()));
});

test("two tabs of the classic frontend chat through the three-line rule", async () => {
  const alice = openTab(server);
  const bob = openTab(server);
  try {
    assert.deepEqual(alice.opened, ["http://localhost:3000"]);
    await Promise.all([alice.connected(), bob.connected()]);
    alice.send("Hello from the old frontend");
    await until(() => bob.lines().includes("Hello from the old frontend"));
    assert.deepEqual(alice.lines(), ["You: Hello from the old frontend"]);
    bob.send("Hi!");
    await until(() => alice.lines().includes("Hi!"));
    // socket.broadcast.emit: the sender never gets its own message back.
    assert.deepEqual(bob.lines(), ["Hello from the old frontend", "You: Hi!"]);
    assert.deepEqual(alice.lines(), ["You: Hello from the old frontend", "Hi!"]);
  } finally {
    alice.close();
    bob.close();
  }
});
