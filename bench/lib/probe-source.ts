/**
 * A producer process for the history workload's engine probe (see addJobInFreshProducer in
 * bench/peers/peer.ts): runs the peer's producer probe once with `asProbeSource` (the job it
 * adds is kept, and the jobledger SQLite copy already in tmpDir is used as is), replies over
 * IPC and exits. Unlike child.ts it never runs `cleanup`: tmpDir belongs to the measuring
 * child that forked it.
 */
import type { Measurement, Peer, RunContext, WorkloadParams } from "../peers/peer.ts"

interface SourceTask {
  peer: string
  runId: string
  tmpDir: string
  quick: boolean
  params: WorkloadParams
  msLeft: number
}

process.once("message", (task: SourceTask) => {
  const deadline = Date.now() + task.msLeft
  const log = (m: string) => process.stderr.write(`[${task.peer} probe-source ${task.runId}] ${m}\n`)
  const ctx: RunContext = { runId: task.runId, tmpDir: task.tmpDir, params: task.params, quick: task.quick, log, progress: log, msLeft: () => deadline - Date.now() }
  const reply = (m: { ok: true; measurement: Measurement } | { ok: false; error: string }) =>
    new Promise<void>((resolve) => (process.send ? process.send(m, () => resolve()) : resolve()))
  import(`../peers/${task.peer}.ts`)
    .then(async (mod: { default: Peer }) => {
      if (!mod.default.history) throw new Error(`peer ${task.peer} has no history()`)
      return reply({ ok: true, measurement: await mod.default.history(ctx) })
    })
    .catch((e: unknown) => reply({ ok: false, error: e instanceof Error ? (e.stack ?? e.message).split("\n").slice(0, 6).join("\n") : String(e) }))
    .finally(() => process.exit(0))
})
