/**
 * The runtime this package runs its Effects on (src/effect-runtime.ts), the Promise boundary
 * (src/run.ts) and the single-use payloads of the log's effects (src/hand-over.ts).
 */
import { AsyncLocalStorage } from "node:async_hooks"
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import { describe, expect, it } from "vitest"
import { jobledgerScheduler, managedRuntime, MICROTASKS_PER_TURN, runPromise } from "../src/effect-runtime.ts"
import { handOver } from "../src/hand-over.ts"
import { makeLocalLog } from "../src/log/local-log.ts"
import { openMemoryStore } from "../src/log/memory-store.ts"
import { run } from "../src/run.ts"

const scheduler = FiberRef.get(FiberRef.currentScheduler)
/** Resumes after `ms` from a timer, so the fiber's next step is scheduled, not run inline. */
const after = <A>(ms: number, value: () => A) => Effect.async<A>((resume) => void setTimeout(() => resume(Effect.sync(value)), ms))

class Refused extends Data.TaggedError("Refused")<{ readonly why: string }> {}

describe("jobledger's Effect runtime", () => {
  it("is what run(), runPromise, their forked fibers and a queue's managed runtime schedule with", async () => {
    expect(await run(scheduler)).toBe(jobledgerScheduler)
    expect(await runPromise(Effect.zipRight(after(1, () => 0), scheduler))).toBe(jobledgerScheduler)
    const child = Effect.fork(Effect.zipRight(after(1, () => 0), scheduler)).pipe(Effect.flatMap(Fiber.join))
    expect(await run(child)).toBe(jobledgerScheduler)
    const managed = managedRuntime(Layer.empty)
    try {
      expect(await managed.runPromise(Effect.zipRight(after(1, () => 0), scheduler))).toBe(jobledgerScheduler)
    } finally {
      await managed.dispose()
    }
    // Effect's own default runtime is left as it was (a user's Effects are not ours to schedule)
    expect(await Effect.runPromise(scheduler)).not.toBe(jobledgerScheduler)
  })

  it("resumes each fiber in the async context that resumed it", async () => {
    const als = new AsyncLocalStorage<string>()
    const resumers: Array<(e: Effect.Effect<void>) => void> = []
    const suspended = () => Effect.async<void>((resume) => void resumers.push(resume))
    const runs = ["a", "b", "c"].map(() => run(Effect.zipRight(suspended(), Effect.sync(() => als.getStore()))))
    while (resumers.length < 3) await new Promise<void>((resolve) => setImmediate(resolve))
    // all three resumed in one synchronous block, each from its own context: a scheduler that
    // drained them together would run them all in the first one's
    ;["a", "b", "c"].forEach((name, i) => als.run(name, () => resumers[i]!(Effect.void)))
    expect(await Promise.all(runs)).toEqual(["a", "b", "c"])
  })

  it("lets timers and I/O run while a fiber keeps yielding", async () => {
    let yields = 0
    const spinning = Effect.runFork(Effect.forever(Effect.zipRight(Effect.yieldNow(), Effect.sync(() => void yields++))), { scheduler: jobledgerScheduler })
    try {
      // a macrotask gets its turn although the spinning fiber always has a next step
      await new Promise<void>((resolve) => setTimeout(resolve, 5))
      await new Promise<void>((resolve) => setImmediate(resolve))
      expect(yields).toBeGreaterThan(MICROTASKS_PER_TURN)
    } finally {
      await Effect.runPromise(Fiber.interrupt(spinning))
    }
  })
})

describe("run", () => {
  it("resolves with the value, rejects with the typed error itself, and with a FiberFailure for a defect", async () => {
    expect(await run(after(1, () => 7))).toBe(7)
    const refused = await run(Effect.zipRight(after(1, () => 0), Effect.fail(new Refused({ why: "no" })))).catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(Refused)
    expect(refused).toMatchObject({ why: "no" })
    const died = await run(Effect.zipRight(after(1, () => 0), Effect.die(new RangeError("bug")))).catch((e: unknown) => e)
    expect(Runtime.isFiberFailure(died)).toBe(true)
    expect(String(died)).toContain("bug")
  })
})

describe("handOver", () => {
  it("gives its payload once; a second take is a bug and says so", () => {
    const take = handOver({ records: [1, 2] })
    expect(take()).toEqual({ records: [1, 2] })
    expect(() => take()).toThrow(/ran twice/)
  })

  it("makes a log's append single-use: its second run fails instead of appending nothing", async () => {
    const { service: log, close } = makeLocalLog("memory", "memory:", openMemoryStore())
    try {
      await run(log.ensureTopic("t", 1))
      const append = log.append("t", [{ key: "k", value: '{"n":1}' }])
      await run(append)
      const second = await run(append).catch((e: unknown) => e)
      expect(String(second)).toMatch(/ran twice/)
      expect((await run(log.read("t", 0, 0, 10))).map((r) => r.value)).toEqual(['{"n":1}'])
    } finally {
      close()
    }
  })
})

describe("src", () => {
  it("runs no Effect on Effect's default runtime (only src/effect-runtime.ts builds runtimes)", () => {
    const files: Array<string> = []
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name)
        if (statSync(path).isDirectory()) walk(path)
        else if (path.endsWith(".ts")) files.push(path)
      }
    }
    walk(join(import.meta.dirname, "..", "src"))
    const offenders = files.filter(
      (f) => !f.endsWith("effect-runtime.ts") && /Effect\.run(Promise|PromiseExit|Fork|Callback)\(|ManagedRuntime\.make\(/.test(readFileSync(f, "utf8"))
    )
    expect(files.length).toBeGreaterThan(50)
    expect(offenders).toEqual([])
  })
})
