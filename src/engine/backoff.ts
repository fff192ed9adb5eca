/**
 * Retry delays derived from an Effect `Schedule`, computed once per policy so the engine
 * never waits on a schedule and tests need no clock: `delayFor(k)` is the delay before
 * retry k (1-based). Exponential: `delay·2^(k-1)`; fixed: `delay`; both capped by `maxDelay`.
 */
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"

export type BackoffKind = "fixed" | "exponential"

export interface RetryPolicy {
  /** Retries allowed: the handler runs at most `attempts + 1` times. */
  readonly attempts: number
  readonly backoff: BackoffKind
  readonly delay: number
  readonly maxDelay: number
}

export const NO_RETRY: RetryPolicy = { attempts: 0, backoff: "fixed", delay: 0, maxDelay: Infinity }

const scheduleOf = (policy: RetryPolicy): Schedule.Schedule<unknown> =>
  policy.backoff === "exponential"
    ? Schedule.exponential(Duration.millis(policy.delay), 2)
    : Schedule.spaced(Duration.millis(policy.delay))

/** The delays of retries 1..attempts, from the policy's Schedule. */
export const retryDelays = (policy: RetryPolicy): ReadonlyArray<number> => {
  if (policy.attempts === 0) return []
  const delays = Schedule.delays(scheduleOf(policy))
  const run = Schedule.run(delays, 0, Array.from({ length: policy.attempts }, () => undefined))
  return Chunk.toReadonlyArray(Effect.runSync(run)).map((d) => Math.min(Duration.toMillis(d), policy.maxDelay))
}

/** The delay before retry `k` (1-based) under `policy`. */
export const makeDelayFor = (policy: RetryPolicy) => {
  const delays = retryDelays(policy)
  return (k: number): number => delays[Math.min(k, delays.length) - 1] ?? policy.delay
}
