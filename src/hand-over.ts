/**
 * A payload for one run of an Effect, that no closure holds once the run took it.
 *
 * Why: an Effect keeps the closures of effects it ran reachable through minor GCs, until a
 * major one; a closure that holds a transaction's unit or an append's records carries them,
 * events, views and all, into the old generation. Measured in a loop of `Effect.tryPromise`
 * runs on this package's runtime, each closing over ~300 bytes of records: ~700 KB survived
 * every scavenge (each 3–8 ms); taking the records through `handOver` left ~9 KB (~1 ms).
 *
 * Invariant: the payload is taken at most once. Taking it again (the effect run twice) throws,
 * as a bug of the caller's: the log's `append` and `transact` effects are single-use.
 */
export const handOver = <A>(payload: A): (() => A) => {
  let held: { readonly payload: A } | undefined = { payload }
  return () => {
    if (held === undefined) throw new Error("jobledger: a single-use log effect ran twice (append and transact hand their records over once)")
    const { payload } = held
    held = undefined
    return payload
  }
}
