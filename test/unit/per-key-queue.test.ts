import { describe, expect, it } from 'vitest';
import { PerKeyQueue } from '../../hub/per-key-queue.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('PerKeyQueue', () => {
  it('runs one key in order, other keys alongside, goes on after a failure, and forgets idle keys', async () => {
    const queue = new PerKeyQueue();
    const log: string[] = [];
    let releaseA!: () => void;
    const a1 = queue.run('a', async () => {
      log.push('a1 start');
      await new Promise<void>((r) => (releaseA = r));
      log.push('a1 end');
      throw new Error('a1 failed');
    });
    const a2 = queue.run('a', async () => {
      log.push('a2');
      return 2;
    });
    const b1 = queue.run('b', async () => {
      log.push('b1');
      return 1;
    });
    await tick();
    expect(await b1).toBe(1);
    expect(log).toEqual(['a1 start', 'b1']);
    releaseA();
    await expect(a1).rejects.toThrow('a1 failed');
    expect(await a2).toBe(2);
    expect(log).toEqual(['a1 start', 'b1', 'a1 end', 'a2']);
    await tick();
    expect(queue.size).toBe(0);
  });
});
