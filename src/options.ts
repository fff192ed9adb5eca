/**
 * Validation of everything a user hands the public API, with messages that say what to fix.
 * Invalid queue options throw at construction; invalid `add` input rejects that `add`.
 */
import { inspect } from "node:util"
import { isValidQueueName, type JobTemplate, type KeepPolicy, type KeepRule, type Repeat, type ScheduleSpec } from "../machines/schema.ts"
import { repeatProblem } from "./engine/schedule-clock.ts"
import { DEFAULT_RETENTION, type Bound, type Retention } from "../projections/retention.ts"
import { type RetryPolicy, NO_RETRY } from "./engine/backoff.ts"
import type { RateLimit } from "./engine/limiter.ts"
import type { JobOptions, KeepOptions, QueueOptions, QueueStore, ScheduleRepeat, ScheduleTemplate } from "./types.ts"

/** An invalid argument to the public API; the message says what to change. */
export class InvalidOptionError extends Error {
  override readonly name = "InvalidOptionError"
}

const fail = (message: string): never => {
  throw new InvalidOptionError(message)
}

/**
 * A value as an error message shows it. Never throws: the value may be anything a caller
 * passed (a BigInt, a cycle, an object whose toString throws, a null-prototype object).
 */
const show = (value: unknown): string => {
  try {
    const text = typeof value === "string" || (typeof value === "object" && value !== null) ? JSON.stringify(value) : String(value)
    if (text !== undefined) return text.length > 80 ? `${text.slice(0, 80)}…` : text
  } catch {
    // not JSON: fall through to a description
  }
  try {
    return inspect(value, { depth: 1, breakLength: Infinity }).slice(0, 80)
  } catch {
    return `a ${typeof value}`
  }
}

const isFiniteNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v)
const isPlainObject = (v: unknown): v is Record<string, any> =>
  typeof v === "object" && v !== null && !Array.isArray(v)

const checkKeys = (where: string, value: Record<string, unknown>, allowed: ReadonlyArray<string>) => {
  for (const key of Object.keys(value))
    if (!allowed.includes(key)) fail(`${where}: unknown option '${key}' (known: ${allowed.join(", ")})`)
}

export interface ResolvedQueueOptions {
  readonly concurrency: number
  readonly policy: RetryPolicy
  readonly limiter: RateLimit | undefined
  readonly timeoutMs: number | undefined
  readonly store: QueueStore | undefined
  /** Which finished jobs stay in this process's memory (per partition). */
  readonly retention: Retention
}

/** The longest timer Node can arm (a longer one fires at once): the bound of every `timeout`. */
export const MAX_TIMEOUT_MS = 2_147_483_647

const QUEUE_KEYS = ["concurrency", "retry", "limiter", "hooks", "store", "log", "timeout", "keep", "kafka"]
const STORE_METHODS = ["enqueue", "update", "get", "list", "stats"] as const

export const validateQueueName = (name: unknown): string => {
  if (typeof name !== "string" || !isValidQueueName(name))
    fail(`queue name must be 1–200 characters of letters, digits, '.', '_' or '-' (got ${show(name)})`)
  return name as string
}

/** Checks queue options; throws InvalidOptionError naming the first problem. */
export const resolveQueueOptions = (options: QueueOptions | undefined): ResolvedQueueOptions => {
  if (options === undefined)
    return { concurrency: 5, policy: NO_RETRY, limiter: undefined, timeoutMs: undefined, store: undefined, retention: DEFAULT_RETENTION }
  if (!isPlainObject(options)) fail("options must be an object")
  checkKeys("JobQueue options", options as Record<string, unknown>, QUEUE_KEYS)
  const concurrency = options.concurrency ?? 5
  if (!Number.isInteger(concurrency) || concurrency < 1)
    fail(`concurrency must be a whole number ≥ 1 (got ${show(options.concurrency)})`)

  let policy = NO_RETRY
  if (options.retry !== undefined) {
    const r = options.retry as Record<string, any>
    if (!isPlainObject(r)) fail("retry must be an object like { attempts: 3, backoff: 'exponential', delay: 1000 }")
    checkKeys("retry", r as Record<string, unknown>, ["attempts", "backoff", "delay", "maxDelay"])
    const attempts = r.attempts ?? 0
    if (!Number.isInteger(attempts) || attempts < 0) fail(`retry.attempts must be a whole number ≥ 0 (got ${show(r.attempts)})`)
    const backoff = r.backoff ?? "fixed"
    if (backoff !== "fixed" && backoff !== "exponential")
      fail(`retry.backoff must be 'fixed' or 'exponential' (got ${show(r.backoff)})`)
    const delay = r.delay ?? 1000
    if (!isFiniteNumber(delay) || delay < 0) fail(`retry.delay must be a number of ms ≥ 0 (got ${show(r.delay)})`)
    const maxDelay = r.maxDelay ?? Infinity
    if (typeof maxDelay !== "number" || Number.isNaN(maxDelay) || maxDelay < 0)
      fail(`retry.maxDelay must be a number of ms ≥ 0 (got ${show(r.maxDelay)})`)
    policy = { attempts, backoff, delay, maxDelay }
  }

  let limiter: RateLimit | undefined
  if (options.limiter !== undefined) {
    const l = options.limiter as Record<string, any>
    if (!isPlainObject(l)) fail("limiter must be an object like { max: 5, duration: 60000 }")
    checkKeys("limiter", l as Record<string, unknown>, ["max", "duration"])
    if (!Number.isInteger(l.max) || l.max < 1) fail(`limiter.max must be a whole number ≥ 1 (got ${show(l.max)})`)
    if (!isFiniteNumber(l.duration) || l.duration <= 0)
      fail(`limiter.duration must be a number of ms > 0 (got ${show(l.duration)})`)
    limiter = { max: l.max, duration: l.duration }
  }

  if (options.hooks !== undefined) {
    if (!isPlainObject(options.hooks)) fail("hooks must be an object of functions")
    checkKeys("hooks", options.hooks as Record<string, unknown>, ["onComplete", "onFailed", "onRetry"])
    for (const [key, hook] of Object.entries(options.hooks))
      if (hook !== undefined && typeof hook !== "function") fail(`hooks.${key} must be a function`)
  }

  if (options.store !== undefined) {
    const store = options.store as unknown as Record<string, unknown>
    if (typeof store !== "object" || store === null) fail("store must be an object implementing QueueStore")
    for (const method of STORE_METHODS)
      if (typeof store[method] !== "function") fail(`store must implement ${method}() (QueueStore: ${STORE_METHODS.join(", ")})`)
  }

  const timeout = options.timeout
  if (timeout !== undefined && (!isFiniteNumber(timeout) || timeout <= 0 || timeout > MAX_TIMEOUT_MS))
    fail(`timeout must be a number of ms > 0 and at most ${MAX_TIMEOUT_MS} (got ${show(timeout)})`)

  return { concurrency, policy, limiter, timeoutMs: timeout, store: options.store, retention: resolveRetention(options.keep) }
}

const KEEP_STATES = ["completed", "failed"] as const

/**
 * One `keep` rule: a count, or `{ count?, age? }` (ms). `Infinity` (no bound) only where
 * `allowInfinite` — a job's own rule travels in the log as JSON.
 */
const keepRule = (where: string, raw: unknown, allowInfinite: boolean): KeepRule => {
  const whole = (v: unknown) => (typeof v === "number" && Number.isInteger(v) && v >= 0) || (allowInfinite && v === Infinity)
  const ms = (v: unknown) => (isFiniteNumber(v) && v >= 0) || (allowInfinite && v === Infinity)
  const bound = allowInfinite ? ", or Infinity" : ""
  if (typeof raw === "number") {
    if (!whole(raw)) fail(`${where} must be a whole number ≥ 0${bound} (got ${show(raw)})`)
    return { count: raw }
  }
  if (!isPlainObject(raw)) fail(`${where} must be a count or { count?, age? } (got ${show(raw)})`)
  const rule = raw as Record<string, unknown>
  checkKeys(where, rule, ["count", "age"])
  if (rule.count !== undefined && !whole(rule.count)) fail(`${where}.count must be a whole number ≥ 0${bound} (got ${show(rule.count)})`)
  if (rule.age !== undefined && !ms(rule.age)) fail(`${where}.age must be a number of ms ≥ 0${bound} (got ${show(rule.age)})`)
  return { ...(rule.count === undefined ? {} : { count: rule.count as number }), ...(rule.age === undefined ? {} : { age: rule.age as number }) }
}

const keepPolicy = (where: string, raw: unknown, allowInfinite: boolean): KeepPolicy => {
  if (!isPlainObject(raw)) fail(`${where} must be an object like { completed: 1000, failed: { count: 5000, age: 86400000 } }`)
  const rules = raw as Record<string, unknown>
  checkKeys(where, rules, KEEP_STATES)
  const policy: { completed?: KeepRule; failed?: KeepRule } = {}
  for (const state of KEEP_STATES) if (rules[state] !== undefined) policy[state] = keepRule(`${where}.${state}`, rules[state], allowInfinite)
  return policy
}

/** The queue's `keep` option over the defaults (`DEFAULT_RETENTION`). */
export const resolveRetention = (keep: KeepOptions | undefined): Retention => {
  if (keep === undefined) return DEFAULT_RETENTION
  const policy = keepPolicy("keep", keep, true)
  const bound = (state: "completed" | "failed"): Bound => ({
    count: policy[state]?.count ?? DEFAULT_RETENTION[state].count,
    age: policy[state]?.age ?? DEFAULT_RETENTION[state].age
  })
  return { completed: bound("completed"), failed: bound("failed") }
}

export interface ResolvedJobInput {
  readonly name: string
  readonly data: unknown
  readonly priority: number
  readonly delay: number
  readonly metadata: Record<string, unknown> | undefined
  readonly jobId: string | undefined
  /** The job's own attempt time limit in ms; undefined: the queue's `timeout`. */
  readonly timeout: number | undefined
  /** The job's own retention once finished; undefined: the queue's `keep`. */
  readonly keep: KeepPolicy | undefined
}

/**
 * Checks one `add`'s arguments; throws InvalidOptionError naming the problem. Whether the
 * data survives JSON is checked when the command is encoded (one serialization, not two).
 */
export const resolveJobInput = (name: unknown, data: unknown, opts: JobOptions | undefined): ResolvedJobInput => {
  if (typeof name !== "string" || name.length === 0 || name.length > 256)
    fail(`job name must be a non-empty string of at most 256 characters (got ${show(name)})`)
  if (typeof data === "function" || typeof data === "symbol" || typeof data === "bigint")
    fail(`job data must be JSON-serializable (got a ${typeof data})`)
  const o = (opts ?? {}) as Record<string, any>
  if (!isPlainObject(o)) fail("job options must be an object")
  checkKeys("job options", o as Record<string, unknown>, ["priority", "delay", "metadata", "jobId", "timeout", "keep"])
  const priority = o.priority ?? 0
  if (!isFiniteNumber(priority)) fail(`priority must be a finite number (got ${show(o.priority)})`)
  const delay = o.delay ?? 0
  if (!isFiniteNumber(delay) || delay < 0) fail(`delay must be a number of ms ≥ 0 (got ${show(o.delay)})`)
  if (o.metadata !== undefined && !isPlainObject(o.metadata)) fail("metadata must be a plain object")
  // a decoded `__proto__` key would become the metadata's prototype in other processes
  if (o.metadata !== undefined && Object.hasOwn(o.metadata, "__proto__")) fail("metadata may not have a '__proto__' key")
  if (o.jobId !== undefined && (typeof o.jobId !== "string" || o.jobId.length === 0 || o.jobId.length > 256))
    fail(`jobId must be a non-empty string of at most 256 characters (got ${show(o.jobId)})`)
  if (o.timeout !== undefined && (!Number.isInteger(o.timeout) || o.timeout <= 0 || o.timeout > MAX_TIMEOUT_MS))
    fail(`timeout must be a whole number of ms between 1 and ${MAX_TIMEOUT_MS} (got ${show(o.timeout)})`)
  return {
    name: name as string,
    data: data === undefined ? null : data,
    priority,
    delay,
    metadata: o.metadata,
    jobId: o.jobId,
    timeout: o.timeout,
    keep: o.keep === undefined ? undefined : keepPolicy("keep", o.keep, false)
  }
}

const whole = (v: unknown, min: number): v is number => typeof v === "number" && Number.isInteger(v) && v >= min

/**
 * Checks `upsertSchedule`'s arguments; throws InvalidOptionError naming the problem (a bad
 * cron expression or time zone is named as croner reads it).
 */
export const resolveSchedule = (id: unknown, repeat: unknown, template: unknown): ScheduleSpec => {
  if (typeof id !== "string" || id.length === 0 || id.length > 200) fail(`schedule id must be a non-empty string of at most 200 characters (got ${show(id)})`)
  if (!isPlainObject(repeat)) fail("repeat must be { every: ms } or { cron: '0 8 * * *', tz?: 'Asia/Jakarta' }, with startAt?, endAt?, limit?")
  const r = repeat as Record<string, unknown>
  const hasEvery = r.every !== undefined
  const hasCron = r.cron !== undefined
  if (hasEvery === hasCron) fail("repeat needs exactly one of every (ms) and cron (an expression)")
  checkKeys("repeat", r, hasEvery ? ["every", "startAt", "endAt", "limit"] : ["cron", "tz", "startAt", "endAt", "limit"])
  let clock: Repeat
  if (hasEvery) {
    if (!whole(r.every, 1) || r.every > 315_360_000_000) fail(`repeat.every must be a whole number of ms from 1 to 10 years (got ${show(r.every)})`)
    clock = { every: r.every as number }
  } else {
    if (typeof r.cron !== "string" || r.cron.length === 0 || r.cron.length > 200) fail(`repeat.cron must be a cron expression string (got ${show(r.cron)})`)
    if (r.tz !== undefined && (typeof r.tz !== "string" || r.tz.length === 0 || r.tz.length > 64)) fail(`repeat.tz must be an IANA time zone name (got ${show(r.tz)})`)
    clock = { cron: r.cron as string, ...(r.tz === undefined ? {} : { tz: r.tz as string }) }
  }
  const problem = repeatProblem(clock)
  if (problem !== undefined) fail(`repeat: ${problem}`)
  for (const key of ["startAt", "endAt"] as const)
    if (r[key] !== undefined && !(isFiniteNumber(r[key]) && (r[key] as number) >= 0)) fail(`repeat.${key} must be a time in ms since the epoch (got ${show(r[key])})`)
  if (r.startAt !== undefined && r.endAt !== undefined && (r.endAt as number) < (r.startAt as number)) fail("repeat.endAt is before repeat.startAt")
  if (r.limit !== undefined && !whole(r.limit, 1)) fail(`repeat.limit must be a whole number ≥ 1 (got ${show(r.limit)})`)
  if (!isPlainObject(template)) fail("template must be { name, data, opts? }")
  const t = template as Record<string, unknown>
  checkKeys("template", t, ["name", "data", "opts"])
  const job = resolveJobInput(t.name, t.data, t.opts as JobOptions | undefined)
  if (job.delay > 0 || job.jobId !== undefined) fail("template.opts may not set delay or jobId: a schedule's jobs run at their tick, with the id <schedule id>:<tick>")
  const opts = {
    ...(job.priority === 0 ? {} : { priority: job.priority }),
    ...(job.metadata === undefined ? {} : { metadata: job.metadata }),
    ...(job.timeout === undefined ? {} : { timeout: job.timeout }),
    ...(job.keep === undefined ? {} : { keep: job.keep })
  }
  const jobTemplate: JobTemplate = { name: job.name, data: job.data, ...(Object.keys(opts).length === 0 ? {} : { opts }) }
  return {
    id: id as string,
    repeat: clock,
    template: jobTemplate,
    ...(r.startAt === undefined ? {} : { startAt: r.startAt as number }),
    ...(r.endAt === undefined ? {} : { endAt: r.endAt as number }),
    ...(r.limit === undefined ? {} : { limit: r.limit as number })
  }
}

export type { ScheduleRepeat, ScheduleTemplate }
