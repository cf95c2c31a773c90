import { expect, it } from 'vitest';
import pino from 'pino';
import { Writable } from 'node:stream';
import { NodeChangeLog } from '../../hub/node-change-log.js';

function logAt(level: string) {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { lines, log: new NodeChangeLog(pino({ level }, sink)) };
}

it('spends no budget on the lines its log level drops, and still writes and limits the others', async () => {
  const { lines, log } = logAt('warn');
  for (let i = 0; i < 100; i++) log.line('info', `node-${i}`, {}, 'node ready');
  expect(log.budgetSize).toBe(0);
  for (let i = 0; i < 30; i++) log.line('warn', 'node-1', {}, 'node unreachable');
  await new Promise((r) => setImmediate(r));
  // 20 lines a minute per node: the rest are counted, to be told with its next line.
  expect(lines).toHaveLength(20);
  expect(lines.every((l) => l.nodeId === 'node-1' && l.msg === 'node unreachable')).toBe(true);
  expect(log.budgetSize).toBe(1);
});

it('takes an entry per node for the lines it writes', async () => {
  const { lines, log } = logAt('info');
  for (let i = 0; i < 100; i++) log.line('info', `node-${i}`, {}, 'node ready');
  await new Promise((r) => setImmediate(r));
  expect(lines).toHaveLength(100);
  expect(log.budgetSize).toBe(100);
});
