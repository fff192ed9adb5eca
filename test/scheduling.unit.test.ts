/**
 * The engine's scheduling structures without a log: the heap, the ready queue's order, and
 * the pool's choice across partitions.
 */
import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { BinaryHeap } from "../src/engine/binary-heap.ts"
import { ReadyQueue } from "../src/engine/ready-queue.ts"
import { type ReadySource, WorkerPool } from "../src/engine/worker-pool.ts"

const nextPass = () => new Promise((resolve) => setImmediate(resolve))

describe("BinaryHeap", () => {
  it("pops in order whatever the push order", () => {
    fc.assert(
      fc.property(fc.array(fc.integer()), (xs) => {
        const heap = new BinaryHeap<number>((a, b) => a < b)
        for (const x of xs) heap.push(x)
        const out: Array<number> = []
        for (let x = heap.pop(); x !== undefined; x = heap.pop()) out.push(x)
        expect(out).toEqual([...xs].sort((a, b) => a - b))
      })
    )
  })

  it("pops the least element held, pushes and pops interleaved", () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.integer({ min: -50, max: 50 }), { nil: undefined, freq: 3 }), { maxLength: 300 }), (ops) => {
        const heap = new BinaryHeap<number>((a, b) => a < b)
        const held: Array<number> = []
        for (const op of ops) {
          if (op !== undefined) {
            heap.push(op)
            held.push(op)
          } else {
            const least = held.length === 0 ? undefined : Math.min(...held)
            expect(heap.pop()).toBe(least)
            if (least !== undefined) held.splice(held.indexOf(least), 1)
          }
          expect(heap.size).toBe(held.length)
          expect(heap.peek()).toBe(held.length === 0 ? undefined : Math.min(...held))
        }
      })
    )
  })
})

describe("ReadyQueue", () => {
  it("orders by priority, then due time, then arrival; holds an id once", () => {
    let arrivals = 0
    const q = new ReadyQueue(() => arrivals++)
    q.push({ id: "late-5", priority: 5, runAt: 20 })
    q.push({ id: "early-5", priority: 5, runAt: 10 })
    q.push({ id: "first-0", priority: 0, runAt: 10 })
    q.push({ id: "second-0", priority: 0, runAt: 10 })
    q.push({ id: "top", priority: 9, runAt: 99 })
    q.push({ id: "top", priority: 9, runAt: 99 })
    const out: Array<string> = []
    for (let id = q.pop(); id !== undefined; id = q.pop()) out.push(id)
    expect(out).toEqual(["top", "early-5", "late-5", "first-0", "second-0"])
  })
})

/** A partition stand-in: its queue, and the ids the pool started from it. */
const partition = (pool: WorkerPool, started: Array<string>) => {
  const queue = new ReadyQueue(pool.nextArrival)
  const source: ReadySource = {
    head: () => queue.peek(),
    startHead: () => void started.push(queue.pop()!)
  }
  pool.register(source)
  return queue
}

describe("WorkerPool", () => {
  it("starts the best head across partitions, never more than `concurrency`", async () => {
    const pool = new WorkerPool(3, undefined)
    const started: Array<string> = []
    const p0 = partition(pool, started)
    const p1 = partition(pool, started)
    p0.push({ id: "p0-low", priority: 0, runAt: 1 })
    p0.push({ id: "p0-mid", priority: 5, runAt: 3 })
    p1.push({ id: "p1-high", priority: 10, runAt: 2 })
    p1.push({ id: "p1-mid", priority: 5, runAt: 2 })
    pool.schedule()
    await nextPass()
    expect(started).toEqual(["p1-high", "p1-mid", "p0-mid"])
    expect(pool.active).toBe(3)
    pool.release()
    await nextPass()
    expect(started).toEqual(["p1-high", "p1-mid", "p0-mid", "p0-low"])
    pool.stop()
  })

  it("starts nothing while a hold stands, and resumes when its condition clears or it expires", async () => {
    const pool = new WorkerPool(5, undefined)
    const started: Array<string> = []
    const p0 = partition(pool, started)
    p0.push({ id: "a", priority: 0, runAt: 1 })
    let holding = true
    pool.holdWhile(() => holding, 60_000)
    pool.schedule()
    await nextPass()
    expect(started).toEqual([])
    holding = false
    pool.schedule()
    await nextPass()
    expect(started).toEqual(["a"])

    p0.push({ id: "b", priority: 0, runAt: 2 })
    pool.holdWhile(() => true, 30)
    pool.schedule()
    await nextPass()
    expect(started).toEqual(["a"])
    await new Promise((resolve) => setTimeout(resolve, 60))
    expect(started).toEqual(["a", "b"])
    pool.stop()
  })
})
