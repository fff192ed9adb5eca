/**
 * A binary heap ordered by `before`: `peek()` is always an element no other element comes
 * before. The ready queue (priority) and the timer heap (runAt) are both this heap.
 */
export class BinaryHeap<T> {
  private readonly items: Array<T> = []

  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length
  }

  peek(): T | undefined {
    return this.items[0]
  }

  push(item: T): void {
    const items = this.items
    // sift up with a hole: parents move down, the item is written once where it belongs
    let i = items.length
    items.push(item)
    while (i > 0) {
      const parent = (i - 1) >> 1
      const above = items[parent]!
      if (!this.before(item, above)) break
      items[i] = above
      i = parent
    }
    items[i] = item
  }

  pop(): T | undefined {
    const items = this.items
    const top = items[0]
    if (top === undefined) return undefined
    const last = items.pop()!
    const n = items.length
    if (n === 0) return top
    // sift `last` down from the root with a hole (no swap allocates: a destructuring swap cost
    // ~700 bytes per pop in a 50,000-job drain, one small array per level)
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      const child = r < n && this.before(items[r]!, items[l]!) ? r : l
      if (!this.before(items[child]!, last)) break
      items[i] = items[child]!
      i = child
    }
    items[i] = last
    return top
  }
}
