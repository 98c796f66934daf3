// The database a test server runs on: a SQLite file of its own, or a PostgreSQL database of its
// own (created here, dropped on cleanup). TEST_DB picks the backend for the whole run.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import pg from "pg";

export const backend = process.env.TEST_DB ?? "sqlite";

const adminUrl =
  process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** Where the PostgreSQL server is, for tests that put a proxy in front of it. */
export function postgresAddress() {
  const url = new URL(adminUrl);
  return { host: url.hostname, port: Number(url.port || 5432) };
}

/** The same database reached at another host and port (through a proxy). */
export function via(db, { host, port }) {
  const url = new URL(db.url);
  url.hostname = host;
  url.port = String(port);
  return { ...db, url: url.toString() };
}

/** Creates an empty database; returns { url, drop() }. */
export async function createDatabase() {
  if (backend === "postgres") return createPostgres();
  if (backend === "sqlite") return createSqlite();
  throw new Error(`TEST_DB must be sqlite or postgres, not ${backend}`);
}

function createSqlite() {
  const dir = mkdtempSync(join(tmpdir(), "chatoxide-test-"));
  return {
    url: `sqlite://${join(dir, "chat.db")}?mode=rwc`,
    async drop() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function createPostgres() {
  const name = `chatoxide_test_${process.pid}_${randomBytes(4).toString("hex")}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

async function admin(sql) {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * Holds the database's write lock from outside the server, as a long transaction of another
 * program would: the server's writes wait (reads go on). Resolves once the lock is held, with
 * `release()`. SQLite: a second process (Python's sqlite3) in `BEGIN IMMEDIATE`; PostgreSQL:
 * a transaction holding EXCLUSIVE locks on the chat's tables.
 */
export async function holdWriteLock(db) {
  if (backend === "postgres") {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query("BEGIN");
    await client.query("LOCK TABLE rooms, memberships, messages IN EXCLUSIVE MODE");
    return {
      async release() {
        await client.query("COMMIT");
        await client.end();
      },
    };
  }
  const path = new URL(db.url.replace(/^sqlite:/, "file:")).pathname;
  const holder = spawn("python3", [
    "-c",
    "import sqlite3, sys\n" +
      "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n" +
      "c.execute('BEGIN IMMEDIATE')\n" +
      "print('held', flush=True)\n" +
      "sys.stdin.readline()\n" +
      "c.execute('COMMIT')\n",
    path,
  ], { stdio: ["pipe", "pipe", "inherit"] });
  await new Promise((resolve, reject) => {
    holder.stdout.once("data", resolve);
    holder.once("exit", (code) => reject(new Error(`the lock holder exited (${code})`)));
  });
  return {
    async release() {
      const exited = new Promise((resolve) => holder.once("exit", resolve));
      holder.stdin.end("\n");
      await exited;
    },
  };
}
