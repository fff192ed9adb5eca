/**
 * Query parameters of the dashboard's API, checked before use: a bad one is a 400 naming the
 * parameter, what it must be and what it got — never a stack trace, never a silent default.
 */
import type { JobStateName } from "../../machines/schema.ts"
import { badRequest } from "./http.ts"

export const STATES: ReadonlyArray<JobStateName> = ["waiting", "active", "completed", "failed", "delayed", "paused"]
export const MAX_LIMIT = 500

/** The query of one request, refusing parameters the route does not know. */
export class Query {
  constructor(
    private readonly params: URLSearchParams,
    allowed: ReadonlyArray<string>
  ) {
    for (const key of new Set(params.keys())) {
      if (!allowed.includes(key)) throw badRequest(`unknown parameter '${key}'${allowed.length === 0 ? " (this route takes none)" : ` (this route takes ${allowed.join(", ")})`}`)
      if (params.getAll(key).length > 1) throw badRequest(`parameter '${key}' is given more than once`)
    }
  }

  string(name: string, max = 256): string | undefined {
    const raw = this.params.get(name)
    if (raw === null) return undefined
    if (raw.length > max) throw badRequest(`${name} must be at most ${max} characters (got ${raw.length})`)
    return raw
  }

  /** A whole number in [min, max]; `fallback` when absent. */
  int(name: string, min: number, max: number, fallback: number): number {
    const raw = this.params.get(name)
    if (raw === null) return fallback
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) throw badRequest(`${name} must be a whole number from ${min} to ${max} (got '${truncate(raw)}')`)
    return Number(raw)
  }

  flag(name: string): boolean {
    const raw = this.params.get(name)
    if (raw === null || raw === "0" || raw === "false") return false
    if (raw === "" || raw === "1" || raw === "true") return true
    throw badRequest(`${name} must be 1, true, 0 or false (got '${truncate(raw)}')`)
  }

  state(name = "state"): JobStateName | undefined {
    const raw = this.params.get(name)
    if (raw === null || raw === "" || raw === "all") return undefined
    if (!STATES.includes(raw as JobStateName)) throw badRequest(`${name} must be one of ${STATES.join(", ")} or all (got '${truncate(raw)}')`)
    return raw as JobStateName
  }

  /** `until`, as `jobledger replay --until` reads it: a whole number is an offset, else an ISO 8601 time. */
  until(name = "until"): { readonly untilOffset: number } | { readonly untilTime: number } | undefined {
    const raw = this.params.get(name)
    if (raw === null || raw === "") return undefined
    if (/^\d{1,15}$/.test(raw)) return { untilOffset: Number(raw) }
    const time = /^\d{4}-\d{2}-\d{2}/.test(raw) ? Date.parse(raw) : Number.NaN
    if (!Number.isFinite(time)) throw badRequest(`${name} must be an offset (e.g. 1200) or an ISO 8601 time (e.g. 2025-06-01T12:00:00Z), got '${truncate(raw)}'`)
    return { untilTime: time }
  }
}

const truncate = (s: string): string => (s.length > 40 ? `${s.slice(0, 39)}…` : s)

/** A decoded path segment; a malformed escape is a 400. */
export const segment = (raw: string): string => {
  try {
    return decodeURIComponent(raw)
  } catch {
    throw badRequest(`malformed path segment '${truncate(raw)}'`)
  }
}
