/**
 * `jobledger retry`, `remove`, `cancel`, `pause` and `resume`: commands for the engine, appended to the log.
 * They return once the command is durable; the engine owning the queue applies it (now,
 * or when it starts if none is running).
 */
import type { CommandSpec } from "../args.ts"
import { CliFailure, messageOf } from "../errors.ts"

// the engine's modules load only when a command runs, so --help and usage errors are quick
const connect = () => import("../connect.ts")

export const retry: CommandSpec = {
  name: "retry",
  summary: "run a failed job again (fresh retry budget)",
  description: "Asks the engine to run the failed job <id> of <queue> again. Exits 1 if the job does not exist or is not failed.",
  positionals: [{ name: "queue" }, { name: "id" }],
  options: {},
  json: true,
  examples: ["jobledger retry email 0b6c6f9e-2f0a-4c43-9f6e-2d1f5b3b1a77"],
  run: async ({ args, log, json, out }) => {
    const [queueName, id] = args.positionals as [string, string]
    const [{ withQueue }, { InvalidOptionError }] = await Promise.all([connect(), import("../../options.ts")])
    return withQueue(queueName, log, async (queue) => {
      await queue.retry(id).catch((e) => {
        // unknown or not failed: the check failed, the command line was fine
        throw e instanceof InvalidOptionError ? new CliFailure(messageOf(e)) : e
      })
      if (json) out.json({ queue: queueName, job: id, retried: true })
      else out.line(`retry of job ${id} in queue '${queueName}' requested`)
      return 0
    })
  }
}

/** `remove` and `cancel`: a command about one job, checked against the job's state first. */
const jobCommand = (action: "remove" | "cancel"): CommandSpec => ({
  name: action,
  summary: action === "remove" ? "take a job that is not running out of the queue" : "stop a running job (it fails, no retry)",
  description:
    action === "remove"
      ? "Takes the job <id> of <queue> out of the queue: it leaves every view and count, its history stays in the log. Exits 1 if the job does not exist or is running (cancel it first)."
      : "Cancels the running job <id> of <queue>: its handler's AbortSignal fires and the job fails for good with a CancelledError (no retry). Exits 1 if the job does not exist or is not running.",
  positionals: [{ name: "queue" }, { name: "id" }],
  options: action === "cancel" ? { reason: { type: "string", value: "<text>", description: "why (in the job's error)" } } : {},
  json: true,
  examples: [`jobledger ${action} email 0b6c6f9e-2f0a-4c43-9f6e-2d1f5b3b1a77${action === "cancel" ? " --reason 'customer left'" : ""}`],
  run: async ({ args, log, json, out }) => {
    const [queueName, id] = args.positionals as [string, string]
    const reason = args.string("reason")
    const [{ withQueue }, { InvalidOptionError }] = await Promise.all([connect(), import("../../options.ts")])
    return withQueue(queueName, log, async (queue) => {
      await (action === "remove" ? queue.remove(id) : queue.cancel(id, reason)).catch((e) => {
        throw e instanceof InvalidOptionError ? new CliFailure(messageOf(e)) : e
      })
      if (json) out.json({ queue: queueName, job: id, [action === "remove" ? "removed" : "cancelled"]: true })
      else out.line(`${action === "remove" ? "removal" : "cancellation"} of job ${id} in queue '${queueName}' requested`)
      return 0
    })
  }
})

export const remove = jobCommand("remove")
export const cancel = jobCommand("cancel")

const queueCommand = (action: "pause" | "resume"): CommandSpec => ({
  name: action,
  summary: action === "pause" ? "stop starting jobs (running ones finish)" : "start jobs again after pause",
  description:
    action === "pause"
      ? "Pauses <queue>: running jobs finish, waiting jobs become paused and none starts until 'jobledger resume'."
      : "Resumes <queue> after 'jobledger pause': its paused jobs are waiting again and start as usual.",
  positionals: [{ name: "queue" }],
  options: {},
  json: true,
  examples: [`jobledger ${action} email`],
  run: async ({ args, log, json, out }) => {
    const [queueName] = args.positionals as [string]
    const { withQueue } = await connect()
    return withQueue(queueName, log, async (queue) => {
      await (action === "pause" ? queue.pause() : queue.resume())
      if (json) out.json({ queue: queueName, paused: action === "pause" })
      else out.line(`queue '${queueName}' ${action === "pause" ? "paused" : "resumed"} (the engine applies it)`)
      return 0
    })
  }
})

export const pause = queueCommand("pause")
export const resume = queueCommand("resume")
