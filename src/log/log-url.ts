/**
 * Parsing of log URLs: `memory:[name]`, `sqlite:<path>[?sync=full]`,
 * `kafka://host:port[,host:port][?replication=N&partitions=N]`.
 */
import { resolve } from "node:path"

export type LogLocation =
  | { readonly kind: "memory"; readonly name: string }
  | { readonly kind: "sqlite"; readonly path: string; readonly synchronous: "NORMAL" | "FULL" }
  | {
      readonly kind: "kafka"
      readonly brokers: ReadonlyArray<string>
      /** Replication factor of the topics the log creates (default: the cluster's). */
      readonly replicationFactor?: number
      /** Partitions of the commands and events topics the log creates (default: the queue's, 3). */
      readonly partitions?: number
    }

/** The log used when neither the `log` option nor `JOBLEDGER_LOG` is set. */
export const DEFAULT_LOG_URL = "sqlite:./.jobledger/jobs.db"

/** The `log` option, else `JOBLEDGER_LOG`, else the embedded SQLite file. */
export const resolveLogUrl = (option: string | undefined): string =>
  option ?? (process.env.JOBLEDGER_LOG || undefined) ?? DEFAULT_LOG_URL

const USAGE = "use 'memory:', 'sqlite:/path/to/jobs.db' or 'kafka://host:9092[,host2:9092][?replication=3&partitions=6]'"

const KAFKA_PARAMS = ["replication", "partitions"] as const

/** A whole number in [1, max] from a query parameter, or a clear Error. */
const positiveInt = (url: string, name: string, raw: string, max: number): number => {
  const n = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN
  if (!Number.isSafeInteger(n) || n < 1 || n > max)
    throw new Error(`log '${url}': ${name} must be a whole number from 1 to ${max} (got '${raw}')`)
  return n
}

/** Parses a log URL; throws an Error that says what a valid one looks like. */
export const parseLogUrl = (url: string): LogLocation => {
  if (typeof url !== "string" || url.length === 0) throw new Error(`log must be a non-empty URL string: ${USAGE}`)
  if (url === "memory:" || url.startsWith("memory:")) return { kind: "memory", name: url.slice("memory:".length) }
  if (url.startsWith("sqlite:")) {
    const [rawPath = "", query = ""] = url.slice("sqlite:".length).replace(/^\/\/(?=\/)/, "").split("?")
    if (rawPath.length === 0) throw new Error(`log '${url}' has no file path: ${USAGE}`)
    const params = new URLSearchParams(query)
    const sync = (params.get("sync") ?? "normal").toUpperCase()
    if (sync !== "NORMAL" && sync !== "FULL") throw new Error(`log '${url}': sync must be 'normal' or 'full'`)
    return { kind: "sqlite", path: rawPath === ":memory:" ? rawPath : resolve(rawPath), synchronous: sync }
  }
  if (url.startsWith("kafka://")) {
    const rest = url.slice("kafka://".length)
    const q = rest.indexOf("?")
    const hosts = q < 0 ? rest : rest.slice(0, q)
    const params = new URLSearchParams(q < 0 ? "" : rest.slice(q + 1))
    const unknown = [...params.keys()].find((k) => !(KAFKA_PARAMS as ReadonlyArray<string>).includes(k))
    if (unknown !== undefined) throw new Error(`log '${url}': unknown parameter '${unknown}' (kafka takes ${KAFKA_PARAMS.join(", ")})`)
    for (const name of KAFKA_PARAMS)
      if (params.getAll(name).length > 1) throw new Error(`log '${url}': ${name} is given more than once`)
    const replication = params.get("replication")
    const partitions = params.get("partitions")
    const brokers = hosts
      .replace(/\/.*$/, "")
      .split(",")
      .map((b) => b.trim())
      .filter((b) => b.length > 0)
    const bad = brokers.find((b) => !/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/.test(b))
    if (brokers.length === 0 || bad !== undefined)
      throw new Error(`log '${url}': every broker must be host:port (${bad ?? "none given"}); ${USAGE}`)
    return {
      kind: "kafka",
      brokers,
      ...(replication === null ? {} : { replicationFactor: positiveInt(url, "replication", replication, 32_767) }),
      ...(partitions === null ? {} : { partitions: positiveInt(url, "partitions", partitions, 10_000) })
    }
  }
  throw new Error(`unknown log '${url}': ${USAGE}`)
}
