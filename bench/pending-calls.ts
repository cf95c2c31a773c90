/**
 * Requests waiting for their answers by id, each with a timeout: the one table behind every
 * request/response channel of the benchmarks (the inspector session, the agent processes' IPC).
 */
export class PendingCalls {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  /** Sends with a fresh id; resolves with what settle() gets for that id, or rejects after timeoutMs. */
  call<T>(send: (id: number) => void, timeoutMs: number, what: string): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${what} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      send(id);
    });
  }

  /** The answer to one call: a value, or an Error to reject it with. Unknown ids are ignored. */
  settle(id: number, outcome: { value: unknown } | { error: Error }): void {
    const waiter = this.waiting.get(id);
    if (!waiter) return;
    this.waiting.delete(id);
    clearTimeout(waiter.timer);
    if ('error' in outcome) waiter.reject(outcome.error);
    else waiter.resolve(outcome.value);
  }

  /** The channel is gone: every call still waiting fails with `error`. */
  rejectAll(error: Error): void {
    for (const waiter of this.waiting.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.waiting.clear();
  }
}
