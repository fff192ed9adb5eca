/**
 * Layers providing the EventLog service, one per backend, and the choice by URL.
 *
 * Local logs are shared within a process: two queues opened on the same SQLite file (or the
 * same `memory:` name) use one connection, so each sees the other's appends at once. The
 * connection closes when the last user's scope closes.
 */
import { Effect, Layer } from "effect"
import { EventLog, type EventLogService, LogError } from "./event-log.ts"
import { makeLocalLog, toLogError } from "./local-log.ts"
import { type LogLocation, parseLogUrl } from "./log-url.ts"
import { openMemoryStore } from "./memory-store.ts"
import { openSqliteStore } from "./sqlite-store.ts"

interface Shared {
  readonly service: EventLogService
  readonly close: () => void
  users: number
}
const shared = new Map<string, Shared>()

const acquireLocal = (key: string, open: () => { service: EventLogService; close: () => void }) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let entry = shared.get(key)
      if (entry === undefined) {
        entry = { ...open(), users: 0 }
        shared.set(key, entry)
      }
      entry.users++
      return entry
    }),
    (entry) =>
      Effect.sync(() => {
        if (--entry.users > 0) return
        shared.delete(key)
        entry.close()
      })
  ).pipe(Effect.map((entry) => entry.service))

export const MemoryLog = {
  /** A process-local log; queues using the same `name` share it. */
  layer: (name = ""): Layer.Layer<EventLog> =>
    Layer.scoped(
      EventLog,
      acquireLocal(`memory:${name}`, () => makeLocalLog("memory", `memory:${name}`, openMemoryStore()))
    )
}

export const SqliteLog = {
  /** A log in a SQLite file (WAL); created with its directory when missing. */
  layer: (path: string, synchronous: "NORMAL" | "FULL" = "NORMAL"): Layer.Layer<EventLog, LogError> =>
    Layer.scoped(
      EventLog,
      Effect.suspend(() =>
        acquireLocal(`sqlite:${path}`, () =>
          makeLocalLog("sqlite", `sqlite:${path}`, openSqliteStore({ path, synchronous }))
        )
      ).pipe(Effect.catchAllDefect((cause) => Effect.fail(toLogError(`sqlite:${path}`, cause))))
    )
}

const kafkaLayer = (location: Extract<LogLocation, { kind: "kafka" }>): Layer.Layer<EventLog, LogError> =>
  Layer.unwrapEffect(
    Effect.tryPromise({
      try: () => import("./kafka-log.ts"),
      catch: (cause) => new LogError({ message: `kafka backend failed to load: ${String(cause)}`, retryable: false })
    }).pipe(
      Effect.map((m) =>
        m.KafkaLog.layer(location.brokers, {
          ...(location.replicationFactor === undefined ? {} : { replicationFactor: location.replicationFactor }),
          ...(location.partitions === undefined ? {} : { partitions: location.partitions })
        })
      )
    )
  )

/** The EventLog layer for a parsed location. */
export const layerFor = (location: LogLocation): Layer.Layer<EventLog, LogError> => {
  switch (location.kind) {
    case "memory":
      return MemoryLog.layer(location.name)
    case "sqlite":
      return SqliteLog.layer(location.path, location.synchronous)
    case "kafka":
      return kafkaLayer(location)
  }
}

/** The EventLog layer for a URL (throws a clear Error for a malformed URL). */
export const layerFromUrl = (url: string) => layerFor(parseLogUrl(url))
