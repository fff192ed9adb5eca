/**
 * Opening and closing the log for one CLI run, with bounded waits.
 *
 * Invariants:
 * - Connecting to a broker is bounded (JOBLEDGER_CONNECT_TIMEOUT_MS, default 10 s): an
 *   unreachable broker is a one-line failure (exit 1), never a hang. Only connecting is
 *   bounded — catching up with a long log may take as long as it takes.
 * - Closing is bounded too, and never throws: a CLI run that finished its work reports
 *   that result even if releasing a connection misbehaves.
 * - A producer-side JobQueue never calls `process`, so it joins no engine group: the
 *   commands it appends are applied by whichever engine owns the queue.
 * - Commands that only read never create anything: not a SQLite file where none is, and
 *   not the topics of a queue that does not exist (a JobQueue would create them).
 * - Everything here opens a log from a LogTarget (URL + --kafka-config), so every command
 *   connects the same way; messages name the URL, which never carries a secret.
 */
import * as Cause from "effect/Cause"
import * as Exit from "effect/Exit"
import type * as ManagedRuntime from "effect/ManagedRuntime"
import { managedRuntime } from "../effect-runtime.ts"
import { existsSync } from "node:fs"
import { JobQueue, InvalidOptionError, type QueueOptions } from "../index.ts"
import { EventLog, type EventLogService, type LogError, topicsOf } from "../log/event-log.ts"
import { layerFromUrl } from "../log/layers.ts"
import { parseLogUrl, type LogLocation } from "../log/log-url.ts"
import { NoSuchQueueError } from "../read/replay.ts"
import { run } from "../run.ts"
import type { LogTarget } from "./args.ts"
import { CliFailure, UsageError, messageOf } from "./errors.ts"

/** How long opening the log may take before the run fails. */
export const connectTimeoutMs = (): number => {
  const raw = Number(process.env.JOBLEDGER_CONNECT_TIMEOUT_MS)
  return Number.isFinite(raw) && raw > 0 ? raw : 10_000
}
const CLOSE_TIMEOUT_MS = 5_000

/** Resolves like `promise`, or rejects with CliFailure(`message`) after `ms`. */
export const withTimeout = <T>(promise: Promise<T>, ms: number, message: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CliFailure(message)), ms)
    timer.unref()
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** The parsed `--log`, or a UsageError saying what a valid URL looks like. */
export const checkLogUrl = (url: string): LogLocation => {
  try {
    return parseLogUrl(url)
  } catch (e) {
    throw new UsageError(`--log: ${messageOf(e)}`)
  }
}

/**
 * The EventLog layer of a target: a UsageError for a bad URL, for --kafka-config settings
 * that contradict it, or for missing credentials (the message says where they go).
 */
const layerOf = (target: LogTarget) => {
  checkLogUrl(target.url)
  try {
    return layerFromUrl(target.url, { kafka: target.kafka })
  } catch (e) {
    throw new UsageError(messageOf(e))
  }
}

/**
 * For commands that only read: a SQLite log that does not exist is an error (opening it
 * would create an empty file and report an empty queue, hiding a wrong path).
 */
export const requireExistingLog = (target: LogTarget): void => {
  const location = checkLogUrl(target.url)
  if (location.kind === "sqlite" && location.path !== ":memory:" && !existsSync(location.path))
    throw new CliFailure(`no log at ${location.path} (nothing was written there yet; pass --log or set JOBLEDGER_LOG)`)
}

const unreachable = (url: string, ms: number) =>
  `could not open the log ${url} within ${Math.round(ms / 1000)} s (is it reachable? JOBLEDGER_CONNECT_TIMEOUT_MS changes the wait)`

/**
 * Fails (bounded) unless the log can be reached. A local file needs no check (opening it
 * cannot hang); a Kafka cluster is connected to once, with the timeout, and released.
 */
export const ensureReachable = async (log: LogTarget): Promise<void> => {
  if (checkLogUrl(log.url).kind !== "kafka") return
  const opened = await openLog(log)
  await opened.close()
}

/**
 * A JobQueue on `log`, with the log open. Problems the queue reports in the
 * background are handed to `onError` (default: ignored — the command's own result says
 * what went wrong), so they never print twice.
 */
export const openQueue = async <Data = unknown>(
  name: string,
  log: LogTarget,
  options: Omit<QueueOptions<Data>, "log" | "kafka"> = {},
  onError: (e: unknown) => void = () => {}
): Promise<JobQueue<Data>> => {
  await ensureReachable(log)
  let queue: JobQueue<Data>
  try {
    queue = new JobQueue<Data>(name, { ...options, log: log.url, ...(log.kafka === undefined ? {} : { kafka: log.kafka }) })
  } catch (e) {
    if (e instanceof InvalidOptionError) throw new UsageError(messageOf(e))
    throw e
  }
  queue.on("error", onError)
  try {
    // the log open and the topics there: producer commands need nothing more (they never
    // open a read model); reading commands open theirs with their first query
    await queue.waitUntilReady()
  } catch (e) {
    void closeQueue(queue)
    throw e instanceof CliFailure ? e : new CliFailure(messageOf(e))
  }
  return queue
}

/** Fails with the same message as replay unless `queue` has an events topic on `url`; creates nothing. */
export const requireQueue = async (queue: string, target: LogTarget): Promise<void> => {
  const opened = await openLog(target)
  try {
    const partitions = await run(opened.log.partitionCount(topicsOf(queue).events))
    if (partitions === undefined || partitions === 0) throw new CliFailure(new NoSuchQueueError(queue, opened.log.url).message)
  } finally {
    await opened.close()
  }
}

/**
 * Runs `use` with a JobQueue on `log` opened for this command alone, and closes it whatever
 * happens. `readOnly` commands first refuse a log or a queue that does not exist, rather
 * than create them empty (requireExistingLog, requireQueue).
 */
export const withQueue = async <T>(
  name: string,
  log: LogTarget,
  use: (queue: JobQueue) => Promise<T>,
  options: { readonly readOnly?: boolean } = {}
): Promise<T> => {
  if (options.readOnly === true) {
    requireExistingLog(log)
    await requireQueue(name, log)
  }
  const queue = await openQueue(name, log)
  try {
    return await use(queue)
  } finally {
    await closeQueue(queue)
  }
}

/** Closes a queue (engine included, waiting up to `graceMs` for its jobs); never throws. */
export const closeQueue = async (queue: JobQueue<any>, graceMs = 0): Promise<void> => {
  await withTimeout(queue.close({ graceMs }), graceMs + CLOSE_TIMEOUT_MS, "close timed out").catch(() => undefined)
}

/** An open EventLog service for read-only work (replay), and how to release it. */
export interface OpenLog {
  readonly log: EventLogService
  readonly close: () => Promise<void>
}

export const openLog = async (target: LogTarget): Promise<OpenLog> => {
  const url = target.url
  const runtime = managedRuntime(layerOf(target))
  const close = () => withTimeout(runtime.dispose(), CLOSE_TIMEOUT_MS, "close timed out").catch(() => undefined)
  try {
    const exit = await withTimeout(runtime.runPromiseExit(EventLog), connectTimeoutMs(), unreachable(url, connectTimeoutMs()))
    if (Exit.isFailure(exit)) {
      const message = messageOf(Cause.squash(exit.cause as Cause.Cause<LogError>))
      // Kafka's messages start with the cluster (kafka[s]://brokers): say it once
      throw new CliFailure(message.includes(url) || /^kafkas?:\/\//.test(message) ? message : `${url}: ${message}`)
    }
    return { log: exit.value, close }
  } catch (e) {
    void close()
    throw e
  }
}

/** Resolves with the first SIGINT or SIGTERM; `dispose` removes the listeners. */
export const nextSignal = (): { readonly signal: Promise<NodeJS.Signals>; readonly dispose: () => void } => {
  let dispose = () => {}
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    const on = (s: NodeJS.Signals) => {
      dispose()
      resolve(s)
    }
    process.once("SIGINT", on)
    process.once("SIGTERM", on)
    dispose = () => {
      process.off("SIGINT", on)
      process.off("SIGTERM", on)
    }
  })
  return { signal, dispose }
}
