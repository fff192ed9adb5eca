/**
 * The slice of node-postgres (`pg`) the Postgres store uses, and loading it on demand.
 *
 * `pg` is an optional peer dependency: only this module imports it, only when a store is
 * built from a connection string (a store given a pool of the user's needs no import), and
 * a missing package is a clear error that names the command to run. The types below are
 * structural, so neither `pg` nor `@types/pg` is needed to type-check jobledger itself.
 */

/** A query result as `pg` returns it. */
export interface PgResult<Row = Record<string, unknown>> {
  readonly rows: Array<Row>
  readonly rowCount: number | null
}

/** Something that runs a parameterized query (a pool or a checked-out client). */
export interface PgQueryable {
  query<Row = Record<string, unknown>>(text: string, values?: ReadonlyArray<unknown>): Promise<PgResult<Row>>
}

/** A client checked out of a pool, for one transaction. */
export interface PgClient extends PgQueryable {
  /** Returns the client to its pool; an error (or `true`) destroys it instead. */
  release(destroy?: boolean | Error): void
}

/** A `pg.Pool`, or anything with the same three methods. */
export interface PgPool extends PgQueryable {
  connect(): Promise<PgClient>
  end(): Promise<void>
}

/** The store could not do what was asked; `retryable` says whether the same call may succeed later. */
export class PostgresStoreError extends Error {
  override readonly name = "PostgresStoreError"
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown }
  ) {
    super(message, options)
  }
}

export const PG_MISSING = "PostgresQueueStore needs the 'pg' package (node-postgres), which is not installed: npm install pg"

type PoolConstructor = new (config: Record<string, unknown>) => PgPool

/** How `pg` is imported; a parameter only so that tests can stand in a missing package. */
export type PgImporter = () => Promise<unknown>
const importPg: PgImporter = () => import("pg")

/** A pool for `config` (a `pg.PoolConfig`: connectionString, host, max, …), importing `pg` now. */
export const createPool = async (config: Record<string, unknown>, importer: PgImporter = importPg): Promise<PgPool> => {
  let mod: unknown
  try {
    mod = await importer()
  } catch (e) {
    const code = (e as { code?: unknown } | null)?.code
    if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") throw new PostgresStoreError(PG_MISSING, false, { cause: e })
    throw e
  }
  // pg is CommonJS: its exports are the default export of the ES module namespace
  const ns = mod as { default?: { Pool?: PoolConstructor }; Pool?: PoolConstructor }
  const Pool = ns.default?.Pool ?? ns.Pool
  if (typeof Pool !== "function") throw new PostgresStoreError("the 'pg' package found has no Pool export (expected node-postgres 8.x)", false)
  // an idle pool must not keep the process alive: forgetting store.close() is not a hang
  return new Pool({ allowExitOnIdle: true, ...config })
}

/**
 * Whether a failed statement may succeed if tried again: lost connections, shutdowns,
 * serialization failures and deadlocks, lack of resources. Everything else (a bug, a
 * constraint the data breaks) is terminal for that batch, and still retried by the follower,
 * which never skips an event; the difference is in how loudly it is reported.
 */
export const isRetryablePgError = (e: unknown): boolean => {
  const code = (e as { code?: unknown } | null)?.code
  if (typeof code !== "string") return true // a socket error, a timeout: not an answer of the server
  return code.startsWith("08") || code.startsWith("53") || code.startsWith("57P") || code === "40001" || code === "40P01"
}
