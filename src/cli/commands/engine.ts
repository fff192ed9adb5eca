/**
 * `jobledger engine`: runs the handlers of a module as engine consumers until SIGINT or
 * SIGTERM, then shuts down gracefully.
 *
 * Invariants:
 * - "engine ready: queue=… log=…" is printed (stderr) once per queue, only after its log is
 *   open and its read model caught up: scripts may wait for it.
 * - On the first signal every queue closes with `--grace`: no new job starts, running jobs
 *   finish (or, past the grace, are handed back as stalled), everything decided is durable,
 *   then the process exits 0. A second signal exits at once (status 1); jobs it cuts short
 *   are recovered as stalled by the next engine.
 */
import type { JobQueue, QueueOptions } from "../../index.ts"
import type { CommandSpec } from "../args.ts"
import { CliFailure, UsageError, messageOf } from "../errors.ts"
import { loadHandlers } from "../handlers-module.ts"

const DEFAULT_GRACE_MS = 30_000

export const engine: CommandSpec = {
  name: "engine",
  summary: "run a module's job handlers until SIGINT/SIGTERM",
  description: [
    "Loads the handlers module (JavaScript or TypeScript) and runs an engine for each of its",
    "queues (or only the --queue ones):",
    "",
    "  export default { email: { 'send-email': async (job) => ({ sent: true }) } }",
    "  export const options = { email: { concurrency: 10, retry: { attempts: 3 } } }",
    "",
    "Prints 'engine ready: queue=… log=…' on stderr per queue once it runs. On SIGINT or",
    "SIGTERM it stops taking jobs, lets running ones finish (up to --grace), commits and",
    "exits 0; a second signal exits at once. Start several engines on the same log to share",
    "the work (on Kafka the partitions are balanced between them; on SQLite one engine per",
    "queue is active and the others stand by)."
  ].join("\n"),
  positionals: [],
  options: {
    handlers: { type: "string", required: true, value: "<module>", description: "the handlers module (.js, .mjs, .cjs; .ts, .mts, .cts with tsx installed; required)" },
    queue: { type: "string", short: "q", multiple: true, value: "<name>", description: "run only this queue of the module (repeatable; default: all)" },
    concurrency: { type: "string", short: "c", value: "<n>", description: "jobs running at once per queue (overrides the module's options)" },
    grace: { type: "string", value: "<ms>", description: `on shutdown, wait this long for running jobs (default: ${DEFAULT_GRACE_MS})` },
    verbose: { type: "boolean", short: "v", description: "print a line per job completed, retried or failed" }
  },
  json: false,
  examples: [
    "jobledger engine --handlers ./handlers.ts",
    "jobledger engine --handlers ./handlers.ts --queue email --concurrency 20 --log kafka://localhost:9092"
  ],
  run: async ({ args, log, out }) => {
    const path = args.string("handlers")!
    const concurrency = args.number("concurrency", { min: 1, integer: true })
    const graceMs = args.number("grace", { min: 0 }) ?? DEFAULT_GRACE_MS
    const verbose = args.flag("verbose")
    // the engine's modules load only when a command runs, so --help and usage errors are quick
    const [{ InvalidOptionError, JobQueue }, { closeQueue, ensureReachable, nextSignal }, { displayLogUrl }] = await Promise.all([
      import("../../index.ts"),
      import("../connect.ts"),
      import("../../log/log-url.ts")
    ])
    const mod = await loadHandlers(path)
    const wanted = args.strings("queue")
    for (const q of wanted)
      if (!mod.queues.has(q)) throw new UsageError(`--queue ${q}: the handlers module has no such queue (it has: ${[...mod.queues.keys()].join(", ")})`)
    const names = wanted.length > 0 ? [...new Set(wanted)] : [...mod.queues.keys()]
    await ensureReachable(log)

    // listening before anything opens: a signal during startup still shuts down cleanly
    const stop = nextSignal()
    const queues: Array<JobQueue> = []
    const startQueue = async (name: string): Promise<void> => {
      // the connection is the command line's: --log / JOBLEDGER_LOG, --kafka-config / JOBLEDGER_KAFKA_*
      const { log: own, kafka: ownKafka, ...moduleOptions } = mod.options[name] ?? ({} as QueueOptions)
      if (own !== undefined && own !== log.url)
        out.note(`jobledger: options.${name}.log (${displayLogUrl(own)}) is ignored; the engine uses ${log.url} (--log / JOBLEDGER_LOG)`)
      if (ownKafka !== undefined)
        out.note(`jobledger: options.${name}.kafka is ignored; the engine connects with --kafka-config and JOBLEDGER_KAFKA_USERNAME / JOBLEDGER_KAFKA_PASSWORD`)
      let queue: JobQueue
      try {
        const kafka = log.kafka === undefined ? {} : { kafka: log.kafka }
        queue = new JobQueue(name, { ...moduleOptions, ...(concurrency === undefined ? {} : { concurrency }), log: log.url, ...kafka })
      } catch (e) {
        throw e instanceof InvalidOptionError ? new UsageError(`--handlers ${path}: queue '${name}': ${messageOf(e)}`) : e
      }
      queues.push(queue)
      let ready = false
      // before ready, a failure to open is reported once, by the wait below
      queue.on("error", (e) => ready && out.note(`jobledger: queue '${name}': ${messageOf(e)}`))
      const handlers = mod.queues.get(name)!
      for (const [jobName, handler] of handlers) queue.process(jobName, handler)
      if (verbose) {
        queue.on("completed", (job) => out.note(`${name}: completed ${job.id} (${job.name})`))
        queue.on("retrying", (job, attempt, delay) => out.note(`${name}: retry ${attempt} of ${job.id} (${job.name}) in ${delay} ms: ${job.error?.message ?? ""}`))
        queue.on("failed", (job, error) => out.note(`${name}: failed ${job.id} (${job.name}): ${messageOf(error)}`))
      }
      // stats() resolves once the queue's log is open and its read model caught up
      await queue.stats().catch((e) => {
        throw new CliFailure(messageOf(e))
      })
      ready = true
      out.note(`engine ready: queue=${name} log=${queue.log} handlers=${[...handlers.keys()].join(",")}`)
    }
    try {
      // one queue at a time: each is running before the next opens, and a failure names its queue
      let stopping = false
      const started = (async () => {
        for (const name of names) if (!stopping) await startQueue(name)
      })()
      const first = await Promise.race([started.then(() => "ready" as const), stop.signal])
      if (first !== "ready") {
        stopping = true
        out.note(`engine stopping (${first}) before it was ready`)
        await started.catch(() => undefined)
        await Promise.all(queues.map((q) => closeQueue(q, graceMs)))
        return 0
      }

      const signal = await stop.signal
      const force = (s: NodeJS.Signals) => {
        out.note(`jobledger: ${s} again, exiting now (unfinished jobs will be recovered as stalled)`)
        process.exit(1)
      }
      process.once("SIGINT", force)
      process.once("SIGTERM", force)
      out.note(`engine stopping (${signal}): no new jobs; waiting up to ${graceMs} ms for running ones`)
      await Promise.all(queues.map((q) => closeQueue(q, graceMs)))
      process.off("SIGINT", force)
      process.off("SIGTERM", force)
      out.note("engine stopped")
      return 0
    } catch (e) {
      await Promise.all(queues.map((q) => closeQueue(q, 0)))
      throw e
    } finally {
      stop.dispose()
    }
  }
}
