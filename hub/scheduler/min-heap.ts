/**
 * A binary min-heap ordered by a compare function (negative: `a` comes first). The scheduler uses
 * it to pick the least loaded node in O(log n) instead of scanning every node per replica.
 */
export class MinHeap<T> {
  private readonly items: T[];

  /** `initial` is heapified in O(n), cheaper than pushing items one by one. */
  constructor(
    private readonly compare: (a: T, b: T) => number,
    initial: Iterable<T> = [],
  ) {
    this.items = [...initial];
    for (let i = (this.items.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    this.items.push(item);
    this.siftUp(this.items.length - 1);
  }

  pop(): T | undefined {
    const items = this.items;
    if (items.length === 0) return undefined;
    const top = items[0] as T;
    const last = items.pop() as T;
    if (items.length > 0) {
      items[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftUp(index: number): void {
    const items = this.items;
    const item = items[index] as T;
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const parentItem = items[parent] as T;
      if (this.compare(item, parentItem) >= 0) break;
      items[i] = parentItem;
      i = parent;
    }
    items[i] = item;
  }

  private siftDown(index: number): void {
    const items = this.items;
    const length = items.length;
    const item = items[index] as T;
    let i = index;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= length) break;
      const right = left + 1;
      let child = left;
      if (right < length && this.compare(items[right] as T, items[left] as T) < 0) child = right;
      const childItem = items[child] as T;
      if (this.compare(childItem, item) >= 0) break;
      items[i] = childItem;
      i = child;
    }
    items[i] = item;
  }
}
