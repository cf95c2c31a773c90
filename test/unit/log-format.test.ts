import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { chooseLogFormat, logDestination } from '../../shared/log-format.js';

describe('the log format', () => {
  it('follows the flag, then TETHER_LOG_FORMAT, then whether stdout is a terminal', () => {
    expect(chooseLogFormat(undefined, undefined, true)).toEqual({ ok: true, format: 'pretty' });
    expect(chooseLogFormat(undefined, undefined, false)).toEqual({ ok: true, format: 'json' });
    expect(chooseLogFormat(undefined, '', false)).toEqual({ ok: true, format: 'json' });
    expect(chooseLogFormat(undefined, 'pretty', false)).toEqual({ ok: true, format: 'pretty' });
    expect(chooseLogFormat(undefined, 'json', true)).toEqual({ ok: true, format: 'json' });
    expect(chooseLogFormat('json', 'pretty', true)).toEqual({ ok: true, format: 'json' });
    expect(chooseLogFormat('pretty', 'json', false)).toEqual({ ok: true, format: 'pretty' });
  });

  it('refuses an unknown format, naming where it came from and what it may be', () => {
    expect(chooseLogFormat('yaml', undefined, true)).toEqual({ ok: false, error: 'unknown --log-format "yaml" (one of json, pretty)' });
    expect(chooseLogFormat(undefined, 'text', true)).toEqual({ ok: false, error: 'unknown TETHER_LOG_FORMAT="text" (one of json, pretty)' });
  });

  it('writes JSON through pino itself, and one readable line a record through pino-pretty, in this thread', async () => {
    expect(await logDestination('json', { colorize: false })).toBeUndefined();
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _encoding, done) => (lines.push(String(chunk)), done()) });
    const pretty = await logDestination('pretty', { colorize: false, destination: sink });
    const logger = pino({ level: 'info', name: 'tether-hub' }, pretty);
    logger.warn({ nodeId: 'n-1', reasons: { lastSeenMs: 1200 } }, 'node lost');
    logger.debug({}, 'not at info');
    // Synchronous: written before the call returns, as the last lines before an exit must be.
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN \(tether-hub\): node lost \{"nodeId":"n-1","reasons":\{"lastSeenMs":1200\}\}\n$/);
  });
});
