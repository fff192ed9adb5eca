/**
 * Kafka crash suite (issue 6 on Kafka): two engine processes and a broker of the test's own
 * (private port and dir — the shared broker is never touched), jobs added all along, with
 * engine SIGKILLs and a broker restart interleaved. Afterwards: every job in the log is
 * completed exactly once, every add that resolved is among them, the stats equal a fresh
 * replay, and replay --verify finds nothing wrong.
 *
 * Bounded (one round, under 3 minutes); JOBLEDGER_LONG=1 runs three rounds.
 *
 *   KAFKA_BROKERS=127.0.0.1:19092 npx vitest run test/kafka-chaos.crash.test.ts
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { JobQueue, replayQueue } from "../src/index.ts"
import { engineGroupOf, topicsOf } from "../src/log/event-log.ts"
import { sleep } from "./fixtures/helpers.ts"
import { uniqueQueue, until } from "./support/backends.ts"
import { type Child, eventsOf, groupMembers, kafkaBrokerList, killHard, privateBroker, runningIn, startEngine, tagsByJob, tails } from "./support/kafka.ts"

const LONG = process.env.JOBLEDGER_LONG === "1"
const ROUNDS = LONG ? 3 : 1
const ENGINE_ENV = { CRASH_ENGINE_CONCURRENCY: "8" }

describe.skipIf(kafkaBrokerList.length === 0)(`Kafka chaos: engine kills and a broker restart (${ROUNDS} round${ROUNDS > 1 ? "s" : ""})`, () => {
  const broker = privateBroker(Number(process.env.JOBLEDGER_CHAOS_BROKER_PORT ?? 29094))
  const children: Array<Child> = []
  const queues: Array<JobQueue> = []
  beforeAll(async () => {
    await broker.start()
  }, 180_000)
  afterAll(async () => {
    await Promise.all(children.splice(0).map(killHard))
    await Promise.all(queues.splice(0).map((q) => q.close({ graceMs: 1_000 }).catch(() => undefined)))
    await broker.stop()
  }, 60_000)

  it("every job completes exactly once; stats equal a fresh replay; verify is clean", async () => {
    const t0 = Date.now()
    const name = uniqueQueue("chaos")
    const log = `kafka://${broker.bootstrap}?partitions=4`
    const group = engineGroupOf(name)
    const commands = topicsOf(name).commands
    const producer = new JobQueue(name, { log })
    queues.push(producer)
    producer.on("error", () => {})
    await producer.stats()

    let generation = 0
    const spawn = (slot: string) => {
      const child = startEngine(`${slot}${generation++}`, log, name, "slow", ENGINE_ENV)
      children.push(child)
      return child
    }
    const engines = { a: spawn("A"), b: spawn("B") }
    await until(
      async () => {
        const g = await groupMembers([broker.bootstrap], group, commands)
        return g.state === "Stable" && g.members.length === 2 && g.members.every((m) => m.partitions.length === 2)
      },
      `2 engines owning 2 partitions each\n${tails(children)}`,
      60_000
    )

    // Jobs arrive all along; each add either resolves (then its job must complete) or rejects.
    const resolved: Array<string> = []
    const rejected: Array<string> = []
    let adding = true
    let n = 0
    const adder = (async () => {
      while (adding) {
        const batch = Array.from({ length: 20 }, () => ({ name: "slow", data: { i: n++, ms: 100 } }))
        await producer.addBulk(batch).then(
          (jobs) => void resolved.push(...jobs.map((j) => j.id)),
          (e: unknown) => void rejected.push(String((e as Error)?.message ?? e))
        )
        await sleep(300)
      }
    })()
    const completed = async () => (await producer.stats().catch(() => undefined))?.completed ?? -1
    const progress = async (more: number, what: string) => {
      const from = await completed()
      await until(async () => (await completed()) >= from + more, `${what} (from ${from} completed)\n${tails(children)}`, 90_000)
    }
    /** Jobs whose handler was running in an engine when it was killed, by the engine's pid. */
    const inFlightAtKill: Array<{ readonly pid: number; readonly ids: ReadonlySet<string> }> = []
    /** Kills `child` while handlers run in it (so the kill leaves jobs active). */
    const killMidJob = async (child: Child) => {
      await until(() => runningIn(child).size > 0, `${child.name} to run jobs\n${tails(children)}`, 30_000)
      // Frozen, then killed: no handler ends in between. Once all its output is read, the jobs
      // with a `run` line and no `done` line are exactly those whose handlers the kill cut off.
      child.proc.kill("SIGSTOP")
      await killHard(child)
      await child.closed
      const running = runningIn(child)
      inFlightAtKill.push({ pid: child.proc.pid!, ids: running })
      mark(`killed ${child.name} with ${running.size} handlers running`)
    }
    const marks: Array<string> = []
    const mark = (what: string) => marks.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${what}`)

    for (let round = 0; round < ROUNDS; round++) {
      await progress(150, "jobs completing before the first kill")
      await killMidJob(engines.a)
      engines.a = spawn("A")
      await sleep(3_000)
      await broker.restart(4_000)
      mark("broker restarted")
      await progress(150, "jobs completing after the broker restart")
      await killMidJob(engines.b)
      engines.b = spawn("B")
      await progress(100, "jobs completing after the second kill")
    }
    adding = false
    await adder
    mark(`adding stopped: ${resolved.length} resolved, ${rejected.length} rejected`)

    await until(
      async () => {
        const s = await producer.stats().catch(() => undefined)
        return s !== undefined && s.waiting + s.active + s.delayed + s.paused === 0 && s.completed >= resolved.length
      },
      `every job to complete (${resolved.length} resolved adds)\n${tails(children)}`,
      120_000
    )
    mark("all completed")
    const stats = await producer.stats()
    expect(stats.failed).toBe(0)

    const events = await eventsOf(log, name)
    const tags = tagsByJob(events)
    for (const id of resolved) expect(tags.has(id), `resolved add ${id} is not in the log`).toBe(true)
    for (const [id, t] of tags) {
      expect(t.filter((x) => x === "JobCompleted"), `${id}: ${t.join(",")}`).toHaveLength(1)
      expect(t.at(-1), `${id}: ${t.join(",")}`).toBe("JobCompleted")
    }
    expect(tags.size).toBe(stats.completed)

    const replayed = await replayQueue(log, name, { verify: true })
    expect(replayed.verify?.ok, JSON.stringify(replayed.verify?.issues.slice(0, 5))).toBe(true)
    expect(replayed.undecodable).toEqual([])
    expect(replayed.stats).toEqual(stats)
    for (const e of rejected) expect(e).toMatch(/kafka:\/\/127\.0\.0\.1/)

    // The kills hit jobs in flight, and another engine finished each of them. (Counting
    // JobStalled would not prove it: a kill can land before a job's JobStarted is durable,
    // and then the job simply runs again with no JobStalled in its history.)
    const completedBy = new Map<string, unknown>()
    for (const e of events) if (e.envelope.body._tag === "JobCompleted" && e.envelope.jobId !== null)
      completedBy.set(e.envelope.jobId, (e.envelope.body.result as { by?: unknown } | null)?.by)
    expect(inFlightAtKill).toHaveLength(2 * ROUNDS)
    for (const { pid, ids } of inFlightAtKill) {
      expect(ids.size, `engine ${pid} was killed with no handler running`).toBeGreaterThan(0)
      for (const id of ids) {
        expect(completedBy.has(id), `${id} (running in killed engine ${pid}) never completed`).toBe(true)
        expect(completedBy.get(id), `${id} completed by the engine killed while running it`).not.toBe(pid)
      }
    }
    const stalled = [...tags.values()].filter((t) => t.includes("JobStalled")).length
    const handedOver = inFlightAtKill.reduce((n, k) => n + k.ids.size, 0)
    console.log(`[chaos] ${marks.join("; ")}; ${tags.size} jobs, ${handedOver} in flight at the kills, ${stalled} stalled; total ${Date.now() - t0} ms`)
  }, LONG ? 900_000 : 240_000)
})
