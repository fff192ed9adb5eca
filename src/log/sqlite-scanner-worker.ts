/**
 * The worker thread of a SQLite scan (see sqlite-scanner.ts): its own connection to the log's
 * file, reading one partition's range in offset order, at most `ahead` batches before the
 * caller has taken them.
 */
import { parentPort, workerData } from "node:worker_threads"
import { openSqliteRangeReader, type SqliteRangeReader } from "./sqlite-store.ts"
import { packScanned, type ScanReply, type ScanRequest } from "./sqlite-scanner.ts"
import { crossedError } from "./worker-entry.ts"

const port = parentPort
if (port === null) throw new Error("sqlite-scanner-worker runs only as a worker thread")
const { path, topic, partition, from, end, batch, ahead } = workerData as ScanRequest

const send = (reply: ScanReply, transfer?: ReadonlyArray<ArrayBuffer>) => port.postMessage(reply, transfer === undefined ? undefined : [...transfer])

let reader: SqliteRangeReader | undefined
let next = from
let credits = ahead
let finished = false

const finish = (reply: ScanReply) => {
  finished = true
  send(reply)
  reader?.close()
  port.close()
}

/** Reads while the caller has room for more; the last batch is followed by `done`. */
const pump = () => {
  try {
    reader ??= openSqliteRangeReader(path)
    while (credits > 0 && !finished) {
      const rows = next < end ? reader.range(topic, partition, next, end, batch) : []
      if (rows.length === 0) return finish({ done: true })
      next = rows[rows.length - 1]![0] + 1
      credits--
      const packed = packScanned(rows)
      send(packed, [packed.offsets.buffer as ArrayBuffer])
    }
  } catch (e) {
    finish({ error: crossedError(e) })
  }
}

port.on("message", () => {
  credits++
  pump()
})
pump()
