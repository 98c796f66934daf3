// Exits 0 when the PostgreSQL server the suites use answers, 1 (with the reason) otherwise.
import pg from "pg";

const url = process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
try {
  await client.connect();
  await client.query("SELECT 1");
  await client.end();
} catch (err) {
  console.error(`PostgreSQL at ${url.replace(/\/\/[^@]*@/, "//***@")} does not answer: ${err.message}`);
  process.exit(1);
}
