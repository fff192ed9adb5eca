/**
 * Layers providing the EventLog service, one per backend, and the choice by URL.
 *
 * Local logs are shared within a process: two queues opened on the same SQLite file (or the
 * same `memory:` name) use one connection, so each sees the other's appends at once. The
 * connection closes when the last user's scope closes.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { EventLog, type EventLogService, LogError } from "./event-log.ts"
import { makeLocalLog, toLogError } from "./local-log.ts"
import { type KafkaOptions, resolveKafkaConnection, validateKafkaOptions } from "./kafka-options.ts"
import { type KafkaLocation, type LogLocation, parseLogUrl } from "./log-url.ts"
import { openMemoryStore } from "./memory-store.ts"
import { openSqliteStore } from "./sqlite-store.ts"
import { SqliteWriter } from "./sqlite-writer.ts"

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
          makeLocalLog(
            "sqlite",
            `sqlite:${path}`,
            openSqliteStore({ path, synchronous }),
            // a file other threads can open; `:memory:` is this connection's alone
            path === ":memory:" ? undefined : new SqliteWriter({ path, synchronous }),
            path === ":memory:" ? undefined : path
          )
        )
      ).pipe(Effect.catchAllDefect((cause) => Effect.fail(toLogError(`sqlite:${path}`, cause))))
    )
}

/** How a log connects, beyond its URL: the `kafka` option (ignored by local logs). */
export interface LogSettings {
  readonly kafka?: KafkaOptions | undefined
}

const kafkaLayer = (location: KafkaLocation, settings: LogSettings): Layer.Layer<EventLog, LogError> => {
  // resolved now, synchronously: bad settings or missing credentials throw at construction
  const connection = resolveKafkaConnection(location, settings.kafka)
  return Layer.unwrapEffect(
    Effect.tryPromise({
      try: () => import("./kafka-log.ts"),
      catch: (cause) => new LogError({ message: `kafka backend failed to load: ${String(cause)}`, retryable: false })
    }).pipe(
      Effect.map((m) =>
        m.KafkaLog.layer(connection, {
          ...(location.replicationFactor === undefined ? {} : { replicationFactor: location.replicationFactor }),
          ...(location.partitions === undefined ? {} : { partitions: location.partitions }),
          ...(location.retainMs === undefined ? {} : { retainMs: location.retainMs })
        })
      )
    )
  )
}

/**
 * The EventLog layer for a parsed location. Throws a clear Error (no secret in it) for
 * Kafka settings that are invalid, contradict the URL, or lack credentials.
 */
export const layerFor = (location: LogLocation, settings: LogSettings = {}): Layer.Layer<EventLog, LogError> => {
  validateKafkaOptions(settings.kafka)
  switch (location.kind) {
    case "memory":
      return MemoryLog.layer(location.name)
    case "sqlite":
      return SqliteLog.layer(location.path, location.synchronous)
    case "kafka":
      return kafkaLayer(location, settings)
  }
}

/** The EventLog layer for a URL (throws a clear Error for a malformed URL or bad settings). */
export const layerFromUrl = (url: string, settings: LogSettings = {}) => layerFor(parseLogUrl(url), settings)
