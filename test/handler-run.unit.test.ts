/**
 * One handler attempt, without an engine: every way a handler can end yields one Outcome.
 */
import { describe, expect, it } from "vitest"
import { type Outcome, startAttempt } from "../src/engine/handler-run.ts"

const attempt = (invoke: () => unknown, timeoutMs?: number) =>
  new Promise<Outcome>((resolve) => void startAttempt(invoke, timeoutMs, resolve))

describe("startAttempt", () => {
  it("ends with the result, a described throw, or a timeout", async () => {
    expect(await attempt(async () => 42)).toEqual({ ok: true, result: 42 })
    expect(await attempt(() => undefined)).toEqual({ ok: true, result: null })
    const thrown = await attempt(() => {
      throw new RangeError("nope")
    })
    expect(thrown).toMatchObject({ ok: false, error: { name: "RangeError", message: "nope" } })
    expect(await attempt(() => Promise.reject("text"))).toMatchObject({ ok: false, error: { name: "NonErrorThrown" } })
    expect(await attempt(() => new Promise(() => {}), 20)).toMatchObject({ ok: false, error: { name: "TimeoutError" } })
  })

  it("still ends when the thrown Error cannot even be described", async () => {
    const hostile = new Error("x")
    Object.defineProperty(hostile, "message", {
      get() {
        throw new Error("message getter throws")
      }
    })
    const outcome = await attempt(() => {
      throw hostile
    })
    expect(outcome).toMatchObject({ ok: false, error: { message: "the handler threw a value that cannot be described" } })
  })
})
