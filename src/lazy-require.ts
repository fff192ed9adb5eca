/**
 * Optional CommonJS dependencies loaded on first use, so that a process that never uses a
 * feature never pays for its package. prom-client alone is ~12 MiB of RSS in every producer
 * and engine process, though only `metrics()` and `dashboard()` need it.
 *
 * Invariant: the package is resolved from this package's own location, as a static import
 * would be, so the instance is the one an application importing it next to jobledger gets
 * (e.g. a prom-client `Registry` handed to `metrics({ registry })`).
 */
import { createRequire } from "node:module"
import { callerModuleFile } from "./module-file.ts"

const here = callerModuleFile()

/** A loader of `id`: the first call requires it, later calls return the same module. */
export const lazyRequire = <M>(id: string): (() => M) => {
  let loaded: M | undefined
  return () => {
    if (loaded !== undefined) return loaded
    if (here === undefined) throw new Error(`jobledger cannot locate its own module to load ${id} (is it bundled?)`)
    loaded = createRequire(here)(id) as M
    return loaded
  }
}
