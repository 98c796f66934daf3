// --static-dir: a frontend's own folder served at `/` as Node's express.static serves it (index
// pages, redirects, types, validators, no listings, no dotfiles, nothing outside the folder),
// while chatoxide's own routes win over any file named like them, and what the folder lacks
// falls through to the chat page. Paths that WHATWG `fetch` would normalise (`..`, `%2e%2e`,
// `\`) go over node:http, which sends them as written.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer } from "../harness/server.js";

const SECRET = "SECRET-OUTSIDE-THE-FOLDER";
const FROM_DIR = "FROM-THE-STATIC-FOLDER";

/** A folder as a Node app's `public/` would be, beside a file it must never serve. */
function makeSite() {
  const parent = mkdtempSync(join(tmpdir(), "chatoxide-static-"));
  writeFileSync(join(parent, "secret.txt"), SECRET);
  const root = join(parent, "site");
  const files = {
    "index.html": "<!doctype html><title>site</title><script src=\"/socket.io/socket.io.js\"></script>",
    "style.css": "body { color: red }",
    "app.js": "console.log('app')",
    "data.json": "{\"a\":1}",
    "logo.png": "\x89PNG",
    "nested/index.html": "<p>nested</p>",
    "empty/readme.txt": "no index here",
    ".env": "DOTFILE",
    ".git/config": "DOTDIR",
    healthz: FROM_DIR,
    "api/rooms/x/messages/index.html": FROM_DIR,
    "socket.io/socket.io.js": FROM_DIR,
  };
  for (const [path, body] of Object.entries(files)) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), body);
  }
  symlinkSync(join(parent, "secret.txt"), join(root, "leak.txt"));
  symlinkSync(parent, join(root, "up"));
  return { root, files };
}

/** A request sent with its path exactly as written. */
function raw(server, path, { method = "GET", headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: server.port, path, method, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("--static-dir with the chat page on (the default)", () => {
  let server;
  let site;
  before(async () => {
    site = makeSite();
    server = await startServer({ args: ["--static-dir", site.root] });
  });
  after(() => server.close());

  test("/ serves the folder's index.html as text/html, not the chat page", async () => {
    const res = await server.fetch("/");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /^text\/html; charset=utf-8$/i);
    assert.equal(await res.text(), site.files["index.html"]);
  });

  test("content types by extension", async () => {
    for (const [path, type] of [
      ["/style.css", /^text\/css; charset=utf-8$/i],
      ["/app.js", /javascript; charset=utf-8$/i],
      ["/data.json", /^application\/json; charset=utf-8$/i],
      ["/logo.png", /^image\/png$/],
      ["/index.html", /^text\/html/],
    ]) {
      const res = await server.fetch(path);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get("content-type"), type, path);
    }
  });

  test("ETag as send makes it, and 304 for If-None-Match", async () => {
    const res = await server.fetch("/style.css");
    const etag = res.headers.get("etag");
    const size = site.files["style.css"].length.toString(16);
    assert.match(etag, new RegExp(`^W/"${size}-[0-9a-f]+"$`));
    assert.equal(res.headers.get("cache-control"), "public, max-age=0");
    const again = await server.fetch("/style.css", { headers: { "if-none-match": etag } });
    assert.equal(again.status, 304);
    assert.equal(again.headers.get("etag"), etag);
    assert.equal(await again.text(), "");
    const strong = etag.replace(/^W\//, "");
    const listed = await server.fetch("/style.css", { headers: { "if-none-match": `"other", ${strong}` } });
    assert.equal(listed.status, 304, "a list, compared weakly");
    const stale = await server.fetch("/style.css", { headers: { "if-none-match": '"other"' } });
    assert.equal(stale.status, 200);
  });

  test("Last-Modified, and 304 for If-Modified-Since unless If-None-Match says otherwise", async () => {
    const res = await server.fetch("/app.js");
    const modified = res.headers.get("last-modified");
    assert.ok(!Number.isNaN(Date.parse(modified)), modified);
    const again = await server.fetch("/app.js", { headers: { "if-modified-since": modified } });
    assert.equal(again.status, 304);
    assert.equal(again.headers.get("etag"), res.headers.get("etag"));
    const earlier = new Date(Date.parse(modified) - 60_000).toUTCString();
    assert.equal((await server.fetch("/app.js", { headers: { "if-modified-since": earlier } })).status, 200);
    const both = { "if-modified-since": modified, "if-none-match": '"other"' };
    assert.equal((await server.fetch("/app.js", { headers: both })).status, 200);
  });

  test("a directory without its slash redirects 301 to it, the query kept", async () => {
    const res = await server.fetch("/nested", { redirect: "manual" });
    assert.equal(res.status, 301);
    assert.equal(res.headers.get("location"), "/nested/");
    const query = await server.fetch("/nested?x=1", { redirect: "manual" });
    assert.equal(query.headers.get("location"), "/nested/?x=1");
    const nested = await server.fetch("/nested/");
    assert.equal(nested.status, 200);
    assert.equal(await nested.text(), site.files["nested/index.html"]);
    const twice = await raw(server, "//nested");
    assert.equal(twice.headers.location, "/nested/", "never a location on another site");
  });

  test("a directory without index.html is not listed", async () => {
    const res = await server.fetch("/empty/");
    assert.equal(res.status, 404);
    assert.ok(!(await res.text()).includes("readme.txt"));
    assert.equal((await server.fetch("/empty/readme.txt")).status, 200);
  });

  test("no path leaves the folder, however it is spelled", async () => {
    for (const path of [
      "/../secret.txt",
      "/../Cargo.toml",
      "/%2e%2e/secret.txt",
      "/%2E%2E/%2e%2e/Cargo.toml",
      "/..%2fsecret.txt",
      "/nested/..%2f..%2fsecret.txt",
      "/%5c..%5csecret.txt",
      "/nested/%2e%2e/%2e%2e/secret.txt",
      "/%2fetc%2fpasswd",
      "/index.html%00.css",
      "/leak.txt",
      "/up/secret.txt",
    ]) {
      const res = await raw(server, path);
      assert.equal(res.status, 404, path);
      assert.ok(!res.body.includes(SECRET), path);
    }
    const backslash = await raw(server, "/..\\secret.txt");
    assert.ok([400, 404].includes(backslash.status), `a raw backslash: ${backslash.status}`);
    assert.ok(!backslash.body.includes(SECRET));
  });

  test("dotfiles and dot-directories are not served", async () => {
    for (const path of ["/.env", "/%2eenv", "/.git/config", "/.git/"]) {
      const res = await raw(server, path);
      assert.equal(res.status, 404, path);
      assert.ok(!res.body.includes("DOT"), path);
    }
  });

  test("what the folder lacks is the chat page's, else 404", async () => {
    assert.equal((await server.fetch("/missing.css")).status, 404);
    const config = await server.fetch("/chat-config.json");
    assert.equal(config.status, 200);
    assert.deepEqual(await config.json(), { auth: "open" });
    const script = await server.fetch("/chat.js");
    assert.equal(script.status, 200);
    assert.match(script.headers.get("content-type"), /^text\/javascript/);
  });

  test("chatoxide's routes win over files named like them", async () => {
    const health = await server.fetch("/healthz");
    assert.equal(health.status, 200);
    assert.equal(await health.text(), "ok");
    for (const path of ["/api/rooms/x/messages", "/api/rooms/x/messages/", "/api/rooms/x/messages/index.html"]) {
      const api = await server.fetch(path, { redirect: "manual" });
      assert.notEqual(api.status, 301, path);
      assert.ok(!(await api.text()).includes(FROM_DIR), path);
    }
    const bundle = await server.fetch("/socket.io/socket.io.js");
    assert.equal(bundle.status, 200);
    const text = await bundle.text();
    assert.ok(!text.includes(FROM_DIR));
    assert.match(text.slice(0, 200), /Socket\.IO v4/);
  });

  test("HEAD answers the headers without the body", async () => {
    const res = await raw(server, "/style.css", { method: "HEAD" });
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-length"], String(site.files["style.css"].length));
    assert.match(res.headers.etag, /^W\//);
    assert.equal(res.body, "");
  });

  test("other methods are not served the file", async () => {
    for (const method of ["POST", "PUT", "DELETE"]) {
      const res = await raw(server, "/style.css", { method });
      assert.ok(res.status === 404 || res.status === 405, `${method}: ${res.status}`);
      assert.ok(!res.body.includes("color: red"), method);
    }
  });
});

describe("--static-dir with the chat page off", () => {
  let server;
  let site;
  before(async () => {
    site = makeSite();
    server = await startServer({ args: ["--static-dir", site.root, "--chat-page", "false"] });
  });
  after(() => server.close());

  test("the folder is served, and what it lacks is 404", async () => {
    assert.equal(await (await server.fetch("/")).text(), site.files["index.html"]);
    for (const path of ["/chat-config.json", "/chat.js", "/missing.css", "/empty/"]) {
      assert.equal((await server.fetch(path)).status, 404, path);
    }
    assert.equal(await (await server.fetch("/healthz")).text(), "ok");
  });
});

describe("the setting's other forms, and its default", () => {
  test("without --static-dir, / is the chat page", async () => {
    const server = await startServer();
    try {
      const res = await server.fetch("/");
      assert.equal(res.status, 200);
      assert.ok((await res.text()).includes("/chat.js"));
    } finally {
      await server.close();
    }
  });

  test("CHATOXIDE_STATIC_DIR and the file's static_dir set it too", async () => {
    const site = makeSite();
    const file = join(site.root, "..", "chatoxide.toml");
    writeFileSync(file, `static_dir = ${JSON.stringify(site.root)}\n`);
    for (const how of [{ env: { CHATOXIDE_STATIC_DIR: site.root } }, { args: ["--config", file] }]) {
      const server = await startServer(how);
      try {
        assert.equal(await (await server.fetch("/")).text(), site.files["index.html"]);
      } finally {
        await server.close();
      }
    }
  });

  test("a folder that does not exist, or is a file, stops the start and is named", async () => {
    const site = makeSite();
    for (const path of [join(site.root, "no-such-folder"), join(site.root, "style.css")]) {
      await assert.rejects(startServer({ args: ["--static-dir", path] }), (err) => {
        const code = Number(/server exited \((\d+)\)/.exec(err.message)?.[1]);
        assert.ok(code > 0, err.message);
        assert.ok(err.message.includes(path), err.message);
        return true;
      });
    }
  });
});
