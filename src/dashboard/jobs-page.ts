/**
 * One page of a job list: the jobs a read model holds (live ones and the retained finished
 * ones — never the history), newest update first, filtered by a search on id and name, cut
 * at a cursor.
 *
 * Invariants:
 * - The order is total and stable: `updatedAt` descending, then `id` ascending. A cursor is
 *   the (updatedAt, id) of the last job of a page, so the next page starts strictly after it
 *   whatever moved meanwhile: a job never shows twice on consecutive pages; one that changed
 *   state moves to the top of its new list.
 * - A page costs one pass over the held jobs of the state plus a selection of `limit` of
 *   them (a bounded heap), not a sort of the whole list.
 * - Pure: the cursor is opaque to clients but carries nothing secret.
 */
import type { JobView } from "../../projections/job-view.ts"
import { badRequest } from "./http.ts"

/** What a list shows of a job: no data, no result (those can be large: the job page has them). */
export interface JobSummary {
  readonly id: string
  readonly name: string
  readonly state: string
  readonly attemptsMade: number
  readonly maxAttempts: number
  readonly priority: number
  readonly createdAt: number
  readonly updatedAt: number
  readonly runAt: number
  readonly error?: string
}

export interface JobsPage {
  readonly jobs: ReadonlyArray<JobSummary>
  /** The cursor of the next page; absent on the last one. */
  readonly next?: string
  /** How many held jobs match the search (all pages). */
  readonly matched: number
}

interface Position {
  readonly updatedAt: number
  readonly id: string
}

export const encodeCursor = (p: Position): string => Buffer.from(JSON.stringify([p.updatedAt, p.id])).toString("base64url")

export const decodeCursor = (raw: string): Position => {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(raw, "base64url").toString("utf8"))
    if (Array.isArray(parsed) && parsed.length === 2 && Number.isFinite(parsed[0]) && typeof parsed[1] === "string") return { updatedAt: parsed[0] as number, id: parsed[1] }
  } catch {
    // fall through
  }
  throw badRequest("cursor is not one this dashboard gave out (take it from a page's 'next')")
}

/** True when `a` comes before `b` in list order (newest first, then id). */
const before = (a: Position, b: Position): boolean => a.updatedAt > b.updatedAt || (a.updatedAt === b.updatedAt && a.id < b.id)

/** The fields a summary is made of (a JobView or a public Job). */
type Summarized = Pick<JobView, "id" | "name" | "state" | "attemptsMade" | "maxAttempts" | "priority" | "createdAt" | "updatedAt" | "runAt"> & {
  readonly error?: { readonly message: string } | undefined
}

export const summaryOf = (v: Summarized): JobSummary => ({
  id: v.id,
  name: v.name,
  state: v.state,
  attemptsMade: v.attemptsMade,
  maxAttempts: v.maxAttempts,
  priority: v.priority,
  createdAt: v.createdAt,
  updatedAt: v.updatedAt,
  runAt: v.runAt,
  ...(v.error === undefined ? {} : { error: v.error.message.length > 200 ? `${v.error.message.slice(0, 199)}…` : v.error.message })
})

/** A job matches a search when its id or its name contains it (case-insensitive). */
export const matches = (v: { readonly id: string; readonly name: string }, search: string): boolean => {
  const s = search.toLowerCase()
  return v.id.toLowerCase().includes(s) || v.name.toLowerCase().includes(s)
}

export const pageOfJobs = (
  views: Iterable<JobView>,
  options: { readonly limit: number; readonly cursor?: string; readonly search?: string }
): JobsPage => {
  const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor)
  const search = options.search === undefined || options.search === "" ? undefined : options.search
  // the first limit+1 after the cursor, kept sorted (limit is small: ≤ 500)
  const top: Array<JobView> = []
  const keep = options.limit + 1
  let matched = 0
  for (const v of views) {
    if (search !== undefined && !matches(v, search)) continue
    matched++
    if (after !== undefined && !before(after, v)) continue
    if (top.length === keep && !before(v, top[keep - 1]!)) continue
    let i = top.length
    while (i > 0 && before(v, top[i - 1]!)) i--
    top.splice(i, 0, v)
    if (top.length > keep) top.pop()
  }
  const shown = top.slice(0, options.limit)
  const last = shown.at(-1)
  return {
    jobs: shown.map(summaryOf),
    ...(top.length > options.limit && last !== undefined ? { next: encodeCursor(last) } : {}),
    matched
  }
}
