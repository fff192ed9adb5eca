/**
 * A schedule survives its engines: two engine processes on one log (SQLite: one owns the
 * lease, the other stands by; Kafka: the schedule's partition has one owner), the owner
 * SIGKILLed at random moments across ticks and restarted. Afterwards the log holds every
 * tick once, each tick's job `<schedule>:<tick>` exactly once (one JobAdded), all of them
 * completed, and replay --verify is clean.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { JobQueue, replayQueue } from "../src/index.ts"
import { kafkaBrokers, uniqueQueue, until } from "./support/backends.ts"
import { type Child, killHard, ROOT, spawnScript } from "./support/children.ts"
import { eventsOf } from "./support/kafka.ts"
import { sleep } from "./fixtures/helpers.ts"

const ENGINE = join(ROOT, "test", "fixtures", "schedule-engine.ts")
const KILLS = 4
const EVERY_MS = 150

const LOGS = [
  { name: "sqlite", log: () => `sqlite:${join(mkdtempSync(join(tmpdir(), "jobledger-sched-kills-")), "jobs.db")}` },
  ...(kafkaBrokers === undefined ? [] : [{ name: "kafka", log: () => `kafka://${kafkaBrokers}?partitions=2` }])
]

describe.each(LOGS)("a schedule across engine SIGKILLs on $name", ({ log: freshLog }) => {
  const children: Array<Child> = []
  const queues: Array<JobQueue> = []
  afterEach(async () => {
    await Promise.all(children.splice(0).map(killHard))
    await Promise.all(queues.splice(0).map((q) => q.close({ graceMs: 1_000 }).catch(() => undefined)))
  })

  it(`${KILLS} kills of two engines: every tick once, each tick's job once, verify clean`, async () => {
    const log = freshLog()
    const name = uniqueQueue("sched-kills")
    const producer = new JobQueue(name, { log })
    queues.push(producer)
    producer.on("error", () => {})
    await producer.waitUntilReady()
    const start = (slot: string) => {
      const child = spawnScript(`engine-${slot}`, ENGINE, [log, name])
      children.push(child)
      return child
    }
    const engines = [start("a0"), start("b0")]
    for (const e of engines) await until(() => e.out.some((l) => l.startsWith("ready")), `${e.name} ready\n${e.out.join("\n")}`, 60_000)
    await producer.upsertSchedule("beat", { every: EVERY_MS }, { name: "beat", data: null })
    const ticked = async () => (await producer.schedules())[0]?.count ?? 0
    await until(async () => (await ticked()) >= 3, "the first ticks", 60_000)

    for (let k = 0; k < KILLS; k++) {
      // kill the engine that is running the beats now (the owner), at an arbitrary moment of a tick
      const owner = engines.reduce((a, b) => (a.out.filter((l) => l.startsWith("beat ")).length >= b.out.filter((l) => l.startsWith("beat ")).length && a.proc.exitCode === null ? a : b))
      await sleep(Math.floor(Math.random() * EVERY_MS))
      await killHard(owner)
      const replacement = start(`${owner.name.slice(-2, -1)}${k + 1}`)
      engines[engines.indexOf(owner)] = replacement
      await until(() => replacement.out.some((l) => l.startsWith("ready")), `${replacement.name} ready`, 60_000)
      const seen = await ticked()
      await until(async () => (await ticked()) >= seen + 3, `ticks after kill ${k + 1}`, 60_000)
    }
    await producer.removeSchedule("beat")
    // the removal is a command: until an engine decides it, the owner keeps ticking (and a
    // finisher restored before it would tick again); stop the engines once it is decided
    await until(async () => (await producer.schedules()).length === 0, "the schedule removed", 60_000)
    for (const e of engines) e.proc.kill("SIGTERM")
    await Promise.all(engines.map((e) => e.exited))
    // the last ticks' AddJob commands may be unconsumed at the stop: an engine adds them
    const finisher = start("z")
    await until(() => finisher.out.some((l) => l.startsWith("ready")), "the last engine ready", 60_000)

    const events = await eventsOf(log, name)
    const ticks = events.flatMap((e) => (e.envelope.body._tag === "ScheduleTicked" ? [e.envelope.body.tick] : []))
    expect(new Set(ticks).size, "a tick written twice").toBe(ticks.length)
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]!).toBeGreaterThan(ticks[i - 1]!)
    const expected = new Set(ticks.map((t) => `beat:${t}`))
    await until(async () => {
      const added = (await eventsOf(log, name)).filter((e) => e.envelope.body._tag === "JobAdded" && expected.has(e.envelope.jobId!))
      return added.length >= expected.size
    }, `a job for each of the ${ticks.length} ticks`, 60_000)
    const added = (await eventsOf(log, name)).filter((e) => e.envelope.body._tag === "JobAdded")
    const perJob = new Map<string, number>()
    for (const e of added) perJob.set(e.envelope.jobId!, (perJob.get(e.envelope.jobId!) ?? 0) + 1)
    for (const id of expected) expect(perJob.get(id), id).toBe(1)
    expect(perJob.size).toBe(expected.size) // no job without its tick
    const replayed = await replayQueue(log, name, { verify: true })
    expect(replayed.verify?.ok, JSON.stringify(replayed.verify?.issues.slice(0, 5))).toBe(true)
    const jobs = ticks.length
    console.log(`[schedule-kills] ${KILLS} kills, ${jobs} ticks, each with exactly one job`)
  }, 300_000)
})
