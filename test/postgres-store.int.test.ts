/**
 * PostgresQueueStore behind the seed API, on real logs (SQLite file, Kafka broker) and the
 * local PostgreSQL: `store.get` finds finished jobs that left the process's memory,
 * `list('completed')` pages, stats and pause/resume rows agree with the engine, a store
 * offline across many snapshots catches up from its own positions (reading only the
 * tail), and the refusals and failures say what to do.
 */
import { spawnSync } from "node:child_process"
import { join } from "node:path"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { type Job, JobQueue, type QueueOptions } from "../src/index.ts"
import { PostgresQueueStore, PostgresStoreError } from "../src/postgres.ts"
import { PG_MISSING } from "../src/stores/postgres/pg.ts"
import { readViews } from "../src/stores/postgres/sql.ts"
import { type Backend, kafkaBackend, sqliteBackend, uniqueQueue, until } from "./support/backends.ts"
import { ROOT } from "./support/children.ts"
import { listenerChecks } from "./fixtures/helpers.ts"
import { dropSchema, PG_URL, pgSkipReason, testPool, uniqueSchema } from "./support/postgres.ts"

const backends: ReadonlyArray<Backend> = [sqliteBackend, ...(kafkaBackend ? [kafkaBackend] : [])]
if (kafkaBackend === undefined) console.warn("SKIPPED: the Postgres store's Kafka cases (no KAFKA_BROKERS)")

const ids = (jobs: ReadonlyArray<Job>) => jobs.map((j) => j.id).sort()

describe.skipIf(pgSkipReason !== undefined)("PostgresQueueStore (real PostgreSQL)", () => {
  const pool = testPool()
  const schemas: Array<string> = []
  const opened: Array<{ close: () => Promise<void> }> = []
  /** A store in a schema of this test's own (dropped at the end). */
  const newStore = (options: { schema?: string; queue?: string; follow?: boolean } = {}) => {
    const schema = options.schema ?? uniqueSchema("store")
    if (!schemas.includes(schema)) schemas.push(schema)
    const store = new PostgresQueueStore({ connectionString: PG_URL, ...options, schema })
    opened.push(store)
    return store
  }
  const open = (name: string, log: string, options: QueueOptions = {}) => {
    const queue = new JobQueue(name, { log, ...options })
    opened.unshift({ close: () => queue.close({ graceMs: 2_000 }) }) // queues close before their stores
    return queue
  }
  afterEach(async () => {
    for (const o of opened.splice(0)) await o.close().catch(() => undefined)
  })
  afterAll(async () => {
    for (const s of schemas) await dropSchema(pool, s)
    await pool.end()
  })

  describe.each(backends)("on $name", (backend) => {
    it("store.get finds finished jobs that left the read model's memory; list('completed') pages; stats agree", async () => {
      const name = uniqueQueue("pg-seed")
      const log = backend.freshLog()
      const store = newStore()
      const q = open(name, log, { store, keep: { completed: 1 }, retry: { attempts: 1, delay: 10 } })
      expect(q.store).toBe(store)
      q.process("work", async (job) => {
        if (job.data.fail) throw new Error(`no ${job.data.n}`)
        return { doubled: job.data.n * 2 }
      })
      const jobs = await q.addBulk(Array.from({ length: 7 }, (_, n) => ({ name: "work", data: { n }, opts: { metadata: { n } } })))
      const bad = await q.add("work", { n: 99, fail: true })
      await until(async () => (await store.stats()).completed === 7 && (await store.stats()).failed === 1, "7 completed and 1 failed in the table", 30_000)
      expect(await store.stats()).toEqual(await q.stats())

      // every job, however long ago it finished; the queue's own memory keeps one
      for (const job of jobs)
        expect(await store.get(job.id)).toMatchObject({ id: job.id, state: "completed", data: { n: job.data.n }, metadata: { n: job.data.n }, result: { doubled: job.data.n * 2 }, createdAt: job.createdAt })
      expect(await store.get(bad.id)).toMatchObject({ state: "failed", attemptsMade: 1, error: { message: "no 99" } })
      expect(await store.get("no-such-job")).toBeUndefined()
      if (backend.name === "kafka") {
        // the queue's default store, without PostgreSQL, no longer knows the oldest ones
        const plain = open(name, log, { keep: { completed: 1 } })
        const known = await Promise.all(jobs.map((j) => plain.store.get(j.id)))
        expect(known.filter((j) => j !== undefined).length).toBeLessThan(jobs.length)
      }

      // keyset pages: 3 + 3 + 1, no job twice, in updatedAt order; the last page has no cursor
      const pages: Array<Array<Job>> = []
      let cursor: string | undefined
      do {
        const page = await store.page("completed", { limit: 3, ...(cursor === undefined ? {} : { cursor }) })
        pages.push(page.jobs)
        cursor = page.cursor
      } while (cursor !== undefined)
      expect(pages.map((p) => p.length)).toEqual([3, 3, 1])
      const paged = pages.flat()
      expect(ids(paged)).toEqual(ids(jobs))
      const order = paged.map((j) => [j.updatedAt, j.id] as const)
      expect(order).toEqual([...order].sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1)))
      expect((await store.list("completed", { limit: 3, order: "desc" })).map((j) => j.id)).toEqual(paged.slice(-3).reverse().map((j) => j.id))
      expect(ids(await store.list("completed"))).toEqual(ids(jobs))
      expect((await store.list("failed")).map((j) => j.id)).toEqual([bad.id])
      expect(await store.list()).toHaveLength(8)
      const completedCursor = (await store.page("completed", { limit: 1 })).cursor!
      await expect(store.page("failed", { limit: 3, cursor: completedCursor })).rejects.toThrow(/cursor belongs to a page of completed/)
      await expect(store.page("completed", { cursor: "garbage" })).rejects.toThrow(/not one this store returned/)
    })

    it("pause and resume keep rows right (waiting jobs of a paused queue are paused); listeners see the table already updated", async () => {
      const name = uniqueQueue("pg-pause")
      const store = newStore()
      const q = open(name, backend.freshLog(), { store })
      const { check, settled } = listenerChecks()
      q.on("completed", (job: Job) => check(async () => expect((await store.get(job.id))?.state).toBe("completed")))
      q.process("work", async (job) => job.data.n)
      await q.pause() // appended before the adds: the engine applies it first, on every partition
      const jobs = await q.addBulk([1, 2, 3].map((n) => ({ name: "work", data: { n } })))
      await until(async () => (await store.stats()).paused === 3, "3 paused rows", 20_000)
      for (const job of jobs) expect((await store.get(job.id))?.state).toBe("paused")
      expect((await store.list("paused")).length).toBe(3)
      expect(await store.stats()).toEqual(await q.stats())
      await q.resume()
      await until(async () => (await store.stats()).completed === 3, "3 completed rows after the resume", 20_000)
      expect(await store.stats()).toMatchObject({ paused: 0, waiting: 0, completed: 3 })
      await settled()
    })

    it("a store offline across many snapshots catches up from its positions: it reads only the tail, and misses nothing", async () => {
      const name = uniqueQueue("pg-restart")
      const log = backend.freshLog()
      const schema = uniqueSchema("restart")
      const previous = process.env.JOBLEDGER_SNAPSHOT_EVERY
      process.env.JOBLEDGER_SNAPSHOT_EVERY = "1" // a snapshot after every event: the read model's sink would miss the finished jobs
      try {
        // 1. an engine with the store: 5 jobs
        const first = newStore({ schema })
        const a = open(name, log, { store: first, keep: { completed: 0 } })
        a.process("work", async (job) => job.data.n)
        const early = await a.addBulk([0, 1, 2, 3, 4].map((n) => ({ name: "work", data: { n } })))
        await until(async () => (await first.stats()).completed === 5, "5 completed in the table", 30_000)
        await a.close()
        const stored = (await pool.query<{ n: string }>(`SELECT sum(next_offset)::text AS n FROM "${schema}".positions WHERE queue = $1`, [name])).rows[0]!.n
        expect(Number(stored)).toBeGreaterThanOrEqual(15)

        // 2. the store is offline: an engine without it runs 10 more, snapshotting all along
        const b = open(name, log, { keep: { completed: 0 } })
        b.process("work", async (job) => job.data.n)
        const late = await b.addBulk([5, 6, 7, 8, 9, 10, 11, 12, 13, 14].map((n) => ({ name: "work", data: { n } })))
        await until(async () => (await b.stats()).completed === 15, "15 completed", 30_000)
        await b.close()

        // 3. a producer-only queue with a new store on the same tables: catch-up from the positions
        const second = newStore({ schema })
        const c = open(name, log, { store: second })
        expect(await second.stats()).toMatchObject({ completed: 15, waiting: 0, active: 0 })
        for (const job of [...early, ...late]) expect((await second.get(job.id))?.state).toBe("completed")
        const progress = second.progress!
        // exactly the 10 jobs × (JobAdded, JobStarted, JobCompleted) written while it was away
        expect(progress.recordsRead).toBe(30)
        expect(progress.recordsSkipped).toBe(0)
        await c.close()
      } finally {
        if (previous === undefined) delete process.env.JOBLEDGER_SNAPSHOT_EVERY
        else process.env.JOBLEDGER_SNAPSHOT_EVERY = previous
      }
    })
  })

  describe("on SQLite only", () => {
    it("enqueue and update are refused with what to do instead", async () => {
      const store = newStore({ queue: "q" })
      const job = { id: "j1" } as Job
      await expect(store.enqueue(job)).rejects.toThrow(/written from the log by the store's follower.*queue\.add\(\)/)
      await expect(store.update(job)).rejects.toBeInstanceOf(PostgresStoreError)
    })

    it("a store without a queue says so; one with follow: false only reads what another keeps", async () => {
      await expect(newStore().stats()).rejects.toThrow(/which queue\? Pass \{ queue \}/)
      const name = uniqueQueue("pg-reader")
      const schema = uniqueSchema("reader")
      const writer = newStore({ schema })
      const reader = newStore({ schema, queue: name, follow: false })
      const q = open(name, sqliteBackend.freshLog(), { store: writer })
      q.process("work", async () => "ok")
      const job = await q.add("work", {})
      await until(async () => (await reader.get(job.id))?.state === "completed", "the reader to see the job completed")
      expect(reader.progress).toBeUndefined() // it never followed
      // a queue given a non-following store follows nothing and feeds nothing
      const other = open(uniqueQueue("pg-nofollow"), sqliteBackend.freshLog(), { store: newStore({ follow: false }) })
      await other.add("work", {})
      await expect(other.store.stats()).resolves.toEqual({ waiting: 0, active: 0, completed: 0, failed: 0, delayed: 0, paused: 0 })
    })

    it("a table written under another version is rebuilt from the log", async () => {
      const name = uniqueQueue("pg-version")
      const log = sqliteBackend.freshLog()
      const schema = uniqueSchema("version")
      const first = newStore({ schema })
      const a = open(name, log, { store: first })
      a.process("work", async (job) => job.data.n)
      await a.addBulk([1, 2, 3].map((n) => ({ name: "work", data: { n } })))
      await until(async () => (await first.stats()).completed === 3, "3 completed")
      await a.close()
      await pool.query(`UPDATE "${schema}".positions SET version = '0.0' WHERE queue = $1`, [name])
      await pool.query(`UPDATE "${schema}".jobs SET name = 'stale' WHERE queue = $1`, [name])
      const second = newStore({ schema })
      const errors: Array<Error> = []
      const b = open(name, log, { store: second })
      b.on("error", (e: Error) => errors.push(e))
      expect(await second.stats()).toMatchObject({ completed: 3 })
      expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/written under version 0\.0 .*rebuilding them from the log/)])
      expect(second.progress!.recordsRead).toBe(9)
      expect((await readViews(pool, schema, name)).map((v) => v.name)).toEqual(["work", "work", "work"])
    })

    it("a table that goes back in time under a live follower (restored from a backup) is followed again from where it stands: no gap", async () => {
      const name = uniqueQueue("pg-rewind")
      const schema = uniqueSchema("rewind")
      const store = newStore({ schema })
      const q = open(name, sqliteBackend.freshLog(), { store })
      const errors: Array<Error> = []
      q.on("error", (e: Error) => errors.push(e))
      q.process("work", async (job) => job.data.n)
      await q.addBulk([1, 2, 3].map((n) => ({ name: "work", data: { n } })))
      await until(async () => (await store.stats()).completed === 3, "3 completed")
      // the backup was taken before anything happened: empty tables, positions at 0
      await pool.query(`BEGIN; DELETE FROM "${schema}".jobs; DELETE FROM "${schema}".job_counts; UPDATE "${schema}".positions SET next_offset = 0; COMMIT`)
      await q.addBulk([4, 5].map((n) => ({ name: "work", data: { n } })))
      await until(async () => (await store.stats()).completed === 5, "all 5 completed in the table again", 20_000)
      expect(await store.stats()).toEqual({ waiting: 0, active: 0, completed: 5, failed: 0, delayed: 0, paused: 0 })
      expect((await store.list("completed")).map((j) => j.data.n).sort()).toEqual([1, 2, 3, 4, 5])
      expect(store.progress!.rewinds).toBe(1)
      expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/is at offset 0 in the table, below the 9 this process committed .* following it again from 0/)])
    })

    it("a table that is ahead of the log (another log's) is refused, loudly", async () => {
      const name = uniqueQueue("pg-ahead")
      const schema = uniqueSchema("ahead")
      const first = newStore({ schema })
      const a = open(name, sqliteBackend.freshLog(), { store: first })
      a.process("work", async () => "ok")
      await a.add("work", {})
      await until(async () => (await first.stats()).completed === 1, "1 completed")
      await a.close()
      const b = open(name, sqliteBackend.freshLog(), { store: newStore({ schema }) })
      const error = await new Promise<Error>((resolve) => b.on("error", resolve))
      expect(error.message).toMatch(/partition 0 at offset 3, but sqlite:.* ends at 0: the table follows another log/)
    })

    it("a second JobQueue given the same store instance is refused (one follower per store)", async () => {
      const name = uniqueQueue("pg-twice")
      const log = sqliteBackend.freshLog()
      const store = newStore()
      open(name, log, { store })
      await store.stats() // the first queue's follower has started
      const b = open(name, log, { store })
      const error = await new Promise<Error>((resolve) => b.on("error", resolve))
      expect(error.message).toMatch(/already follows queue/)
    })

    it("without the pg package: a clear error naming npm install pg (a child process where pg cannot be resolved)", () => {
      const child = spawnSync(
        process.execPath,
        ["--import", "tsx", "--import", join(ROOT, "test/fixtures/hide-pg.mjs"), join(ROOT, "test/fixtures/pg-missing.ts"), sqliteBackend.freshLog()],
        { cwd: ROOT, encoding: "utf8", timeout: 60_000, env: { ...process.env, JOBLEDGER_LOG: "" } }
      )
      expect(child.status, child.stderr).toBe(0)
      expect(child.stdout).toContain(`stats: PostgresStoreError: ${PG_MISSING}`)
      expect(child.stdout).toContain(`reported: ${PG_MISSING}`)
      expect(PG_MISSING).toMatch(/npm install pg/)
    })
  })
})
