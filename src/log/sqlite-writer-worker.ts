/**
 * The worker thread of a SqliteWriter (see sqlite-writer.ts): its own connection to the
 * log's file, running the store's own transactions, one request at a time, in order.
 */
import { parentPort, workerData } from "node:worker_threads"
import type { LogRecord } from "./event-log.ts"
import { WalCheckpointer } from "./sqlite-checkpointer.ts"
import { openSqliteStore, type SqliteOptions } from "./sqlite-store.ts"
import { unpackRecords, type WriterReply, type WriterRequest } from "./sqlite-writer.ts"
import { crossedError } from "./worker-entry.ts"

const port = parentPort
if (port === null) throw new Error("sqlite-writer-worker runs only as a worker thread")
const options = (workerData as { options: SqliteOptions }).options
const store = openSqliteStore(options)
// the WAL is checkpointed beside this connection's commits, not inside them (see sqlite-checkpointer.ts)
const checkpointer = new WalCheckpointer(options, store.autoCheckpoint)
checkpointer.start()

/** Partition, offset pairs, in the order the store appended the records. */
const placements = (records: ReadonlyArray<LogRecord>): Array<number> => {
  const placed = new Array<number>(records.length * 2)
  for (let i = 0; i < records.length; i++) {
    placed[2 * i] = records[i]!.partition
    placed[2 * i + 1] = records[i]!.offset
  }
  return placed
}

const handle = (request: WriterRequest): WriterReply | undefined => {
  switch (request.op) {
    case "transact": {
      const { events, deadLetters, commands, ...rest } = request.unit
      const unit = {
        ...rest,
        events: unpackRecords(events),
        ...(deadLetters === undefined ? {} : { deadLetters: unpackRecords(deadLetters) }),
        ...(commands === undefined ? {} : { commands: unpackRecords(commands) })
      }
      const written = store.transact(unit, request.owner, request.now)
      if (written === "fenced") return { id: request.id, fenced: true }
      checkpointer.committed()
      return { id: request.id, placed: placements(written) }
    }
    case "appendAll": {
      const written = store.appendAll(request.appends.map((a) => ({ topic: a.topic, records: unpackRecords(a.records) })), request.now)
      checkpointer.committed()
      return { id: request.id, placed: placements(written) }
    }
    case "close":
      checkpointer.close()
      store.close()
      port.close()
      return undefined
  }
}

port.on("message", (request: WriterRequest) => {
  let reply: WriterReply | undefined
  try {
    reply = handle(request)
  } catch (e) {
    reply = { id: request.id, error: crossedError(e) }
  }
  if (reply !== undefined) port.postMessage(reply)
})
port.postMessage({ ready: true } satisfies WriterReply)
