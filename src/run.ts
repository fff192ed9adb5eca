/**
 * Running an Effect at the Promise boundary with its typed error as the rejection value
 * (`Effect.runPromise` would wrap it in a FiberFailure).
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"

export const run = <A, E>(effect: Effect.Effect<A, E>): Promise<A> =>
  Effect.runPromise(Effect.either(effect)).then((result) => {
    if (Either.isLeft(result)) throw result.left
    return result.right
  })
