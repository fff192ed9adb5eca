/**
 * Crash recovery on Kafka: three engine processes share a queue's partitions through the
 * engine group (`jobledger.<queue>.engine`); one is SIGKILLed mid-run. Its partitions move
 * to the two others after the session timeout, its active jobs come back as stalled, and
 * every job ends completed exactly once in the log.
 *
 *   KAFKA_BROKERS=127.0.0.1:19092 npx vitest run test/kafka-cluster.crash.test.ts
 */
import { afterEach, describe, expect, it } from "vitest"
import { JobQueue, replayQueue } from "../src/index.ts"
import { engineGroupOf, topicsOf } from "../src/log/event-log.ts"
import { uniqueQueue, until } from "./support/backends.ts"
import {
  type Child,
  eventsOf,
  groupMembers,
  kafkaBrokerList,
  killHard,
  runsOf,
  startEngine,
  tagsByJob,
  tails
} from "./support/kafka.ts"

const JOBS = 2_000
const PARTITIONS = 6

describe.skipIf(kafkaBrokerList.length === 0)("Kafka cluster crash (three engines, one SIGKILLed)", () => {
  const children: Array<Child> = []
  const queues: Array<JobQueue> = []
  afterEach(async () => {
    await Promise.all(children.splice(0).map(killHard))
    await Promise.all(queues.splice(0).map((q) => q.close({ graceMs: 1_000 }).catch(() => undefined)))
  })

  it(`${JOBS} jobs over ${PARTITIONS} partitions: every job completes exactly once; only the killed engine's active jobs run again`, async () => {
    const t0 = Date.now()
    const name = uniqueQueue("cluster")
    const log = `kafka://${kafkaBrokerList.join(",")}?partitions=${PARTITIONS}`
    const group = engineGroupOf(name)
    const commands = topicsOf(name).commands

    // the parent only produces and observes
    const producer = new JobQueue(name, { log })
    queues.push(producer)
    producer.on("error", () => {})
    expect(await producer.stats()).toMatchObject({ waiting: 0, completed: 0 })

    for (const n of ["A", "B", "C"]) children.push(startEngine(n, log, name, "slow", { CRASH_ENGINE_CONCURRENCY: "10" }))
    // The group settles before any job exists: 3 members, 2 partitions each.
    await until(
      async () => {
        const g = await groupMembers(kafkaBrokerList, group, commands)
        return g.state === "Stable" && g.members.length === 3 && g.members.every((m) => m.partitions.length === PARTITIONS / 3)
      },
      `3 engines owning ${PARTITIONS / 3} partitions each\n${tails(children)}`,
      60_000
    )
    const settled = await groupMembers(kafkaBrokerList, group, commands)
    expect(settled.protocol).toBe("JobledgerSticky")
    const tSettled = Date.now()

    const all: Array<string> = []
    for (let i = 0; i < JOBS; i += 250) {
      const jobs = await producer.addBulk(Array.from({ length: Math.min(250, JOBS - i) }, (_, k) => ({ name: "slow", data: { i: i + k, ms: 25 } })))
      all.push(...jobs.map((j) => j.id))
    }
    expect(new Set(all).size).toBe(JOBS)

    await until(async () => (await producer.stats()).completed >= JOBS / 4, `a quarter of the jobs completed\n${tails(children)}`, 60_000)
    const [a, victim, c] = children as [Child, Child, Child]
    await until(() => [...runsOf(victim).keys()].length > 0, "the victim to run jobs", 10_000)
    victim.proc.kill("SIGKILL")
    expect((await victim.exited).signal).toBe("SIGKILL")
    const tKill = Date.now()
    const completedAtKill = (await producer.stats()).completed
    const startedByVictim = runsOf(victim)

    await until(async () => (await producer.stats()).completed === JOBS, `all ${JOBS} jobs completed after the kill\n${tails(children)}`, 120_000)
    const tDone = Date.now()
    const stats = await producer.stats()
    expect(stats).toEqual({ waiting: 0, active: 0, completed: JOBS, failed: 0, delayed: 0, paused: 0 })

    // the survivors kept their partitions and took the victim's
    const after = await groupMembers(kafkaBrokerList, group, commands)
    expect(after.members).toHaveLength(2)
    expect(after.members.flatMap((m) => m.partitions).sort()).toEqual([0, 1, 2, 3, 4, 5])

    // the log: exactly one JobCompleted per job, last; JobStalled only for the victim's jobs
    const events = await eventsOf(log, name)
    const tags = tagsByJob(events)
    expect(tags.size).toBe(JOBS)
    const stalled: Array<string> = []
    for (const id of all) {
      const t = tags.get(id) ?? []
      expect(t.filter((x) => x === "JobCompleted"), `${id}: ${t.join(",")}`).toHaveLength(1)
      expect(t.at(-1)).toBe("JobCompleted")
      if (t.includes("JobStalled")) stalled.push(id)
    }
    for (const id of stalled) expect(startedByVictim.has(id), `${id} stalled but never ran on the killed engine`).toBe(true)

    // handler runs: twice at most, and twice only for a job that was on the killed engine
    const runs = new Map<string, number>()
    for (const child of [a, victim, c]) for (const [id, n] of runsOf(child)) runs.set(id, (runs.get(id) ?? 0) + n)
    expect(all.filter((id) => !runs.has(id))).toEqual([])
    const rerun = all.filter((id) => runs.get(id)! > 1)
    for (const id of rerun) {
      expect(runs.get(id), id).toBe(2)
      expect(startedByVictim.has(id), `${id} ran twice but never on the killed engine`).toBe(true)
      // The handler starts as JobStarted is handed to the appender, before it is durable: a job
      // killed in that window has one JobStarted (the survivor's) and no JobStalled.
      const t = tags.get(id)!
      expect(stalled.includes(id) || t.filter((x) => x === "JobStarted").length === 1, `${id} ran twice: ${t.join(",")}`).toBe(true)
    }
    expect(rerun.length).toBeGreaterThan(0)

    // a fresh replay agrees with the live projection and finds nothing wrong
    const replayed = await replayQueue(log, name, { verify: true })
    expect(replayed.verify?.ok, JSON.stringify(replayed.verify?.issues.slice(0, 5))).toBe(true)
    expect(replayed.undecodable).toEqual([])
    expect(replayed.stats).toEqual(stats)
    expect(replayed.partitions).toBe(PARTITIONS)

    console.log(
      `[cluster] group settled in ${tSettled - t0} ms; killed engine B at ${completedAtKill}/${JOBS} completed; ` +
        `all completed ${tDone - tKill} ms after the kill; ${stalled.length} stalled, ${rerun.length} re-run; total ${Date.now() - t0} ms`
    )
  }, 240_000)
})
