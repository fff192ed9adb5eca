/** The most start times that fall in one window of `duration` ms (half open: [t, t + duration)). */
export const maxInAnyWindow = (starts: ReadonlyArray<number>, duration: number): number => {
  const sorted = [...starts].sort((a, b) => a - b)
  let best = 0
  for (let i = 0, j = 0; j < sorted.length; j++) {
    while (sorted[j]! - sorted[i]! >= duration) i++
    best = Math.max(best, j - i + 1)
  }
  return best
}
