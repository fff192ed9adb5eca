/**
 * Parsing of log URLs: `memory:[name]`, `sqlite:<path>[?sync=full]`, `kafka://host:port[,host:port]`.
 */
import { resolve } from "node:path"

export type LogLocation =
  | { readonly kind: "memory"; readonly name: string }
  | { readonly kind: "sqlite"; readonly path: string; readonly synchronous: "NORMAL" | "FULL" }
  | { readonly kind: "kafka"; readonly brokers: ReadonlyArray<string> }

/** The log used when neither the `log` option nor `JOBLEDGER_LOG` is set. */
export const DEFAULT_LOG_URL = "sqlite:./.jobledger/jobs.db"

/** The `log` option, else `JOBLEDGER_LOG`, else the embedded SQLite file. */
export const resolveLogUrl = (option: string | undefined): string =>
  option ?? (process.env.JOBLEDGER_LOG || undefined) ?? DEFAULT_LOG_URL

const USAGE = "use 'memory:', 'sqlite:/path/to/jobs.db' or 'kafka://host:9092[,host2:9092]'"

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
    const brokers = url
      .slice("kafka://".length)
      .replace(/\/.*$/, "")
      .split(",")
      .map((b) => b.trim())
      .filter((b) => b.length > 0)
    const bad = brokers.find((b) => !/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/.test(b))
    if (brokers.length === 0 || bad !== undefined)
      throw new Error(`log '${url}': every broker must be host:port (${bad ?? "none given"}); ${USAGE}`)
    return { kind: "kafka", brokers }
  }
  throw new Error(`unknown log '${url}': ${USAGE}`)
}
