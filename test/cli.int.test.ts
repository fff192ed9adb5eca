/**
 * The `jobledger` command end to end: the real bin (`node bin/jobledger.mjs …`, running the
 * compiled CLI in dist/) in child processes — an engine in one, producers and readers in
 * others — on a SQLite file, and on Kafka when KAFKA_BROKERS is set. Every child runs from a
 * temporary working directory, so the bin is shown to work from any cwd.
 *
 * One engine process serves the suite's queues (one queue per test) and is stopped with
 * SIGINT at the end; the SIGTERM test starts its own. Waits use `stats --watch --json` (one
 * process, a line per interval) rather than sleeps.
 */
import Database from "better-sqlite3"
import kafkajs from "kafkajs"
import { type ChildProcess, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { kafkaBrokers, uniqueQueue, until } from "./support/backends.ts"
import { sleep } from "./fixtures/helpers.ts"
import { runToEnd } from "./support/children.ts"
import { assertBuilt } from "./support/dist.ts"

const ROOT = fileURLToPath(new URL("..", import.meta.url))
const BIN = join(ROOT, "bin", "jobledger.mjs")
const HANDLERS = join(ROOT, "test", "fixtures", "cli-handlers.ts")
/** Engine children load their TypeScript handlers through tsx: generous bounds for a loaded CI machine. */
const RUN_TIMEOUT_MS = 90_000
const TEST_TIMEOUT_MS = 240_000
const CWD = mkdtempSync(join(tmpdir(), "jobledger-cli-cwd-"))

beforeAll(assertBuilt)

interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

/** The environment of a child: no inherited log choice, so every run says which log it uses. */
const childEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra }
  delete env.JOBLEDGER_LOG
  delete env.JOBLEDGER_DEBUG
  return env
}

/** Runs `jobledger args…` to completion (killed after `timeoutMs`). */
const cli = (args: ReadonlyArray<string>, options: { input?: string; timeoutMs?: number } = {}): Promise<Run> =>
  runToEnd(process.execPath, [BIN, ...args], { cwd: CWD, env: childEnv(), timeoutMs: options.timeoutMs ?? RUN_TIMEOUT_MS, ...(options.input === undefined ? {} : { input: options.input }) })

/** Runs each command line, two at a time: CI has 2 cores. */
const cliInPairs = async (runs: ReadonlyArray<{ args: ReadonlyArray<string>; input?: string }>): Promise<Array<Run>> => {
  const done: Array<Run> = []
  for (let i = 0; i < runs.length; i += 2)
    done.push(...(await Promise.all(runs.slice(i, i + 2).map(({ args, input }) => cli(args, input === undefined ? {} : { input })))))
  return done
}

const lastLine = (text: string) => text.trim().split("\n").at(-1) ?? ""
const json = <T = any>(run: Run): T => JSON.parse(run.stdout) as T

/** A usage or failure message: exactly the expected lines, and never a stack trace. */
const expectCleanError = (run: Run, code: 1 | 2, pattern: RegExp) => {
  expect(run.code, `stderr: ${run.stderr}`).toBe(code)
  const lines = run.stderr.trim().split("\n")
  expect(lines[0]).toMatch(/^jobledger: /)
  expect(lines[0]).toMatch(pattern)
  expect(lines).toHaveLength(code === 2 ? 2 : 1)
  if (code === 2) expect(lines[1]).toMatch(/^Try 'jobledger .*--help'\.$/)
  expect(run.stderr).not.toMatch(/^\s+at /m)
}

interface Stats {
  waiting: number
  active: number
  completed: number
  failed: number
  delayed: number
  paused: number
}

/**
 * Follows `stats <queue> --watch --json` until `predicate` holds, then stops it with SIGINT
 * (it must exit 0). Resolves with the stats that satisfied the predicate.
 */
const watchStats = (queue: string, log: string, predicate: (s: Stats) => boolean, what: string, timeoutMs = RUN_TIMEOUT_MS) =>
  new Promise<Stats>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, "stats", queue, "--watch", "--json", "--interval", "100", "--log", log], {
      cwd: CWD,
      env: childEnv(),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let buffer = ""
    let stderr = ""
    let last: Stats | undefined
    let matched: Stats | undefined
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`timed out waiting for ${what}; last stats ${JSON.stringify(last)}; stderr: ${stderr}`))
    }, timeoutMs)
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    child.stdout.on("data", (d: Buffer) => {
      buffer += d.toString()
      let nl: number
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        last = JSON.parse(line) as Stats
        if (matched === undefined && predicate(last)) {
          matched = last
          child.kill("SIGINT")
        }
      }
    })
    child.on("error", reject)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      if (matched === undefined) return reject(new Error(`stats --watch exited (${code ?? signal}) before ${what}; stderr: ${stderr}`))
      if (code !== 0) return reject(new Error(`stats --watch exited ${code ?? signal} on SIGINT; stderr: ${stderr}`))
      resolve(matched)
    })
  })

/** `jobledger engine` in a child process, ready once it printed a ready line per queue. */
class Engine {
  stderr = ""
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>

  private constructor(readonly child: ChildProcess) {
    child.stderr!.on("data", (d: Buffer) => (this.stderr += d.toString()))
    this.exited = new Promise((resolve) => child.on("close", (code, signal) => resolve({ code, signal })))
  }

  static async start(queues: ReadonlyArray<string>, log: string, handlers = HANDLERS, cwd = CWD): Promise<Engine> {
    const child = spawn(process.execPath, [BIN, "engine", "--handlers", handlers, "--grace", "20000", "--log", log], {
      cwd,
      env: childEnv({ CLI_TEST_QUEUES: queues.join(",") }),
      stdio: ["ignore", "pipe", "pipe"]
    })
    const engine = new Engine(child)
    const deadline = Date.now() + RUN_TIMEOUT_MS
    const ready = () => queues.every((q) => engine.stderr.includes(`engine ready: queue=${q} log=`))
    let exited = false
    void engine.exited.then(() => (exited = true))
    while (!ready()) {
      if (exited || Date.now() > deadline) {
        child.kill("SIGKILL")
        throw new Error(`engine not ready (exited: ${exited}); stderr: ${engine.stderr}`)
      }
      await new Promise((r) => setTimeout(r, 50))
    }
    return engine
  }

  async stop(signal: NodeJS.Signals = "SIGTERM") {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal)
    return this.exited
  }
}

// ---------------------------------------------------------------- backends

interface CliBackend {
  readonly name: "sqlite" | "kafka"
  /** The suite's log. */
  readonly log: () => string
  /**
   * Appends one raw record to a topic partition behind jobledger's back (no engine, no
   * checks), as a corrupting writer would; resolves with its offset.
   */
  readonly appendRaw: (topic: string, partition: number, key: string, value: string) => Promise<number>
  /** The topics of `queue` that exist on the log. */
  readonly topicsOf: (queue: string) => Promise<Array<string>>
}

const sqliteFile = join(mkdtempSync(join(tmpdir(), "jobledger-cli-")), "jobs.db")

const sqliteAppend = async (topic: string, partition: number, key: string, value: string): Promise<number> => {
  const db = new Database(sqliteFile, { timeout: 10_000 })
  try {
    // BEGIN IMMEDIATE, as the log's own writes: a deferred transaction that reads and then
    // writes gets SQLITE_BUSY at once (no busy wait) when another connection wrote in between
    return db.transaction(() => {
      const { next } = db.prepare("SELECT COALESCE(MAX(offset) + 1, 0) AS next FROM records WHERE topic = ? AND partition = ?").get(topic, partition) as { next: number }
      db.prepare("INSERT INTO records (topic, partition, offset, key, value, ts) VALUES (?, ?, ?, ?, ?, ?)").run(topic, partition, next, key, value, Date.now())
      return next
    }).immediate()
  } finally {
    db.close()
  }
}

const sqliteTopics = async (queue: string): Promise<Array<string>> => {
  const db = new Database(sqliteFile, { readonly: true, timeout: 10_000 })
  try {
    return (db.prepare("SELECT name FROM topics WHERE name LIKE ?").all(`jobledger.${queue}.%`) as Array<{ name: string }>).map((r) => r.name)
  } finally {
    db.close()
  }
}

const kafka = () => new kafkajs.Kafka({ brokers: kafkaBrokers!.split(","), logLevel: kafkajs.logLevel.NOTHING })

const kafkaTopics = async (queue: string): Promise<Array<string>> => {
  const admin = kafka().admin()
  await admin.connect()
  try {
    return (await admin.listTopics()).filter((t) => t.startsWith(`jobledger.${queue}.`))
  } finally {
    await admin.disconnect()
  }
}

/** A plain (non-transactional) kafkajs producer: its record is visible to read_committed readers at once. */
const kafkaAppend = async (topic: string, partition: number, key: string, value: string): Promise<number> => {
  const producer = kafka().producer()
  await producer.connect()
  try {
    const [sent] = await producer.send({ topic, acks: -1, messages: [{ partition, key, value }] })
    return Number(sent!.baseOffset)
  } finally {
    await producer.disconnect()
  }
}

const cliBackends: ReadonlyArray<CliBackend> = [
  { name: "sqlite", log: () => `sqlite:${sqliteFile}`, appendRaw: sqliteAppend, topicsOf: sqliteTopics },
  ...(kafkaBrokers === undefined
    ? []
    : [{ name: "kafka" as const, log: () => `kafka://${kafkaBrokers}`, appendRaw: kafkaAppend, topicsOf: kafkaTopics }])
]

describe.each(cliBackends)("jobledger CLI on $name", (backend) => {
  const log = backend.log()
  const q = {
    e2e: uniqueQueue("cli-e2e"),
    bulk: uniqueQueue("cli-bulk"),
    pause: uniqueQueue("cli-pause"),
    retry: uniqueQueue("cli-retry"),
    replay: uniqueQueue("cli-replay")
  }
  let engine: Engine | undefined

  beforeAll(async () => {
    engine = await Engine.start(Object.values(q), log)
  }, TEST_TIMEOUT_MS)

  afterAll(async () => {
    if (engine === undefined) return // beforeAll failed and said why
    const exit = await engine.stop("SIGINT")
    expect(exit.code, engine.stderr).toBe(0)
    expect(engine.stderr).toMatch(/engine stopping \(SIGINT\)[\s\S]*engine stopped/)
  }, TEST_TIMEOUT_MS)

  it(
    "runs jobs added from another process; stats, jobs and job read them back",
    async () => {
      const dataFile = join(CWD, `${randomUUID()}.json`)
      writeFileSync(dataFile, JSON.stringify({ n: 2 }))
      const fixedId = `fixed-${randomUUID()}`
      const [plain, asJson] = await Promise.all([
        cli(["add", q.e2e, "echo", "--data", '{"n":1}', "--log", log]),
        cli(["add", q.e2e, "echo", "--data", `@${dataFile}`, "--job-id", fixedId, "--priority", "5", "--json", "--log", log])
      ])
      expect(plain.code, plain.stderr).toBe(0)
      const id = lastLine(plain.stdout)
      expect(id).toMatch(/^[0-9a-f-]{36}$/)
      expect(plain.stderr).toMatch(/added echo to queue/)
      expect(asJson.code, asJson.stderr).toBe(0)
      expect(json(asJson)).toMatchObject({ id: fixedId, name: "echo", data: { n: 2 }, priority: 5, state: "waiting" })

      await watchStats(q.e2e, log, (s) => s.completed === 2, "2 completed jobs")

      const [stats, completed, table, timeline, timelineJson, missing, again] = await Promise.all([
        cli(["stats", q.e2e, "--json", "--log", log]),
        cli(["jobs", q.e2e, "--state", "completed", "--json", "--log", log]),
        cli(["jobs", q.e2e, "--log", log]),
        cli(["job", q.e2e, id, "--log", log]),
        cli(["job", q.e2e, fixedId, "--json", "--log", log]),
        cli(["job", q.e2e, "no-such-job", "--log", log]),
        cli(["add", q.e2e, "echo", "--job-id", fixedId, "--json", "--log", log])
      ])
      expect(stats.code, stats.stderr).toBe(0)
      expect(json(stats)).toEqual({ waiting: 0, active: 0, completed: 2, failed: 0, delayed: 0, paused: 0 })

      expect(completed.code, completed.stderr).toBe(0)
      const jobs = json<Array<{ id: string; state: string; result: unknown }>>(completed)
      expect(jobs.map((j) => j.id).sort()).toEqual([id, fixedId].sort())
      expect(jobs.find((j) => j.id === id)).toMatchObject({ state: "completed", result: { echo: { n: 1 } } })

      expect(table.code, table.stderr).toBe(0)
      expect(table.stdout).toMatch(/^ID\s+NAME\s+STATE\s+ATTEMPTS\s+UPDATED/)
      expect(table.stdout).toContain(id)

      expect(timeline.code, timeline.stderr).toBe(0)
      expect(timeline.stdout).toMatch(/JobAdded\s+waiting[\s\S]*JobStarted\s+active[\s\S]*JobCompleted\s+completed/)
      expect(timeline.stdout).toMatch(/^(PARTITION\/)?OFFSET\s+TIME\s+EVENT\s+STATE\s+DETAILS/m)

      expect(timelineJson.code, timelineJson.stderr).toBe(0)
      const view = json<{ job: { id: string; state: string }; timeline: Array<{ type: string; state: string; offset: number }> }>(timelineJson)
      expect(view.job).toMatchObject({ id: fixedId, state: "completed" })
      expect(view.timeline.map((e) => [e.type, e.state])).toEqual([
        ["JobAdded", "waiting"],
        ["JobStarted", "active"],
        ["JobCompleted", "completed"]
      ])

      expectCleanError(missing, 1, /job 'no-such-job' not found/)

      // idempotent add: the same --job-id adds nothing. On SQLite the id is looked up in the
      // log (an index) and the existing (completed) job comes back; on Kafka, which has no
      // lookup, the job comes back as asked and the engine keeps the existing one
      expect(again.code, again.stderr).toBe(0)
      expect(json(again)).toMatchObject({ id: fixedId, state: backend.name === "kafka" ? "waiting" : "completed" })
      if (backend.name === "kafka") {
        await sleep(1_000) // give the engine time to see the duplicate command
        const after = await cli(["job", q.e2e, fixedId, "--json", "--log", log])
        const timelineAfter = json<{ timeline: Array<{ type: string }> }>(after).timeline.map((e) => e.type)
        expect(timelineAfter).toEqual(["JobAdded", "JobStarted", "JobCompleted"])
      }
    },
    TEST_TIMEOUT_MS
  )

  it(
    "add-bulk adds every line of an NDJSON file, and nothing when a line is bad",
    async () => {
      const bad = join(CWD, `${randomUUID()}.ndjson`)
      writeFileSync(bad, ['{"name":"echo","data":1}', "{not json", '{"name":"echo","data":3}'].join("\n"))
      const badOpts = join(CWD, `${randomUUID()}.ndjson`)
      writeFileSync(badOpts, ['{"name":"echo","data":1}', "", '{"name":"echo","data":2,"opts":{"delay":-1}}'].join("\n"))
      const good = join(CWD, `${randomUUID()}.ndjson`)
      writeFileSync(good, ['{"name":"echo","data":{"i":1}}', "", '{"name":"echo","data":{"i":2},"opts":{"priority":3}}', '{"name":"echo","data":{"i":3}}', ""].join("\n"))

      const [badRun, badOptsRun] = await Promise.all([
        cli(["add-bulk", q.bulk, bad, "--log", log]),
        cli(["add-bulk", q.bulk, badOpts, "--log", log])
      ])
      expectCleanError(badRun, 2, /line 2: not valid JSON/)
      expectCleanError(badOptsRun, 2, /line 3: delay must be/)

      const [added, fromStdin] = await Promise.all([
        cli(["add-bulk", q.bulk, good, "--log", log]),
        cli(["add-bulk", q.bulk, "-", "--json", "--log", log], { input: '{"name":"echo","data":"a"}\n{"name":"echo","opts":{"jobId":"bulk-b"}}\n' })
      ])
      expect(added.code, added.stderr).toBe(0)
      expect(added.stdout.trim().split("\n")).toHaveLength(3)
      expect(added.stderr).toMatch(/added 3 jobs/)
      expect(fromStdin.code, fromStdin.stderr).toBe(0)
      expect(json<Array<{ id: string; data: unknown }>>(fromStdin)).toEqual([
        expect.objectContaining({ data: "a" }),
        expect.objectContaining({ id: "bulk-b", data: null })
      ])

      // exactly the good jobs: the bad files added nothing
      const stats = await watchStats(q.bulk, log, (s) => s.completed === 5, "5 completed jobs")
      expect(stats).toEqual({ waiting: 0, active: 0, completed: 5, failed: 0, delayed: 0, paused: 0 })
    },
    TEST_TIMEOUT_MS
  )

  it(
    "pause holds new jobs, resume releases them",
    async () => {
      const paused = await cli(["pause", q.pause, "--log", log])
      expect(paused.code, paused.stderr).toBe(0)
      expect(paused.stdout).toMatch(/paused/)
      const added = await cli(["add", q.pause, "echo", "--log", log])
      expect(added.code, added.stderr).toBe(0)
      await watchStats(q.pause, log, (s) => s.paused === 1 && s.waiting === 0, "the job to be paused")

      const resumed = await cli(["resume", q.pause, "--json", "--log", log])
      expect(resumed.code, resumed.stderr).toBe(0)
      expect(json(resumed)).toEqual({ queue: q.pause, paused: false })
      await watchStats(q.pause, log, (s) => s.completed === 1 && s.paused === 0, "the job to complete after resume")

      // the job's timeline shows the resume that released it (a queue event, on its partition)
      const timeline = await cli(["job", q.pause, lastLine(added.stdout), "--json", "--log", log])
      expect(timeline.code, timeline.stderr).toBe(0)
      expect(json<{ timeline: Array<{ type: string; state: string }> }>(timeline).timeline.map((e) => [e.type, e.state])).toEqual([
        ["JobAdded", "paused"],
        ["QueueResumed", "waiting"],
        ["JobStarted", "active"],
        ["JobCompleted", "completed"]
      ])
    },
    TEST_TIMEOUT_MS
  )

  it(
    "retry runs a failed job again; retrying an unknown or completed job fails with exit 1",
    async () => {
      const [flaky, fine] = await Promise.all([
        cli(["add", q.retry, "fail-once", "--log", log]),
        cli(["add", q.retry, "echo", "--log", log])
      ])
      expect(flaky.code, flaky.stderr).toBe(0)
      expect(fine.code, fine.stderr).toBe(0)
      const id = lastLine(flaky.stdout)
      await watchStats(q.retry, log, (s) => s.failed === 1 && s.completed === 1, "one failed and one completed job")

      const [retried, unknown, notFailed] = await Promise.all([
        cli(["retry", q.retry, id, "--log", log]),
        cli(["retry", q.retry, "no-such-job", "--log", log]),
        cli(["retry", q.retry, lastLine(fine.stdout), "--log", log])
      ])
      expect(retried.code, retried.stderr).toBe(0)
      expectCleanError(unknown, 1, /not found/)
      expectCleanError(notFailed, 1, /only failed jobs can be retried/)

      await watchStats(q.retry, log, (s) => s.completed === 2 && s.failed === 0, "the retried job to complete")
      const timeline = await cli(["job", q.retry, id, "--json", "--log", log])
      expect(json<{ timeline: Array<{ type: string }> }>(timeline).timeline.map((e) => e.type)).toEqual([
        "JobAdded",
        "JobStarted",
        "JobFailed",
        "JobRetried",
        "JobStarted",
        "JobCompleted"
      ])
    },
    TEST_TIMEOUT_MS
  )

  it(
    "replay rebuilds earlier states with --until and audits the log with --verify",
    async () => {
      const before = new Date(Date.now() - 60_000).toISOString()
      const added = await cli(["add", q.replay, "echo", "--data", '"x"', "--log", log])
      expect(added.code, added.stderr).toBe(0)
      const id = lastLine(added.stdout)
      await watchStats(q.replay, log, (s) => s.completed === 1, "the job to complete")
      // the offsets of the job's events (consecutive on SQLite; Kafka's transaction markers take offsets too)
      const full = await cli(["replay", q.replay, "--job", id, "--json", "--log", log])
      expect(full.code, full.stderr).toBe(0)
      const history = json<{ partition: number; timeline: Array<{ offset: number; seq: number }> }>(full)
      const [added0, started1] = history.timeline.map((e) => String(e.offset))

      const [clean, atAdd, atStart, atTime, oneJob, now] = await Promise.all([
        cli(["replay", q.replay, "--verify", "--log", log]),
        cli(["replay", q.replay, "--until", added0!, "--json", "--log", log]),
        cli(["replay", q.replay, "--until", started1!, "--json", "--log", log]),
        cli(["replay", q.replay, "--until", before, "--json", "--log", log]),
        cli(["replay", q.replay, "--job", id, "--until", started1!, "--json", "--log", log]),
        cli(["replay", q.replay, "--json", "--log", log])
      ])
      expect(clean.code, clean.stderr).toBe(0)
      expect(clean.stdout).toMatch(/verify: OK/)
      expect(clean.stderr).toBe("") // stderr is no terminal: no progress bar
      expect(json(atAdd).stats).toMatchObject({ waiting: 1, active: 0, completed: 0 })
      expect(json(atStart).stats).toMatchObject({ waiting: 0, active: 1, completed: 0 })
      expect(json(atTime)).toMatchObject({ events: 0, stats: { waiting: 0, completed: 0 } })
      expect(json(oneJob).timeline.map((e: { type: string }) => e.type)).toEqual(["JobAdded", "JobStarted"])
      expect(json(now).stats).toMatchObject({ completed: 1 })

      // an illegal event: a second JobCompleted for the completed job, with the next seq,
      // appended raw to the job's partition
      const seq = Math.max(...history.timeline.map((e) => e.seq)) + 1
      const envelope = { v: 1, queue: q.replay, jobId: id, time: Date.now(), seq, body: { _tag: "JobCompleted", result: null } }
      const { partition } = history
      const offset = await backend.appendRaw(`jobledger.${q.replay}.events`, partition, id, JSON.stringify(envelope))

      const [broken, brokenJson] = await Promise.all([
        cli(["replay", q.replay, "--verify", "--log", log]),
        cli(["replay", q.replay, "--verify", "--json", "--log", log])
      ])
      expect(broken.code, broken.stderr).toBe(1)
      const partitions = json(brokenJson).partitions as number
      expect(partitions).toBe(backend.name === "sqlite" ? 1 : 3)
      const at = partitions > 1 ? `${partition}/${offset}` : `${offset}`
      expect(broken.stdout).toMatch(/verify: 1 problem in /)
      expect(broken.stdout).toMatch(new RegExp(`^\\s*${at}\\s+${id}\\s+illegal\\s+.*JobCompleted`, "m"))
      expectCleanError(broken, 1, new RegExp(`first at ${partitions > 1 ? `partition ${partition} ` : ""}offset ${offset}\\)$`))
      expect(brokenJson.code).toBe(1)
      expect(json(brokenJson).verify.issues).toEqual([
        expect.objectContaining({ offset, jobId: id, kind: "illegal", ...(partitions > 1 ? { partition } : {}) })
      ])
    },
    TEST_TIMEOUT_MS
  )

  it(
    "reading a queue that does not exist fails with exit 1 and creates nothing",
    async () => {
      const unknown = uniqueQueue("cli-unknown")
      const commands = [
        ["replay", unknown],
        ["replay", unknown, "--verify", "--json"],
        ["replay", unknown, "--job", "some-id"],
        ["stats", unknown, "--json"],
        ["jobs", unknown],
        ["job", unknown, "some-id"]
      ]
      const runs = await cliInPairs(commands.map((c) => ({ args: [...c, "--log", log] })))
      for (const run of runs) {
        expectCleanError(run, 1, new RegExp(`no such queue '${unknown}' on ${log.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`))
        expect(run.stdout).toBe("")
      }
      expect(await backend.topicsOf(unknown)).toEqual([])
    },
    TEST_TIMEOUT_MS
  )

  it(
    "on SIGTERM the engine finishes its active job, then exits 0",
    async () => {
      const queue = uniqueQueue("cli-term")
      const gate = join(CWD, `gate-${randomUUID()}`)
      const own = await Engine.start([queue], log)
      try {
        const added = await cli(["add", queue, "gate", "--data", JSON.stringify({ file: gate }), "--log", log])
        expect(added.code, added.stderr).toBe(0)
        await watchStats(queue, log, (s) => s.active === 1, "the gated job to start")
        own.child.kill("SIGTERM")
        // the engine is shutting down with the job still running; only then may the job finish
        await until(() => own.stderr.includes("engine stopping (SIGTERM)"), "the engine to begin its shutdown", RUN_TIMEOUT_MS)
        expect(own.child.exitCode).toBeNull()
        writeFileSync(gate, "open")
        const exit = await own.exited
        expect(exit.code, own.stderr).toBe(0)
        expect(own.stderr).toMatch(/engine stopped/)
        const stats = await cli(["stats", queue, "--json", "--log", log])
        expect(json(stats)).toEqual({ waiting: 0, active: 0, completed: 1, failed: 0, delayed: 0, paused: 0 })
      } finally {
        own.child.kill("SIGKILL")
      }
    },
    TEST_TIMEOUT_MS
  )
})

describe("jobledger CLI usage", () => {
  const log = `sqlite:${join(mkdtempSync(join(tmpdir(), "jobledger-cli-usage-")), "jobs.db")}`
  const commands = ["engine", "add", "add-bulk", "stats", "jobs", "job", "retry", "pause", "resume", "replay"]

  it(
    "prints help for the tool and for every command",
    async () => {
      const [main, ...each] = await Promise.all([cli(["--help"]), ...commands.map((c) => cli([c, "--help"]))])
      expect(main.code).toBe(0)
      for (const c of commands) expect(main.stdout).toMatch(new RegExp(`^  ${c}\\s+\\S`, "m"))
      expect(main.stdout).toContain("sqlite:./.jobledger/jobs.db")
      each.forEach((run, i) => {
        expect(run.code, run.stderr).toBe(0)
        expect(run.stdout).toMatch(new RegExp(`^Usage: jobledger ${commands[i]} `))
        expect(run.stdout).toContain("--log <url>")
      })
    },
    TEST_TIMEOUT_MS
  )

  it(
    "bad usage exits 2 with one line and a pointer to --help, never a stack trace",
    async () => {
      const cases: Array<[Array<string>, RegExp, string?]> = [
        [["frobnicate"], /unknown command 'frobnicate'/],
        [["stat", "q"], /unknown command 'stat' \(did you mean 'stats'\?\)/],
        [[], /missing command/],
        [["stats", "q", "--frob", "--log", log], /unknown option '--frob'/],
        [["add", "q", "echo", "--data", "{nope", "--log", log], /--data is not valid JSON/],
        [["add", "q", "--log", log], /missing <name>/],
        [["add", "q", "echo", "--priority", "high", "--log", log], /--priority must be a number/],
        [["jobs", "q", "--limit", "-1", "--log", log], /--limit/],
        [["jobs", "q", "--state", "done", "--log", log], /--state must be one of/],
        [["replay", "q", "--until", "yesterday", "--log", log], /--until must be/],
        [["engine", "--log", log], /missing --handlers/],
        [["engine", "--handlers", "./no/such/module.ts", "--log", log], /no module at/],
        [["engine", "--handlers", join(ROOT, "examples", "handlers.ts"), "--queue", "not-there", "--log", log], /--queue not-there: the handlers module has no such queue \(it has: email, images\)/],
        [["stats", "q", "--log", "ftp://nope"], /--log: unknown log/],
        [["add", "bad queue name!", "echo", "--log", log], /queue name/],
        [["add", "q", "echo", "--data", "@/no/such/file.json", "--log", log], /--data @\/no\/such\/file\.json: cannot read the file \(ENOENT\)/],
        [["add", "q", "echo", "--data", "", "--log", log], /--data must not be empty/],
        [["add", "q", "echo", "--delay", "-5", "--log", log], /--delay needs a value \(for a value that starts with '-', write --delay=<value>\)/],
        [["add", "q", "echo", "--delay=-5", "--log", log], /--delay must be a number ≥ 0 \(got '-5'\)/],
        [["add-bulk", "q", "/no/such/jobs.ndjson", "--log", log], /cannot read '\/no\/such\/jobs\.ndjson' \(ENOENT\)/],
        [["add-bulk", "q", "-", "--log", log], /stdin line 1: unknown field 'nam'/, '{"nam":"echo"}\n'],
        [["jobs", "q", "--limit", "1.5", "--log", log], /--limit must be a whole number ≥ 0/],
        [["stats", "q", "extra", "--log", log], /unexpected argument 'extra'/],
        [["replay", "q", "--until", "--log", log], /--until needs a value/],
        [["engine", "--handlers", join(ROOT, "examples", "handlers.ts"), "--json", "--log", log], /unknown option '--json'/],
        [["pause", "--log", log], /pause: missing <queue>/]
      ]
      const runs = await cliInPairs(cases.map(([args, , input]) => (input === undefined ? { args } : { args, input })))
      runs.forEach((run, i) => expectCleanError(run, 2, cases[i]![1]))
    },
    TEST_TIMEOUT_MS
  )

  it(
    "an unreachable Kafka broker fails with exit 1 and one clear line, within the connect timeout",
    async () => {
      const unreachable = "kafka://127.0.0.1:1"
      const runs = await Promise.all([
        cli(["stats", "q", "--log", unreachable], { timeoutMs: 60_000 }),
        cli(["add", "q", "echo", "--log", unreachable], { timeoutMs: 60_000 }),
        cli(["replay", "q", "--verify", "--log", unreachable], { timeoutMs: 60_000 }),
        cli(["engine", "--handlers", join(ROOT, "examples", "handlers.ts"), "--log", unreachable], { timeoutMs: 60_000 })
      ])
      for (const run of runs) {
        // kafkajs gives up (connection refused) or the CLI's connect timeout fires, whichever is first
        expectCleanError(run, 1, /^jobledger: (kafka:\/\/127\.0\.0\.1:1: connecting failed: .*are the brokers reachable\?|could not open the log kafka:\/\/127\.0\.0\.1:1 within 10 s)/)
        expect(run.ms).toBeLessThan(30_000) // 10 s connect timeout + a slow start under load
      }
    },
    TEST_TIMEOUT_MS
  )

  it(
    "a TypeScript handlers module in a CommonJS project (no \"type\": \"module\") runs",
    async () => {
      const project = mkdtempSync(join(tmpdir(), "jobledger-cli-cjs-"))
      writeFileSync(join(project, "package.json"), JSON.stringify({ name: "app", type: "commonjs" }))
      writeFileSync(
        join(project, "handlers.ts"),
        [
          'import type { Job } from "jobledger"',
          "export default { [process.env.CLI_TEST_QUEUES!]: { hello: async (job: Job<string>) => `hello ${job.data}` } }",
          "export const options = { [process.env.CLI_TEST_QUEUES!]: { concurrency: 2 } }"
        ].join("\n")
      )
      const queue = uniqueQueue("cli-cjs")
      const own = await Engine.start([queue], log, "./handlers.ts", project)
      try {
        const added = await cli(["add", queue, "hello", "--data", '"ada"', "--log", log])
        expect(added.code, added.stderr).toBe(0)
        await watchStats(queue, log, (s) => s.completed === 1, "the job to complete")
        const job = await cli(["job", queue, lastLine(added.stdout), "--json", "--log", log])
        expect(json(job).job).toMatchObject({ state: "completed", result: "hello ada" })
        expect(await own.stop("SIGINT")).toMatchObject({ code: 0 })
      } finally {
        own.child.kill("SIGKILL")
      }
    },
    TEST_TIMEOUT_MS
  )

  it(
    "read-only commands refuse a SQLite log that does not exist instead of creating it",
    async () => {
      const missing = `sqlite:${join(CWD, randomUUID(), "jobs.db")}`
      const runs = await Promise.all([cli(["stats", "q", "--log", missing]), cli(["replay", "q", "--log", missing])])
      for (const run of runs) expectCleanError(run, 1, /no log at/)
    },
    TEST_TIMEOUT_MS
  )
})
