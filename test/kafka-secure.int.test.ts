/**
 * jobledger against a Kafka broker secured the way managed clusters are: a SASL_SSL client
 * listener with its own CA (SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN for one user) and an SSL
 * listener that requires a client certificate (scripts/kafka-broker.mjs startSecureBroker).
 *
 * - The seed API's core (add/process/complete, retry with backoff, pause/resume, stats,
 *   store.get, events) works over SASL_SSL, with the credentials in the `kafka` option and
 *   from JOBLEDGER_KAFKA_USERNAME / JOBLEDGER_KAFKA_PASSWORD; a client certificate works.
 * - So does the CLI: `engine` (--kafka-config), `add`, `stats`, `job`.
 * - A wrong password, a wrong CA, no client certificate, no credentials, plaintext to a TLS
 *   listener: each fails within seconds, non-retryable where retrying cannot help, with a
 *   message that says what to fix.
 * - The broker's password appears in no output: every error message, `error` event (with its
 *   cause chain, as util.inspect prints it) and CLI stdout/stderr of this file is kept and
 *   searched for it at the end.
 *
 *   npx vitest run test/kafka-secure.int.test.ts   (starts its own secured broker: needs Java + keytool)
 */
import { type ChildProcess, spawn } from "node:child_process"
import { generateKeyPairSync } from "node:crypto"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { inspect } from "node:util"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { InvalidOptionError, type Job, JobQueue, type KafkaOptions, type QueueOptions, QueueLogError } from "../src/index.ts"
import { uniqueQueue, until } from "./support/backends.ts"
import { runToEnd } from "./support/children.ts"
import { acquireSecureBroker, type SecureBroker, secureSkipReason } from "./support/secure-kafka.ts"

const ROOT = fileURLToPath(new URL("..", import.meta.url))
const BIN = join(ROOT, "bin", "jobledger.mjs")
const HANDLERS = join(ROOT, "test", "fixtures", "cli-handlers.ts")
const WORK = mkdtempSync(join(tmpdir(), "jobledger-secure-"))
/** A failure that cannot be fixed by waiting must come well before kafkajs's ~5 s of retries and our 20 s ones. */
const FAST_FAILURE_MS = 5_000
const CLI_TIMEOUT_MS = 90_000

/** Everything this file saw jobledger say: searched for the password by the last test. */
const captured: Array<{ readonly where: string; readonly text: string }> = []
const capture = (where: string, value: unknown) =>
  captured.push({ where, text: typeof value === "string" ? value : `${String(value)}\n${inspect(value, { depth: 12 })}` })

const describeSecure = secureSkipReason === undefined ? describe : describe.skip

describeSecure(`Kafka over SASL_SSL and mTLS (a real secured broker)${secureSkipReason === undefined ? "" : ` — ${secureSkipReason}`}`, () => {
  let broker: SecureBroker
  let release: () => Promise<void> = async () => {}
  const queues: Array<JobQueue> = []

  beforeAll(async () => {
    const acquired = await acquireSecureBroker()
    broker = acquired.broker
    release = acquired.release
    if (acquired.startedMs > 0) process.stderr.write(`[secure kafka] private broker ready in ${(acquired.startedMs / 1000).toFixed(1)} s\n`)
  }, 240_000)
  afterEach(async () => {
    await Promise.all(queues.splice(0).map((q) => q.close({ graceMs: 2_000 }).catch(() => undefined)))
  })
  afterAll(async () => {
    await release()
  }, 60_000)

  const secureLog = (mechanism = "scram-sha-512", extra = "") => `kafkas://${broker.bootstrap}?sasl=${mechanism}&ca=${broker.caFile}${extra}`
  const credentials = (): KafkaOptions => ({ sasl: { username: broker.username, password: broker.password } })

  /** A queue whose every `error` event is captured; closed after the test. */
  const open = <Data = any>(options: QueueOptions<Data>, name = uniqueQueue("sec")): JobQueue<Data> => {
    const queue = new JobQueue<Data>(name, options)
    queue.on("error", (e) => capture(`error event of ${name}`, e))
    queues.push(queue as JobQueue)
    return queue
  }

  /** Runs `f`, expecting a rejection; captures it and says how long it took. */
  const rejection = async (f: () => Promise<unknown>): Promise<{ error: Error; ms: number }> => {
    const t0 = Date.now()
    try {
      await f()
    } catch (e) {
      capture("rejection", e)
      return { error: e as Error, ms: Date.now() - t0 }
    }
    throw new Error("expected a rejection")
  }

  describe("the seed API over SASL_SSL", () => {
    it("add → process → completed, with events, store.get/list and stats (SCRAM-SHA-512, credentials in the kafka option)", async () => {
      const q = open({ log: secureLog("scram-sha-512"), kafka: credentials() })
      const seen: Array<string> = []
      q.on("added", (job: Job) => seen.push(`added ${job.data.n}`))
      q.on("active", (job: Job) => seen.push(`active ${job.data.n}`))
      q.on("completed", (job: Job, result) => seen.push(`completed ${job.data.n} ${JSON.stringify(result)}`))
      q.process("send", async (job) => ({ sent: job.data.n }))
      const job = await q.add("send", { n: 1 }, { priority: 2 })
      expect(job.state).toBe("waiting")
      await until(() => seen.includes(`completed 1 {"sent":1}`), "job 1 completed over SASL_SSL", 30_000)
      expect(seen.slice(0, 3)).toEqual(["added 1", "active 1", `completed 1 {"sent":1}`])
      const stored = await q.store.get(job.id)
      expect(stored).toMatchObject({ id: job.id, name: "send", state: "completed", result: { sent: 1 }, priority: 2, attemptsMade: 0 })
      expect((await q.store.list("completed")).map((j) => j.id)).toEqual([job.id])
      expect(await q.stats()).toEqual({ waiting: 0, active: 0, completed: 1, failed: 0, delayed: 0, paused: 0 })
    }, 90_000)

    it("retry with exponential backoff, a job failing for good, and retry(jobId) with a fresh budget", async () => {
      const q = open({ log: secureLog("scram-sha-512"), kafka: credentials(), retry: { attempts: 2, backoff: "exponential", delay: 200 } })
      const runs = new Map<string, number>()
      q.process("flaky", async (job) => {
        const n = (runs.get(job.id) ?? 0) + 1
        runs.set(job.id, n)
        if (n <= 2) throw new Error(`flaky run ${n}`)
        return { run: n }
      })
      q.process("broken", async () => {
        throw new Error("always broken")
      })
      const retries: Array<[string, number, number]> = []
      const failed: Array<string> = []
      q.on("retrying", (job: Job, attempt: number, delay: number) => retries.push([job.name, attempt, delay]))
      q.on("failed", (job: Job, error: Error) => failed.push(`${job.name}: ${error.message}`))

      const flaky = await q.add("flaky", {})
      await until(async () => (await q.store.get(flaky.id))?.state === "completed", "flaky completed on its third run", 30_000)
      expect((await q.store.get(flaky.id))?.result).toEqual({ run: 3 })
      expect(retries.filter(([name]) => name === "flaky")).toEqual([
        ["flaky", 1, 200],
        ["flaky", 2, 400]
      ])

      const broken = await q.add("broken", {})
      await until(() => failed.length === 1, "broken failed for good", 30_000)
      expect(failed).toEqual(["broken: always broken"])
      expect(await q.store.get(broken.id)).toMatchObject({ state: "failed", attemptsMade: 2, error: { message: "always broken" } })

      await q.retry(broken.id)
      await until(() => failed.length === 2, "broken failed again after retry(jobId)", 30_000)
      // a fresh budget: two more retries, with the same delays
      expect(retries.filter(([name]) => name === "broken")).toEqual([
        ["broken", 1, 200],
        ["broken", 2, 400],
        ["broken", 1, 200],
        ["broken", 2, 400]
      ])
      expect(await q.stats()).toMatchObject({ completed: 1, failed: 1, waiting: 0, active: 0 })
    }, 120_000)

    it("pause/resume: nothing starts while paused, waiting jobs show as paused, resume runs them; paused/resumed events", async () => {
      const q = open({ log: secureLog("scram-sha-512"), kafka: credentials() })
      const events: Array<string> = []
      q.on("paused", () => events.push("paused"))
      q.on("resumed", () => events.push("resumed"))
      const started: Array<number> = []
      q.process("p", async (job) => {
        started.push(job.data.n)
        return job.data.n
      })
      await q.pause()
      await until(() => events.includes("paused"), "paused event", 30_000)
      const jobs = await q.addBulk([0, 5, 10].map((n) => ({ name: "p", data: { n }, opts: { priority: n } })))
      expect(jobs.map((j) => j.state)).toEqual(["paused", "paused", "paused"])
      expect(await q.stats()).toMatchObject({ paused: 3, waiting: 0, active: 0 })
      expect((await q.store.get(jobs[0]!.id))?.state).toBe("paused")
      expect(started).toEqual([])
      q.resume()
      await until(async () => (await q.stats()).completed === 3, "three jobs completed after resume", 30_000)
      expect(events).toEqual(["paused", "resumed"])
      expect(started).toEqual([10, 5, 0])
    }, 90_000)

    it("credentials from JOBLEDGER_KAFKA_USERNAME / JOBLEDGER_KAFKA_PASSWORD (SCRAM-SHA-256): a producer sees an engine's completions", async () => {
      process.env.JOBLEDGER_KAFKA_USERNAME = broker.username
      process.env.JOBLEDGER_KAFKA_PASSWORD = broker.password
      try {
        const log = secureLog("scram-sha-256")
        const name = uniqueQueue("env")
        const engine = open({ log }, name)
        engine.process("echo", async (job) => ({ echo: job.data }))
        const producer = open({ log }, name)
        const completed: Array<string> = []
        producer.on("completed", (job: Job) => completed.push(job.id))
        const job = await producer.add("echo", { hello: "world" })
        await until(() => completed.includes(job.id), "the producer saw the completion", 30_000)
        expect(await producer.store.get(job.id)).toMatchObject({ state: "completed", result: { echo: { hello: "world" } } })
      } finally {
        delete process.env.JOBLEDGER_KAFKA_USERNAME
        delete process.env.JOBLEDGER_KAFKA_PASSWORD
      }
    }, 90_000)

    it("PLAIN authenticates too", async () => {
      const q = open({ log: secureLog("plain"), kafka: credentials() })
      expect(await q.stats()).toEqual({ waiting: 0, active: 0, completed: 0, failed: 0, delayed: 0, paused: 0 })
    }, 60_000)

    it("a client certificate from ?ca=&cert=&key= reaches the mTLS listener and runs a job", async () => {
      const log = `kafkas://${broker.mtlsBootstrap}?ca=${broker.caFile}&cert=${broker.clientCertFile}&key=${broker.clientKeyFile}`
      const q = open({ log })
      q.process("m", async () => "over mTLS")
      const job = await q.add("m", {})
      await until(async () => (await q.store.get(job.id))?.state === "completed", "job completed over mTLS", 30_000)
      expect((await q.store.get(job.id))?.result).toBe("over mTLS")
    }, 90_000)
  })

  describe("failures say what to fix, within seconds", () => {
    it("a wrong password: a non-retryable QueueLogError naming authentication, in well under 5 s (SCRAM and PLAIN)", async () => {
      for (const mechanism of ["scram-sha-512", "plain"]) {
        const t0 = Date.now()
        const q = open({ log: secureLog(mechanism), kafka: { sasl: { username: broker.username, password: "not-the-password" } } })
        const { error } = await rejection(() => q.stats())
        const ms = Date.now() - t0
        process.stderr.write(`[secure kafka] wrong password (${mechanism}) failed after ${ms} ms: ${error.message}\n`)
        expect(error).toBeInstanceOf(QueueLogError)
        expect((error as QueueLogError).retryable).toBe(false)
        expect(error.message).toMatch(/authentication failed/i)
        expect(error.message).toMatch(/check the username and password \(JOBLEDGER_KAFKA_USERNAME \/ JOBLEDGER_KAFKA_PASSWORD, or kafka\.sasl\)/)
        expect(ms).toBeLessThan(FAST_FAILURE_MS)
        // every later call fails the same way at once: nothing retries in the background
        const again = await rejection(() => q.add("x", {}))
        expect(again.error.message).toBe(error.message)
        expect(again.ms).toBeLessThan(100)
      }
    }, 60_000)

    it("a wrong CA: a non-retryable TLS error naming the certificate problem and ?ca=; the system CAs refuse it too", async () => {
      for (const log of [`kafkas://${broker.bootstrap}?sasl=scram-sha-512&ca=${broker.wrongCaFile}`, `kafkas://${broker.bootstrap}?sasl=scram-sha-512`]) {
        const t0 = Date.now()
        const q = open({ log, kafka: credentials() })
        const { error } = await rejection(() => q.stats())
        const ms = Date.now() - t0
        process.stderr.write(`[secure kafka] ${log.includes("wrong") ? "wrong CA" : "system CAs"} failed after ${ms} ms: ${error.message}\n`)
        expect(error).toBeInstanceOf(QueueLogError)
        expect((error as QueueLogError).retryable).toBe(false)
        expect(error.message).toMatch(/\(TLS\) failed: self[- ]signed certificate in certificate chain \(SELF_SIGNED_CERT_IN_CHAIN\)/)
        expect(error.message).toMatch(/the broker's certificate is not trusted: give its CA with \?ca=<file\.pem>/)
        expect(ms).toBeLessThan(FAST_FAILURE_MS)
      }
    }, 60_000)

    it("no client certificate on the mTLS listener: a non-retryable error pointing to ?cert=&key=, in under 5 s", async () => {
      const q = open({ log: `kafkas://${broker.mtlsBootstrap}?ca=${broker.caFile}` })
      const { error, ms } = await rejection(() => q.stats())
      process.stderr.write(`[secure kafka] no client certificate failed after ${ms} ms: ${error.message}\n`)
      expect((error as QueueLogError).retryable).toBe(false)
      expect(error.message).toMatch(/\(ERR_SSL_\w+\) — the broker refused the TLS handshake: does it need a client certificate \(\?cert=<file>&key=<file>\)\?/)
      // TLS 1.3 refuses the certificate only after the handshake: the check's own request sees it
      expect(ms).toBeLessThan(FAST_FAILURE_MS)
    }, 60_000)

    it("plaintext, or TLS without SASL, to the SASL_SSL listener: the message asks about TLS / SASL", async () => {
      const plain = open({ log: `kafka://${broker.bootstrap}` })
      const p = await rejection(() => plain.stats())
      expect(p.error.message).toMatch(/the broker closed the connection: does its listener need TLS \(kafkas:\/\/\) or SASL/)
      const noSasl = open({ log: `kafkas://${broker.bootstrap}?ca=${broker.caFile}` })
      const n = await rejection(() => noSasl.stats())
      expect(n.error.message).toMatch(/does its listener need SASL \(\?sasl=/)
      expect(n.error.message).not.toMatch(/TLS \(kafkas/)
    }, 60_000)

    it("bad settings are InvalidOptionErrors at construction: missing credentials, a key that does not match the certificate", () => {
      const construct = (options: QueueOptions): Error => {
        try {
          new JobQueue(uniqueQueue("bad"), options)
        } catch (e) {
          capture("construction", e)
          return e as Error
        }
        throw new Error("expected the constructor to throw")
      }
      const missing = construct({ log: secureLog("scram-sha-256") })
      expect(missing).toBeInstanceOf(InvalidOptionError)
      expect(missing.message).toMatch(/sasl=scram-sha-256 needs a username and password, and JOBLEDGER_KAFKA_USERNAME and JOBLEDGER_KAFKA_PASSWORD are not set/)
      const otherKey = join(WORK, "other.key")
      writeFileSync(otherKey, generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }))
      const mismatch = construct({ log: `kafkas://${broker.mtlsBootstrap}?ca=${broker.caFile}&cert=${broker.clientCertFile}&key=${otherKey}` })
      expect(mismatch).toBeInstanceOf(InvalidOptionError)
      expect(mismatch.message).toMatch(/the TLS settings are not usable: .*key values mismatch/)
      const wrongType = construct({ log: secureLog(), kafka: { sasl: { username: broker.username, password: 12345678 as unknown as string } } })
      expect(wrongType.message).toBe("kafka.sasl.password must be a non-empty string")
      const inUrl = construct({ log: `kafkas://${broker.username}:${broker.password}@${broker.bootstrap}?sasl=plain` })
      expect(inUrl.message).toMatch(/^log 'kafkas:\/\/\*\*\*@…': credentials never go in the log URL/)
      const asParam = construct({ log: `${secureLog()}&password=${broker.password}` })
      expect(asParam.message).toMatch(/'password' is not a parameter: credentials never go in the log URL/)
    })
  })

  describe("the CLI over SASL_SSL", () => {
    interface Run {
      readonly code: number | null
      readonly stdout: string
      readonly stderr: string
      readonly ms: number
    }
    const childEnv = (extra: Record<string, string>) => {
      const env: NodeJS.ProcessEnv = { ...process.env, ...extra }
      for (const k of ["JOBLEDGER_LOG", "JOBLEDGER_DEBUG", "JOBLEDGER_KAFKA_USERNAME", "JOBLEDGER_KAFKA_PASSWORD"]) if (!(k in extra)) delete env[k]
      return env
    }
    const cli = async (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Run> => {
      const r = await runToEnd(process.execPath, [BIN, ...args], { cwd: WORK, env: childEnv(env), timeoutMs: CLI_TIMEOUT_MS })
      capture(`jobledger ${args[0]} stdout`, r.stdout)
      capture(`jobledger ${args[0]} stderr`, r.stderr)
      return r
    }
    let engine: ChildProcess | undefined
    let engineStderr = ""
    afterAll(async () => {
      if (engine !== undefined && engine.exitCode === null) {
        const exited = new Promise((r) => engine!.once("close", r))
        engine.kill("SIGTERM")
        await exited
      }
      capture("jobledger engine stderr", engineStderr)
    }, 60_000)

    it("engine (--kafka-config), add (environment), stats and job: a job added and completed, shown as JSON", async () => {
      const queue = uniqueQueue("cli")
      const log = secureLog("scram-sha-512")
      const config = join(WORK, "kafka.json")
      writeFileSync(config, JSON.stringify({ clientId: "jobledger-secure-test", ...credentials() }))
      const env = { JOBLEDGER_KAFKA_USERNAME: broker.username, JOBLEDGER_KAFKA_PASSWORD: broker.password }

      engine = spawn(process.execPath, [BIN, "engine", "--handlers", HANDLERS, "--log", log, "--kafka-config", config], {
        cwd: WORK,
        env: childEnv({ CLI_TEST_QUEUES: queue }),
        stdio: ["ignore", "pipe", "pipe"]
      })
      engine.stderr!.on("data", (d: Buffer) => (engineStderr += d.toString()))
      await until(() => engineStderr.includes(`engine ready: queue=${queue} `) || engine!.exitCode !== null, "engine ready", CLI_TIMEOUT_MS)
      expect(engineStderr).toContain(`engine ready: queue=${queue} log=${log} handlers=echo,fail,fail-once,gate`)

      const added = await cli(["add", queue, "echo", "--data", '{"secure":true}', "--log", log], env)
      expect(added.code, added.stderr).toBe(0)
      const id = added.stdout.trim().split("\n").at(-1)!
      expect(id).toMatch(/^[0-9a-f-]{36}$/)

      const reader = open({ log, kafka: credentials() }, queue)
      await until(async () => (await reader.store.get(id))?.state === "completed", "the CLI's job completed", 60_000)

      const [stats, shown] = await Promise.all([
        cli(["stats", queue, "--json", "--log", log, "--kafka-config", config]),
        cli(["job", queue, id, "--json", "--log", log], env)
      ])
      expect(stats.code, stats.stderr).toBe(0)
      expect(JSON.parse(stats.stdout)).toEqual({ waiting: 0, active: 0, completed: 1, failed: 0, delayed: 0, paused: 0 })
      expect(shown.code, shown.stderr).toBe(0)
      const report = JSON.parse(shown.stdout) as { job: Job; timeline: Array<{ type: string }> }
      expect(report.job).toMatchObject({ id, name: "echo", state: "completed", result: { echo: { secure: true } } })
      expect(report.timeline.map((e) => e.type)).toEqual(["JobAdded", "JobStarted", "JobCompleted"])
    }, 240_000)

    it("a wrong password: exit 1 and one clear line; bad --kafka-config files: exit 2 without quoting them", async () => {
      const wrong = await cli(["stats", uniqueQueue("cli"), "--log", secureLog("scram-sha-256")], {
        JOBLEDGER_KAFKA_USERNAME: broker.username,
        JOBLEDGER_KAFKA_PASSWORD: "not-the-password"
      })
      process.stderr.write(`[secure kafka] CLI wrong password: exit ${wrong.code} after ${wrong.ms} ms (process start included): ${wrong.stderr.trim()}\n`)
      expect(wrong.code).toBe(1)
      expect(wrong.stderr.trim().split("\n")).toHaveLength(1)
      expect(wrong.stderr).toMatch(/^jobledger: kafkas:\/\/127\.0\.0\.1:\d+: connecting failed: SASL SCRAM SHA256 authentication failed: .* — check the username and password/)

      const broken = join(WORK, "broken.json")
      writeFileSync(broken, `{"sasl": {"username": "${broker.username}", "password": "${broker.password}"`)
      const badJson = await cli(["stats", "q", "--log", secureLog(), "--kafka-config", broken])
      expect(badJson.code).toBe(2)
      expect(badJson.stderr).toMatch(/^jobledger: --kafka-config .*broken\.json is not valid JSON at line 1, column \d+ \([^)]+\)\n/)
      const badShape = join(WORK, "shape.json")
      writeFileSync(badShape, JSON.stringify({ brokers: ["x:1"], sasl: { username: broker.username, password: broker.password } }))
      const shape = await cli(["stats", "q", "--log", secureLog(), "--kafka-config", badShape])
      expect(shape.code).toBe(2)
      expect(shape.stderr).toMatch(/brokers: the brokers come from the log URL/)
    }, 120_000)

    it("examples/managed-kafka.ts, the README's example, runs over SASL_SSL with credentials from the environment", async () => {
      const run = await new Promise<Run>((resolve, reject) => {
        const t0 = Date.now()
        const child = spawn(join(ROOT, "node_modules", ".bin", "tsx"), [join(ROOT, "examples", "managed-kafka.ts")], {
          cwd: WORK,
          env: childEnv({ JOBLEDGER_LOG: secureLog("scram-sha-512"), JOBLEDGER_KAFKA_USERNAME: broker.username, JOBLEDGER_KAFKA_PASSWORD: broker.password }),
          stdio: ["ignore", "pipe", "pipe"]
        })
        let stdout = ""
        let stderr = ""
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
        const timer = setTimeout(() => child.kill("SIGKILL"), CLI_TIMEOUT_MS)
        child.on("error", reject)
        child.on("close", (code) => {
          clearTimeout(timer)
          capture("example stdout", stdout)
          capture("example stderr", stderr)
          resolve({ code, stdout, stderr, ms: Date.now() - t0 })
        })
      })
      expect(run.code, run.stderr).toBe(0)
      expect(run.stdout).toMatch(/^added [0-9a-f-]{36} on kafkas:\/\/127\.0\.0\.1:\d+\?sasl=scram-sha-512&ca=/m)
      expect(run.stdout).toMatch(/^completed [0-9a-f-]{36}: \{"sent":"ada@example\.com"\}$/m)
    }, 120_000)

    it("--help, kafkajs debug logs and a URL with user:pass@ show no credential", async () => {
      const env = { JOBLEDGER_KAFKA_USERNAME: broker.username, JOBLEDGER_KAFKA_PASSWORD: broker.password }
      const help = await cli(["--help"], { ...env, JOBLEDGER_LOG: `kafkas://${broker.username}:${broker.password}@${broker.bootstrap}` })
      expect(help.code).toBe(0)
      expect(help.stdout).toContain("default: $JOBLEDGER_LOG, now kafkas://***@…")
      const userinfo = await cli(["stats", "q", "--log", `kafka://${broker.username}:${broker.password}@${broker.bootstrap}`])
      expect(userinfo.code).toBe(2)
      expect(userinfo.stderr).toMatch(/^jobledger: --log: log 'kafka:\/\/\*\*\*@…': credentials never go in the log URL/)
      // kafkajs at debug level logs every request and the SASL exchange
      const debug = await cli(["stats", uniqueQueue("cli"), "--log", secureLog("plain")], { ...env, JOBLEDGER_KAFKA_LOG: "debug" })
      expect(debug.code).toBe(1) // the queue does not exist
      expect(debug.stderr).toMatch(/\[kafkajs debug .*SASL PLAIN authentication successful/i)
    }, 120_000)
  })

  it("the password appears in none of the captured outputs", () => {
    const kinds = new Set(captured.map((c) => c.where.replace(/ of \S+$/, "")))
    // the search is only meaningful if it covers every kind of output
    for (const kind of ["rejection", "construction", "error event", "jobledger engine stderr", "jobledger add stdout", "jobledger stats stderr", "jobledger job stdout", "jobledger --help stdout", "example stdout"])
      expect([...kinds], `no captured ${kind}`).toContain(kind)
    expect(captured.length).toBeGreaterThan(30)
    expect(captured.some((c) => /authentication failed/i.test(c.text))).toBe(true)
    const leaks = captured.filter((c) => c.text.includes(broker.password)).map((c) => `${c.where}: ${c.text.slice(0, 300)}`)
    expect(leaks).toEqual([])
  })
})
