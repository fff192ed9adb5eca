/**
 * EventLog over a LocalStore: the `memory:` and `sqlite:` backends.
 *
 * - Group commit: every `append` made in the same tick lands in one store transaction.
 * - With a `writer` (SQLite files), an engine's transactions run on the writer's thread, and
 *   so do appends once it runs: one connection writes, so they never wait on each other's
 *   lock. Without it, or once it is unavailable, every write runs here, as before.
 * - Followers are woken directly by appends of this process, and by polling the store's
 *   data version for appends of other processes sharing the file.
 * - Group membership is one lease per group; a lease whose holder process is dead (same
 *   host) or expired is taken over, which is how a restarted engine recovers stalled jobs.
 */
import * as Effect from "effect/Effect"
import { randomUUID } from "node:crypto"
import {
  type EventLogService,
  FencedError,
  type GroupSpec,
  LogError,
  type LogRecord,
  type OutgoingRecord,
  type PartitionOwner,
  type ScannedBatch,
  type TransactUnit
} from "./event-log.ts"
import type { LocalStore, PendingAppend } from "./local-store.ts"
import { SCAN_OFF_THREAD, scanHere, scanOffThread } from "./sqlite-scanner.ts"
import { type SqliteWriter, WriterUnavailable } from "./sqlite-writer.ts"
import { handOver } from "../hand-over.ts"

/** How often followers look for appends made by other processes. */
const POLL_MS = 15
/** A lease not renewed for this long is taken over even if its holder's pid looks alive. */
const LEASE_TTL_MS = 15_000
const LEASE_RENEW_MS = 2_000
const STANDBY_RETRY_MS = 250
/**
 * Records per delivery to a follower read from the store. Smaller batches keep an engine's
 * pipeline even: 5,000 commands at once became 5,000 JobAdded decisions in one go, held in one
 * transaction while the jobs already running waited behind it. Draining 50,000 jobs at
 * concurrency 100, 1,000 instead of 5,000 was faster in each of 4 alternating pairs
 * (median +8% jobs/s, −9% main-thread CPU per job); 500 was no better than 1,000.
 */
const READ_BATCH = 1_000

/** Turns a store exception into a LogError that says what happened and whether to retry. */
export const toLogError = (url: string, cause: unknown): LogError => {
  const code = (cause as { code?: unknown } | null)?.code
  const detail = cause instanceof Error ? cause.message : String(cause)
  // extended result codes (SQLITE_IOERR_WRITE, SQLITE_READONLY_DBMOVED…) count as their primary code
  const primary = typeof code === "string" && code.startsWith("SQLITE_") ? code.split("_").slice(0, 2).join("_") : code
  switch (primary) {
    case "SQLITE_FULL":
      return new LogError({ message: `${url}: the disk is full (${detail})`, retryable: true, cause })
    case "SQLITE_BUSY":
    case "SQLITE_LOCKED":
      return new LogError({ message: `${url}: the database is busy (${detail})`, retryable: true, cause })
    case "SQLITE_IOERR":
      return new LogError({ message: `${url}: I/O error (${detail})`, retryable: true, cause })
    case "SQLITE_READONLY":
      return new LogError({ message: `${url}: the database file is read-only (${detail})`, retryable: false, cause })
    default:
      return new LogError({ message: `${url}: ${detail}`, retryable: false, cause })
  }
}

const isAlive = (pid: number): boolean => {
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as { code?: string }).code === "EPERM"
  }
}

interface Follower {
  readonly topic: string
  readonly partition: number
  next: number
  /** Records appended by this process after `next`, contiguous, not yet delivered. */
  buffer: Array<LogRecord>
  /**
   * The store may hold records after `next` that `buffer` does not: set at the start, when
   * another process wrote the file, and when an append of ours did not continue the buffer;
   * cleared by a read that reached the end. While clear, a wake needs no store read (at
   * concurrency 1 that empty read after every transaction was 15% of the engine's CPU).
   */
  stale: boolean
  readonly onRecords: (records: ReadonlyArray<LogRecord>) => Promise<void>
  /** Serializes deliveries: one batch at a time, in offset order. */
  running: boolean
  wanted: boolean
  closed: boolean
}

interface Pending {
  readonly append: PendingAppend
  readonly resolve: () => void
  readonly reject: (e: LogError) => void
}

/** `writer`: where an engine's transactions run; `file`: the SQLite file's path, for long scans on a thread of their own. */
export const makeLocalLog = (backend: "memory" | "sqlite", url: string, store: LocalStore, writer?: SqliteWriter, file?: string) => {
  const followers = new Set<Follower>()
  let pending: Array<Pending> = []
  let flushScheduled = false
  let lastVersion = store.dataVersion()
  let closed = false

  const attempt = <A>(f: () => A): Effect.Effect<A, LogError> =>
    Effect.try({ try: f, catch: (cause) => toLogError(url, cause) })

  /** A write on the writer's thread; on this one when the writer never started (it ran nothing then). */
  const viaWriter = <A>(offThread: () => Promise<A>, here: () => A): Promise<A> =>
    offThread().catch((error: unknown) => (error instanceof WriterUnavailable ? here() : Promise.reject(error)))

  /**
   * Hands records appended by this process to the followers of their partitions. Records
   * that continue a follower's position are delivered from memory; otherwise the follower
   * reads the store (which holds them too).
   */
  const wake = (records: ReadonlyArray<LogRecord>) => {
    if (records.length === 0) return
    for (const f of followers) {
      let touched = false
      for (const r of records) {
        if (r.topic !== f.topic || r.partition !== f.partition) continue
        touched = true
        const expected = f.buffer.length > 0 ? f.buffer[f.buffer.length - 1]!.offset + 1 : f.next
        if (r.offset === expected) f.buffer.push(r)
        else {
          f.buffer = [] // not contiguous: fall back to the store
          f.stale = true
        }
      }
      if (touched) pump(f)
    }
  }

  /** The next batch of a follower: from its in-memory buffer when it continues, else the store. */
  const nextBatch = (f: Follower): ReadonlyArray<LogRecord> => {
    const buffered = f.buffer
    f.buffer = []
    if (buffered.length > 0 && buffered[0]!.offset === f.next) return buffered
    if (buffered.length > 0) f.stale = true // a gap before the buffer: it is in the store
    if (!f.stale) return []
    const read = store.read(f.topic, f.partition, f.next, READ_BATCH)
    if (read.length < READ_BATCH) f.stale = false
    return read
  }

  /** Delivers everything after `f.next`; at most one delivery in flight per follower. */
  const pump = (f: Follower) => {
    f.wanted = true
    if (f.running || f.closed) return
    f.running = true
    void (async () => {
      while (f.wanted && !f.closed) {
        f.wanted = false
        for (;;) {
          let batch: ReadonlyArray<LogRecord>
          try {
            batch = nextBatch(f)
          } catch {
            break // the store is closing or briefly unavailable; the next poll retries
          }
          if (batch.length === 0 || f.closed) break
          f.next = batch[batch.length - 1]!.offset + 1
          await f.onRecords(batch)
        }
      }
      f.running = false
    })()
  }

  const flush = () => {
    flushScheduled = false
    const batch = pending
    pending = []
    if (batch.length === 0) return
    const appends = batch.map((p) => p.append)
    const failed = (cause: unknown) => {
      const error = toLogError(url, cause)
      for (const p of batch) p.reject(error)
    }
    const written = (records: ReadonlyArray<LogRecord>) => {
      for (const p of batch) p.resolve()
      wake(records)
    }
    if (writer?.started === true) {
      const now = Date.now()
      return void viaWriter(() => writer.appendAll(appends, now), () => store.appendAll(appends, now)).then(written, failed)
    }
    try {
      written(store.appendAll(appends, Date.now()))
    } catch (cause) {
      failed(cause)
    }
  }

  /** Events partitions with a transaction of ours on the writer's thread: how many. */
  const writing = new Map<string, number>()
  /** Of those, the ones the poller passed over: their end is checked once the writes are answered. */
  const passedOver = new Set<string>()
  const slotOf = (topic: string, partition: number) => `${topic}\u0000${partition}`

  /**
   * Runs a transaction on the writer's thread and hands its records over. If the poller passed
   * the partition over meanwhile, its end is checked then (nothing else is, on this hot path).
   */
  const transactOffThread = async (w: SqliteWriter, unit: TransactUnit, owner: string, now: number) => {
    const slot = slotOf(unit.eventsTopic, unit.partition)
    writing.set(slot, (writing.get(slot) ?? 0) + 1)
    try {
      const written = await viaWriter(() => w.transact(unit, owner, now), () => store.transact(unit, owner, now))
      if (written !== "fenced") wake(written)
      return written
    } finally {
      const left = writing.get(slot)! - 1
      if (left > 0) writing.set(slot, left)
      else {
        writing.delete(slot)
        if (passedOver.delete(slot))
          try {
            catchUp(unit.eventsTopic, unit.partition, store.endOffset(unit.eventsTopic, unit.partition))
          } catch {
            // the store could not say: the next version change reads it
          }
      }
    }
  }

  /** The offset after the last record a follower holds (delivered or buffered). */
  const knownEnd = (f: Follower): number => (f.buffer.length > 0 ? f.buffer[f.buffer.length - 1]!.offset + 1 : f.next)

  /**
   * Invariant: no follower stays behind an end offset this process has read from the store.
   * Appends of other connections are otherwise found only by the poller, which is unref'd (an
   * idle queue must not keep its process alive) — so a caller waiting for a follower to reach
   * that end (`caughtUp()`) could be the only work left in the process, and would never settle.
   */
  const catchUp = (topic: string, partition: number, end: number) => {
    for (const f of followers) {
      if (f.topic !== topic || f.partition !== partition || f.closed) continue
      if (knownEnd(f) >= end) continue
      f.stale = true
      pump(f)
    }
  }

  const poller = setInterval(() => {
    if (followers.size === 0) return
    let version: number
    try {
      version = store.dataVersion()
    } catch {
      return
    }
    if (version === lastVersion) return
    lastVersion = version
    // The writer's commits (another connection) change the version too, and their records
    // are handed over in memory: reading them back would decode every event twice. So a
    // partition is read only when its end moved past what its follower holds, and a partition
    // with a transaction of ours in flight waits for it (its answer checks the end: transactOffThread).
    for (const f of followers) {
      const slot = slotOf(f.topic, f.partition)
      if (writing.has(slot)) {
        passedOver.add(slot)
        continue
      }
      let end: number
      try {
        end = store.endOffset(f.topic, f.partition)
      } catch {
        end = Infinity // the store could not say: read, as the next poll would
      }
      if (end <= knownEnd(f)) continue
      f.stale = true
      pump(f)
    }
  }, POLL_MS)
  poller.unref()

  const append = (topic: string, records: ReadonlyArray<OutgoingRecord>): Effect.Effect<void, LogError> => {
    if (records.length === 0) return Effect.void
    const take = handOver<PendingAppend>({ topic, records })
    return Effect.async<void, LogError>((resume) => {
      if (closed) return resume(Effect.fail(new LogError({ message: `${url} is closed`, retryable: false })))
      pending.push({
        append: take(),
        resolve: () => resume(Effect.void),
        reject: (e) => resume(Effect.fail(e))
      })
      if (!flushScheduled) {
        flushScheduled = true
        setImmediate(flush)
      }
    })
  }

  const follow = (topic: string, partition: number, from: number, onRecords: Follower["onRecords"]) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        const f: Follower = { topic, partition, next: from, buffer: [], stale: true, onRecords, running: false, wanted: false, closed: false }
        followers.add(f)
        pump(f)
        return f
      }),
      (f) =>
        Effect.sync(() => {
          f.closed = true
          followers.delete(f)
        })
    ).pipe(Effect.asVoid)

  /**
   * Group membership on a local log: one member at a time owns every partition of the
   * topic. A standby member retries until the lease is free or its holder is gone.
   */
  const join = (spec: GroupSpec) =>
    Effect.gen(function* () {
      const owner = randomUUID()
      const state = { owned: [] as Array<{ partition: number; owner: PartitionOwner; follower: Follower }>, stopped: false }
      /** true: ours; false: a live other member holds it; undefined: the store could not say (disk full, busy). */
      const tryAcquire = (): boolean | undefined => {
        try {
          return store.acquireLease(spec.group, owner, process.pid, LEASE_TTL_MS, Date.now(), isAlive)
        } catch {
          return undefined
        }
      }
      const takeOwnership = async () => {
        const partitions = store.ensureTopic(spec.topic, 1)
        for (let partition = 0; partition < partitions; partition++) {
          const from = store.committed(spec.group, spec.topic, partition)
          const partitionOwner = await spec.assign(partition, from)
          if (state.stopped) {
            await partitionOwner.onRevoked()
            return
          }
          const follower: Follower = {
            topic: spec.topic,
            partition,
            next: from,
            buffer: [],
            stale: true,
            onRecords: partitionOwner.onRecords,
            running: false,
            wanted: false,
            closed: false
          }
          followers.add(follower)
          state.owned.push({ partition, owner: partitionOwner, follower })
          pump(follower)
        }
      }
      const revokeAll = async () => {
        const owned = state.owned
        state.owned = []
        for (const o of owned) {
          o.follower.closed = true
          followers.delete(o.follower)
          await o.owner.onRevoked()
        }
      }
      let acquiring: Promise<void> | undefined
      const tick = () => {
        if (state.stopped || acquiring !== undefined) return
        const held = tryAcquire()
        // A renewal that failed to write (disk full) is not a takeover: keep what we own. The
        // lease check inside every transaction still fences us if another member took over.
        if (held === undefined) return
        if (held && state.owned.length === 0) {
          acquiring = takeOwnership().finally(() => (acquiring = undefined))
        } else if (!held && state.owned.length > 0) {
          acquiring = revokeAll().finally(() => (acquiring = undefined)) // fenced: another owner took over
        }
      }
      let timer: NodeJS.Timeout | undefined
      const schedule = () => {
        timer = setTimeout(
          () => {
            tick()
            if (!state.stopped) schedule()
          },
          state.owned.length > 0 ? LEASE_RENEW_MS : STANDBY_RETRY_MS
        )
      }
      ownerTokens.set(spec.group, owner)
      tick()
      schedule()
      yield* Effect.addFinalizer(() =>
        Effect.promise(async () => {
          state.stopped = true
          clearTimeout(timer)
          if (acquiring !== undefined) await acquiring
          await revokeAll()
          try {
            store.releaseLease(spec.group, owner)
          } catch {
            // the file may already be unwritable; the lease expires by itself
          }
        })
      )
    })

  const ownerTokens = new Map<string, string>()

  /** A long read: off this thread from `SCAN_OFF_THREAD` records on. */
  const scan = (file: string, topic: string, partition: number, from: number, end: number): AsyncIterable<ScannedBatch> | Iterable<ScannedBatch> => {
    const readHere = (at: number, max: number) => {
      try {
        return store.read(topic, partition, at, max)
      } catch (cause) {
        throw toLogError(url, cause)
      }
    }
    return end - from >= SCAN_OFF_THREAD ? scanOffThread(file, topic, partition, from, end, readHere) : scanHere(from, end, readHere)
  }

  /**
   * The store's transaction, on the writer's thread when there is one. The unit is handed over
   * on the effect's run and no closure keeps it after (`handOver`): Effect keeps an effect's
   * closures reachable through minor GCs, so a closure holding the unit would carry its events
   * and views into the old generation.
   */
  const transact = (unit: TransactUnit): Effect.Effect<void, LogError | FencedError> => {
    const { eventsTopic, partition } = unit
    const take = handOver(unit)
    const written: Effect.Effect<ReadonlyArray<LogRecord> | "fenced", LogError> =
      writer?.available === true
        ? Effect.tryPromise({
            try: () => {
              const u = take()
              return transactOffThread(writer, u, ownerTokens.get(u.group) ?? "", Date.now())
            },
            catch: (cause) => toLogError(url, cause)
          })
        : attempt(() => {
            const u = take()
            const records = store.transact(u, ownerTokens.get(u.group) ?? "", Date.now())
            if (records !== "fenced") wake(records)
            return records
          })
    return Effect.flatMap(written, (r) => (r === "fenced" ? Effect.fail(new FencedError({ message: `another engine owns ${eventsTopic} partition ${partition}` })) : Effect.void))
  }

  const service: EventLogService = {
    backend,
    url,
    ensureTopic: (topic, partitions) => attempt(() => store.ensureTopic(topic, partitions)),
    partitionCount: (topic) => attempt(() => store.partitionCount(topic)),
    listTopics: () => attempt(() => store.listTopics()),
    append,
    read: (topic, partition, from, max) => attempt(() => store.read(topic, partition, from, max)),
    endOffset: (topic, partition) =>
      attempt(() => {
        const end = store.endOffset(topic, partition)
        catchUp(topic, partition, end)
        return end
      }),
    committedOffset: (group, topic, partition) => attempt(() => store.committed(group, topic, partition)),
    follow,
    join,
    transact,
    loadSnapshot: (topic, partition) => attempt(() => store.loadSnapshot(topic, partition)),
    recordsByKey: (topic, key) => attempt(() => store.readByKey(topic, key)),
    ...(file === undefined ? {} : { scan: (topic: string, partition: number, from: number, end: number) => scan(file, topic, partition, from, end) }),
    ...(store.prunedHistory === undefined ? {} : { prunedHistory: (topic: string, partition: number) => attempt(() => store.prunedHistory!(topic, partition)) })
  }

  const close = () => {
    flush()
    closed = true
    clearInterval(poller)
    for (const f of followers) f.closed = true
    followers.clear()
    writer?.close()
    store.close()
  }

  return { service, close }
}
