/**
 * A progress bar on stderr for long replays. Shown only when stderr is a terminal and the
 * replay is long enough to be worth watching; otherwise replay is quiet (pipes, CI, tests).
 */

/** Replays of more events than this get a bar. */
export const PROGRESS_MIN_EVENTS = 50_000
const WIDTH = 30
const MIN_REDRAW_MS = 100

export interface Progress {
  readonly update: (done: number, total: number) => void
  /** Erases the bar. */
  readonly done: () => void
}

const quiet: Progress = { update: () => {}, done: () => {} }

export const progressBar = (stream: NodeJS.WriteStream, label: string): Progress => {
  if (stream.isTTY !== true) return quiet
  let shown = false
  let last = 0
  return {
    update: (done, total) => {
      if (total <= PROGRESS_MIN_EVENTS) return
      const now = Date.now()
      if (shown && now - last < MIN_REDRAW_MS && done < total) return
      last = now
      shown = true
      const ratio = Math.min(1, done / total)
      const filled = Math.round(ratio * WIDTH)
      const pct = String(Math.floor(ratio * 100)).padStart(3)
      stream.write(`\r${label} [${"#".repeat(filled)}${".".repeat(WIDTH - filled)}] ${pct}% ${done}/${total} events`)
    },
    done: () => {
      if (shown) stream.write("\r\x1b[K")
    }
  }
}
