/**
 * Disk faults under the SQLite log, on real filesystems: a small tmpfs filled to the last
 * byte (disk full) and a read-only bind mount. `add` must reject with a clear error, the
 * engine must not crash, nothing already written may be lost or corrupted, and work must
 * resume when space returns. Needs `mount` (root in a container with CAP_SYS_ADMIN).
 */
import Database from "better-sqlite3"
import { execFileSync } from "node:child_process"
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { type Job, JobQueue, QueueLogError, replayQueue } from "../src/index.ts"
import { uniqueQueue, until } from "./support/backends.ts"
import { deferred, sleep } from "./fixtures/helpers.ts"

const canMount = (() => {
  const dir = mkdtempSync(join(tmpdir(), "jobledger-mountcheck-"))
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir], { stdio: "ignore" })
    execFileSync("umount", [dir], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()

const mounts: Array<string> = []
const mountTmpfs = (size: string): string => {
  const dir = mkdtempSync(join(tmpdir(), "jobledger-tmpfs-"))
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir])
  mounts.push(dir)
  return dir
}
const bindReadOnly = (source: string): string => {
  const dir = mkdtempSync(join(tmpdir(), "jobledger-ro-"))
  execFileSync("mount", ["--bind", source, dir])
  mounts.push(dir)
  execFileSync("mount", ["-o", "remount,bind,ro", dir])
  return dir
}

/** Writes zeros into `path` until the filesystem is full; returns the bytes written. */
const fillDisk = (path: string): number => {
  const fd = openSync(path, "w")
  const chunk = Buffer.alloc(4096)
  let written = 0
  try {
    for (;;) written += writeSync(fd, chunk)
  } catch (e) {
    if ((e as { code?: string }).code !== "ENOSPC") throw e
  } finally {
    closeSync(fd)
  }
  return written
}

const integrity = (dbPath: string): string => {
  const db = new Database(dbPath, { readonly: true })
  try {
    return db.pragma("integrity_check", { simple: true }) as string
  } finally {
    db.close()
  }
}

describe.skipIf(!canMount)("disk faults on SQLite", () => {
  const queues: Array<JobQueue> = []
  afterEach(async () => {
    await Promise.all(queues.splice(0).map((q) => q.close({ graceMs: 1_000 }).catch(() => undefined)))
    for (const dir of mounts.splice(0).reverse()) execFileSync("umount", ["-l", dir])
  })

  it("disk full: add rejects with a retryable 'disk is full' error, in-flight work waits, nothing is lost, and it resumes when space returns", async () => {
    const dir = mountTmpfs("3m")
    const dbPath = join(dir, "jobs.db")
    const log = `sqlite:${dbPath}`
    const name = uniqueQueue("full")
    const q = new JobQueue(name, { log, concurrency: 4 })
    queues.push(q)
    const stalled: Array<string> = []
    q.on("stalled", (job: Job) => stalled.push(job.id))
    const errors: Array<Error> = []
    q.on("error", (e: Error) => errors.push(e))
    const gate = deferred()
    const completed: Array<string> = []
    q.on("completed", (job: Job) => completed.push(job.id))
    q.process("work", async (job) => {
      if (job.data.gated === true) await gate.promise
      return { i: job.data.i }
    })

    // some history first: 50 jobs done
    const before = await q.addBulk(Array.from({ length: 50 }, (_, i) => ({ name: "work", data: { i } })))
    await until(async () => (await q.stats()).completed === 50, "the first 50 jobs")
    // four jobs running (held at the gate) when the disk fills up
    const inFlight = await q.addBulk(Array.from({ length: 4 }, (_, i) => ({ name: "work", data: { i: 100 + i, gated: true } })))
    await until(async () => (await q.stats()).active === 4, "four gated jobs running")

    const filler = join(dir, "filler")
    fillDisk(filler)
    // the WAL may still have room for a few commits: add until the disk says no
    const accepted: Array<Job> = []
    let refusal: unknown
    for (let i = 0; i < 2_000 && refusal === undefined; i++) {
      try {
        accepted.push(await q.add("work", { i: 1_000 + i, pad: "x".repeat(2_000) }))
      } catch (e) {
        refusal = e
      }
    }
    expect(refusal, "an add must fail once the disk is full").toBeInstanceOf(QueueLogError)
    expect((refusal as QueueLogError).message).toMatch(/disk is full/)
    expect((refusal as QueueLogError).retryable).toBe(true)
    // the same once more: still a clean rejection, not a crash
    await expect(q.add("work", { i: -1 })).rejects.toThrow(/disk is full/)

    // the gated handlers finish while the disk is full: their JobCompleted cannot be written yet
    gate.resolve()
    await until(() => errors.some((e) => /disk is full/.test(e.message)), "the engine to report the full disk")
    const stuck = await q.stats()
    expect(stuck.completed).toBeLessThan(50 + 4 + accepted.length)
    // stay full across two lease renewals (every 2 s): a failed renewal is not a takeover
    await sleep(4_500)
    expect((await q.stats()).completed).toBe(stuck.completed)

    // space returns: everything accepted completes, exactly once, and the log verifies
    rmSync(filler)
    const total = before.length + inFlight.length + accepted.length
    await until(async () => (await q.stats()).completed === total, `all ${total} accepted jobs to complete after space returned`, 30_000)
    const after = await q.add("work", { i: 9_999 })
    await until(async () => (await q.store.get(after.id))?.state === "completed", "a job added after recovery")
    const replayed = await replayQueue(log, name, { verify: true })
    expect(replayed.verify?.ok, JSON.stringify(replayed.verify?.issues.slice(0, 5))).toBe(true)
    expect(replayed.undecodable).toEqual([])
    expect(replayed.stats).toEqual({ waiting: 0, active: 0, completed: total + 1, failed: 0, delayed: 0, paused: 0 })
    for (const job of [...before, ...inFlight, ...accepted, after]) {
      expect(replayed.projection.get(job.id)?.state, job.id).toBe("completed")
    }
    // every JobCompleted once: the completed events seen equal the jobs
    expect(new Set(completed).size).toBe(completed.length)
    // the engine kept its jobs through the outage: nothing was handed back and re-run
    expect(stalled).toEqual([])
    expect(integrity(dbPath)).toBe("ok")
    console.log(
      `[disk-full] ${accepted.length} adds accepted on the full disk before the first refusal; ` +
        `${errors.filter((e) => /disk is full/.test(e.message)).length} engine append retries reported; ${total + 1} jobs completed once`
    )
  }, 60_000)

  it("read-only filesystem: opening a queue there rejects add and stats with a clear non-retryable error; the file is untouched", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jobledger-rw-"))
    const dbPath = join(dir, "jobs.db")
    const name = uniqueQueue("ro")
    const first = new JobQueue(name, { log: `sqlite:${dbPath}` })
    first.process("work", async (job) => job.data.i)
    await first.addBulk(Array.from({ length: 20 }, (_, i) => ({ name: "work", data: { i } })))
    await until(async () => (await first.stats()).completed === 20, "20 jobs on the writable file")
    await first.close()
    const original = await replayQueue(`sqlite:${dbPath}`, name, { verify: true })

    const roDir = bindReadOnly(dir)
    const q = new JobQueue(name, { log: `sqlite:${join(roDir, "jobs.db")}` })
    queues.push(q)
    const errors: Array<Error> = []
    q.on("error", (e: Error) => errors.push(e))
    q.process("work", async () => "never")
    const refused = await q.add("work", { i: 99 }).then(
      () => undefined,
      (e: unknown) => e
    )
    expect(refused).toBeInstanceOf(QueueLogError)
    expect((refused as QueueLogError).message).toMatch(/not writable \(read-only filesystem\)|read-only/)
    expect((refused as QueueLogError).message).toContain(roDir)
    expect((refused as QueueLogError).retryable).toBe(false)
    await expect(q.stats()).rejects.toBeInstanceOf(QueueLogError)
    await until(() => errors.length > 0, "the queue to report the failure as an 'error' event")
    await q.close()

    // the original file: same events, still verifies
    const again = await replayQueue(`sqlite:${dbPath}`, name, { verify: true })
    expect(again.events).toBe(original.events)
    expect(again.stats).toEqual(original.stats)
    expect(again.verify?.ok).toBe(true)
    expect(integrity(dbPath)).toBe("ok")
  }, 60_000)
})
