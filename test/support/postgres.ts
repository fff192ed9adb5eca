/**
 * The PostgreSQL the Postgres-store suites run against: `JOBLEDGER_TEST_PG`, else the local
 * server (127.0.0.1:5432, trust auth, database `test`). A suite skips only when it is
 * unreachable, and says so loudly; every test uses a schema of its own.
 */
import { randomUUID } from "node:crypto"
import pg from "pg"

export const PG_URL = process.env.JOBLEDGER_TEST_PG ?? "postgres://postgres@127.0.0.1:5432/test"

/** Why PostgreSQL cannot be used (`undefined`: it can). */
export const pgUnreachable = async (): Promise<string | undefined> => {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3_000 })
  try {
    await client.connect()
    await client.query("SELECT 1")
    return undefined
  } catch (e) {
    return (e as Error).message
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** Checked once per test file: skip the suite (loudly) only when the server is unreachable. */
export const pgSkipReason = await pgUnreachable()
if (pgSkipReason !== undefined)
  console.warn(`\n!!! PostgreSQL at ${PG_URL} is unreachable (${pgSkipReason}): the Postgres store suites are SKIPPED. Set JOBLEDGER_TEST_PG to a reachable server.\n`)

/** A schema name no other test uses. */
export const uniqueSchema = (prefix = "jl") => `${prefix}_${randomUUID().replace(/-/g, "").slice(0, 12)}`

/** A pool for the tests' own queries (and to hand to stores); end it in afterAll. */
export const testPool = () => new pg.Pool({ connectionString: PG_URL, max: 4, allowExitOnIdle: true })

/** Drops a test's schema and everything in it. */
export const dropSchema = async (pool: pg.Pool, schema: string) => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
}
