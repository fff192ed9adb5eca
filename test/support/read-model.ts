/**
 * A ReadModel of queue "q" on a log the test built (topics `q.events` and `q.commands`),
 * closed after each test; a reported error fails the test.
 */
import { afterEach } from "vitest"
import { KEEP_ALL } from "../../projections/retention.ts"
import type { EventLogService } from "../../src/log/event-log.ts"
import { type Change, ReadModel } from "../../src/read/read-model.ts"

export const EVENTS = "q.events"
export const COMMANDS = "q.commands"

const opened: Array<ReadModel> = []
afterEach(async () => {
  for (const m of opened.splice(0)) await m.close()
})

export const openTestReadModel = async (
  log: EventLogService,
  options: { readonly partitions: number; readonly pendingMaxAttempts?: number; readonly announce?: (change: Change) => void }
): Promise<ReadModel> => {
  const model = await ReadModel.open({
    log,
    queue: "q",
    topic: EVENTS,
    commandsTopic: COMMANDS,
    group: "q.engine",
    partitions: options.partitions,
    retention: KEEP_ALL,
    pendingMaxAttempts: options.pendingMaxAttempts ?? 1,
    announce: options.announce ?? (() => {}),
    report: (error) => {
      throw error
    }
  })
  opened.push(model)
  return model
}
