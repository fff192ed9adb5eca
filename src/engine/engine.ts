/**
 * The engine of one queue in this process: a member of the queue's engine group that runs
 * one PartitionActor per partition it owns.
 *
 * Invariant: an actor exists for partition p exactly while this member owns p; it is
 * restored from the log before it sees a command, and stopped (jobs finished or handed
 * back, everything durable) before ownership is given up.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { engineGroupOf, type EventLogService, topicsOf } from "../log/event-log.ts"
import type { EngineContext } from "./engine-context.ts"
import { PartitionActor } from "./partition-actor.ts"
import { run } from "../run.ts"
import { runPromise } from "../effect-runtime.ts"

export type EngineConfig = Omit<EngineContext, "group" | "topics" | "queueResumed">

/**
 * How long a resume seen by one partition holds starts while the engine's other partitions
 * have not seen it yet. Pause and resume reach every partition as separate records; without
 * the hold, the first partition to resume would start its jobs before higher-priority jobs
 * of the others become eligible.
 */
const RESUME_HOLD_MS = 1_000

export class Engine {
  private readonly actors = new Map<number, PartitionActor>()
  /** The partitions of the queue's topics: the rate limit's shares are of these. */
  private totalPartitions = 1
  private readonly ctx: EngineContext

  private constructor(
    config: EngineConfig,
    private readonly scope: Scope.CloseableScope,
    private readonly graceMs: { value: number }
  ) {
    this.ctx = {
      ...config,
      group: engineGroupOf(config.queue),
      topics: topicsOf(config.queue),
      queueResumed: () => this.queueResumed()
    }
  }

  /** Joins the engine group; partitions arrive (and are restored) as the log assigns them. */
  static async start(config: EngineConfig, log: EventLogService): Promise<Engine> {
    const scope = await runPromise(Scope.make())
    const engine = new Engine(config, scope, { value: 30_000 })
    engine.totalPartitions = (await run(log.partitionCount(engine.ctx.topics.commands))) ?? 1
    await runPromise(
      Scope.extend(
        log.join({
          group: engine.ctx.group,
          topic: engine.ctx.topics.commands,
          assign: (partition) => engine.assign(partition)
        }),
        scope
      )
    )
    return engine
  }

  /** Partitions owned right now. */
  get partitions(): ReadonlyArray<number> {
    return [...this.actors.keys()]
  }

  private async assign(partition: number) {
    const actor = new PartitionActor(this.ctx, partition)
    this.actors.set(partition, actor)
    try {
      await actor.restore()
    } catch (error) {
      // Not restored means not ours: the log will offer the partition again.
      this.actors.delete(partition)
      await actor.stop(0)
      throw error
    }
    this.reshare()
    return {
      onRecords: actor.onRecords,
      onRevoked: async () => {
        this.actors.delete(partition)
        this.reshare() // its share leaves with it, before its jobs are done
        await actor.stop(this.graceMs.value)
      }
    }
  }

  private reshare(): void {
    this.ctx.pool.setShare([...this.actors.keys()], this.totalPartitions)
  }

  /** Starts wait until every owned partition has seen the resume, or RESUME_HOLD_MS. */
  private queueResumed(): void {
    const somePartitionPaused = () => [...this.actors.values()].some((actor) => actor.queuePaused)
    if (somePartitionPaused()) this.ctx.pool.holdWhile(somePartitionPaused, RESUME_HOLD_MS)
  }

  /**
   * Leaves the group: stops taking jobs, waits up to `graceMs` for running ones, hands the
   * rest back as stalled, and makes everything decided durable.
   */
  async close(graceMs: number): Promise<void> {
    this.graceMs.value = graceMs
    await runPromise(Scope.close(this.scope, Exit.void))
    this.ctx.pool.stop()
  }
}
