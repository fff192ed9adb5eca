/**
 * The worker thread of a WalCheckpointer (see sqlite-checkpointer.ts): its own connection to
 * the log's file, running one PASSIVE checkpoint CHECKPOINT_DELAY_MS after each `due`.
 */
import { parentPort, workerData } from "node:worker_threads"
import { CHECKPOINT_DELAY_MS, type CheckpointerReply, type CheckpointerRequest } from "./sqlite-checkpointer.ts"
import { openSqliteWalCheckpoint, type SqliteOptions } from "./sqlite-store.ts"
import { crossedError } from "./worker-entry.ts"

const port = parentPort
if (port === null) throw new Error("sqlite-checkpointer-worker runs only as a worker thread")
const wal = openSqliteWalCheckpoint((workerData as { options: SqliteOptions }).options)

let timer: NodeJS.Timeout | undefined

const checkpoint = (): void => {
  timer = undefined
  let reply: CheckpointerReply
  try {
    reply = { checkpointed: wal.checkpoint() }
  } catch (e) {
    reply = { error: crossedError(e) }
  }
  port.postMessage(reply)
}

port.on("message", (request: CheckpointerRequest) => {
  if (request.op === "due") {
    timer ??= setTimeout(checkpoint, CHECKPOINT_DELAY_MS)
    return
  }
  clearTimeout(timer)
  wal.close()
  port.close()
})
port.postMessage({ ready: true } satisfies CheckpointerReply)
