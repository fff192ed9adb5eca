/**
 * Child-process entry: runs exactly one task for one peer, reports over IPC,
 * exits. Started by bench/run.ts with `node --import tsx --expose-gc`.
 *
 * Message in:  ChildTask
 * Message out: ChildReply (exactly one)
 */
import { mkdirSync } from "node:fs"
import type { Measurement, Peer, PeerInfo, RunContext, WorkloadParams } from "../peers/peer.ts"

export type TaskKind = "info" | "run" | "prepare" | "cleanup"
export type Method = "drain" | "addSerial" | "latency" | "replay" | "memory" | "history"

export interface ChildTask {
  kind: TaskKind
  peer: string
  method?: Method
  runId: string
  tmpDir: string
  params: WorkloadParams
  quick: boolean
  /** the harness kills the child after this long */
  timeoutMs: number
}

/** Sent any number of times before the reply: a line for the harness's console. */
export interface ChildProgress {
  progress: string
}

export type ChildReply =
  | { ok: true; info?: PeerInfo; measurement?: Measurement; prep?: Record<string, number | string>; cleanupError?: string; childPeakRssMiB: number }
  | { ok: false; error: string; cleanupError?: string }

const send = (msg: ChildReply) =>
  new Promise<void>((resolve) => {
    if (!process.send) {
      console.log(JSON.stringify(msg))
      resolve()
    } else process.send(msg, () => resolve())
  })

async function main(task: ChildTask): Promise<ChildReply> {
  const log = (m: string) => process.stderr.write(`[${task.peer} ${task.method ?? task.kind} ${task.runId}] ${m}\n`)
  // Leave time for cleanup before the harness's SIGKILL.
  const deadline = Date.now() + task.timeoutMs - Math.min(30_000, task.timeoutMs / 5)
  const progress = (m: string) => {
    log(m)
    process.send?.({ progress: m } satisfies ChildProgress)
  }
  const ctx: RunContext = { runId: task.runId, tmpDir: task.tmpDir, params: task.params, quick: task.quick, log, progress, msLeft: () => deadline - Date.now() }
  mkdirSync(task.tmpDir, { recursive: true })
  let peer: Peer
  try {
    peer = ((await import(`../peers/${task.peer}.ts`)) as { default: Peer }).default
  } catch (e) {
    return { ok: false, error: `cannot load peer ${task.peer}: ${errText(e)}` }
  }
  const peakMiB = () => (process.resourceUsage().maxRSS * 1024) / (1024 * 1024)

  if (task.kind === "cleanup") {
    try {
      await peer.cleanup(ctx)
      return { ok: true, childPeakRssMiB: peakMiB() }
    } catch (e) {
      return { ok: false, error: errText(e) }
    }
  }

  let reply: ChildReply
  try {
    if (task.kind === "info") reply = { ok: true, info: await peer.info(ctx), childPeakRssMiB: 0 }
    else if (task.kind === "prepare") {
      const prepare = task.method === "history" ? peer.prepareHistory : peer.prepareReplay
      if (!prepare) throw new Error(`peer has no ${task.method === "history" ? "prepareHistory" : "prepareReplay"}`)
      reply = { ok: true, prep: await prepare.call(peer, ctx), childPeakRssMiB: 0 }
    } else {
      const fn = peer[task.method!]
      if (typeof fn !== "function") throw new Error(`peer does not implement ${task.method}`)
      reply = { ok: true, measurement: await fn.call(peer, ctx), childPeakRssMiB: 0 }
    }
  } catch (e) {
    reply = { ok: false, error: errText(e) }
  }
  if (reply.ok) reply.childPeakRssMiB = peakMiB()
  // What a successful preparation built (a replay log, a history) is for the measurements that
  // follow; the harness removes it when they are done. Everything else is removed now.
  if (task.kind === "prepare" && reply.ok) return reply
  try {
    await peer.cleanup(ctx)
  } catch (e) {
    reply.cleanupError = errText(e)
  }
  return reply
}

function errText(e: unknown): string {
  if (e instanceof Error) return (e.stack ?? e.message).split("\n").slice(0, 6).join("\n")
  return String(e)
}

process.on("unhandledRejection", (e) => {
  process.stderr.write(`unhandledRejection: ${errText(e)}\n`)
})

process.once("message", (task: ChildTask) => {
  main(task)
    .then(send)
    .catch((e) => send({ ok: false, error: errText(e) }))
    .finally(() => process.exit(0))
})
