/**
 * New job ids: UUID version 7 (RFC 9562) — 48 bits of milliseconds, then random bits, in the
 * standard 8-4-4-4-12 form. Ids made later sort after earlier ones (within a millisecond, in
 * an unspecified order), which keeps the log's index by job id (`records_by_key`) appending
 * near its end instead of writing pages all over it: a random UUID v4 per job cost the SQLite
 * drain about a third of its throughput (measured, see bench/RESULTS.md).
 */
import { randomFillSync } from "node:crypto"

const pool = Buffer.alloc(16 * 256)
let next = pool.length

/** A fresh UUID v7. */
export const newJobId = (now = Date.now()): string => {
  if (next === pool.length) {
    randomFillSync(pool)
    next = 0
  }
  const b = pool.subarray(next, next + 16)
  next += 16
  // 48-bit big-endian milliseconds
  b[0] = Math.floor(now / 2 ** 40) & 0xff
  b[1] = Math.floor(now / 2 ** 32) & 0xff
  b[2] = (now >>> 24) & 0xff
  b[3] = (now >>> 16) & 0xff
  b[4] = (now >>> 8) & 0xff
  b[5] = now & 0xff
  b[6] = (b[6]! & 0x0f) | 0x70 // version 7
  b[8] = (b[8]! & 0x3f) | 0x80 // variant 10
  const h = b.toString("hex")
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}
