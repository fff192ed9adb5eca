/**
 * Running an Effect at the Promise boundary, on this package's runtime (`effect-runtime.ts`),
 * with its typed error as the rejection value (`Effect.runPromise` would wrap it in a
 * FiberFailure); a defect or an interruption rejects with Effect's FiberFailure.
 *
 * The outcome is read off the fiber's Exit in plain JavaScript rather than by a continuation
 * (`Effect.either`) in the fiber: in a loop of async runs, what a suspended fiber with such a
 * continuation held survived every minor GC (~340 KB each, promoted, dropped only by a major
 * GC); read off the Exit, ~3 KB. See `effect-runtime.ts` for what it adds up to.
 */
import * as Cause from "effect/Cause"
import type * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import { runPromiseExit } from "./effect-runtime.ts"

/** The first typed failure of a failed Exit; a defect or an interruption is thrown as a FiberFailure. */
export const failureOf = <E>(exit: Exit.Failure<unknown, E>): E => {
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) return failure.value
  throw Runtime.makeFiberFailure(exit.cause)
}

/** The value of a fiber's Exit; else its typed failure (or a FiberFailure), thrown. */
export const valueOf = <A, E>(exit: Exit.Exit<A, E>): A => {
  if (Exit.isSuccess(exit)) return exit.value
  throw failureOf(exit)
}

export const run = <A, E>(effect: Effect.Effect<A, E>): Promise<A> => runPromiseExit(effect).then(valueOf)
