/**
 * What the engines of this process observe that no log event records: how long the log took
 * to make each transaction durable. `metrics()` listens (a histogram); nothing listens by
 * default, and then observing costs a Set lookup.
 */

/** Called after each transaction of an engine of this process: its queue, seconds, and whether it failed. */
export type AppendObserver = (queue: string, seconds: number, ok: boolean) => void

const appendObservers = new Set<AppendObserver>()

/** Starts listening; returns the call that stops it. */
export const observeAppends = (observer: AppendObserver): (() => void) => {
  appendObservers.add(observer)
  return () => void appendObservers.delete(observer)
}

export const appendObserved = (queue: string, seconds: number, ok: boolean): void => {
  for (const o of appendObservers) o(queue, seconds, ok)
}

/** Whether anyone listens (the Appender skips its clock readings otherwise). */
export const appendsObserved = (): boolean => appendObservers.size > 0
