/** The CLI's pure parts: the apply file, Server-Sent Events, selectors and labels, refusal lines. */
import { describe, expect, it } from 'vitest';
import { refusalLine } from '../../cli/client.js';
import { changedLabels } from '../../cli/commands/nodes.js';
import { dryRunText } from '../../cli/commands/apply.js';
import { eventLine } from '../../cli/commands/events.js';
import { renderTable } from '../../cli/output.js';
import { labelSelector } from '../../cli/selector.js';
import { parseServiceFile } from '../../cli/service-file.js';
import { SseParser } from '../../cli/sse.js';
import { jsonErrorOffset } from '../../cli/json-error-offset.js';

describe('parseServiceFile', () => {
  it('reads documents, lists in documents, and skips empty documents', () => {
    const text = 'name: a\nimage: x\n---\n- name: b\n  image: y\n- { name: c, image: z, replicas: 2 }\n---\n';
    expect(parseServiceFile(text, 'f.yaml')).toEqual([
      { name: 'a', spec: { image: 'x' } },
      { name: 'b', spec: { image: 'y' } },
      { name: 'c', spec: { image: 'z', replicas: 2 } },
    ]);
  });

  it('reads JSON: one service or a list', () => {
    expect(parseServiceFile('{"name": "a", "image": "x"}', 'f.json')).toEqual([{ name: 'a', spec: { image: 'x' } }]);
    expect(parseServiceFile('[{"name": "a", "image": "x"}]', 'stdin')).toEqual([{ name: 'a', spec: { image: 'x' } }]);
  });

  it.each([
    ['name: a\nimage: x\n  bad: 1\n', 'f.yaml', /^f\.yaml:2:8: not valid YAML: .+/],
    ['name: a\nname: b\n', 'f.yaml', /^f\.yaml:2:1: not valid YAML: Map keys must be unique/],
    ['{\n  "name": "a",\n  "image": \n}', 'f.json', /^f\.json:4:1: not valid JSON: /],
    ['image: x\n', 'f.yaml', /^f\.yaml: service: name: a service needs a name$/],
    ['- name: a\n  image: x\n- name: a\n  image: y\n', 'f.yaml', /^f\.yaml: item 2: name: "a" appears twice in the file$/],
    ['a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n', 'f.yaml', /^f\.yaml: not valid YAML: .*alias/i],
    ['name: a\n---\n- 3\n', 'f.yaml', /^f\.yaml: document 2, item 1: expected a service \(\{ name, image, \.\.\. \}\), got number$/],
  ])('refuses %j with where and why', (text, source, message) => {
    expect(() => parseServiceFile(text, source)).toThrow(message);
  });
});

describe('SseParser', () => {
  it('reads id, event and data (several data lines joined), skips comments, ends events at a blank line', () => {
    const parser = new SseParser();
    const lines = [': keep-alive', '', 'id: 7', 'event: service.created', 'data: {"a":', 'data: 1}', '', 'event: reset', 'data:{"oldestSeq":3}', ''];
    const events = lines.map((l) => parser.push(l)).filter((e) => e !== null);
    expect(events).toEqual([
      { id: '7', event: 'service.created', data: '{"a":\n1}' },
      { id: '7', event: 'reset', data: '{"oldestSeq":3}' },
    ]);
  });
});

describe('selectors and labels', () => {
  it('turns -l flags into the constraint syntax', () => {
    expect(labelSelector('node.labels', ['zone=eu-1', 'ring!=canary', 'tier==edge'])).toBe('node.labels.zone==eu-1,node.labels.ring!=canary,node.labels.tier==edge');
    expect(labelSelector('service.labels', [])).toBeUndefined();
  });

  it('sets key=value, removes key-, keeps the rest', () => {
    expect(changedLabels({ zone: 'eu-1', ring: 'canary' }, ['ring-', 'tier=edge', 'zone=eu-2'])).toEqual({ zone: 'eu-2', tier: 'edge' });
  });
});

describe('output', () => {
  it('pads columns, upper-cases headers, shows empty cells as -, keeps each row on one line', () => {
    expect(renderTable(['name', 'state', 'error'], [['a', 'ready', null], ['bbbb', 'lost', 'line one\nline two']])).toBe(
      'NAME  STATE  ERROR\na     ready  -\nbbbb  lost   line one line two\n',
    );
  });

  it("prints a followed event as one plain line: a device's escape sequences never reach the terminal", () => {
    const line = eventLine({ seq: 7, time: '2026-12-01T11:00:00.000Z', type: 'replica.failed', service: 'web', replica: 'web.1a', node: 'n1', nodeName: 'edge-1', message: 'boom\u001b]52;c;ZWNobyBwd25lZA==\u0007\r\nfake line\u009b2J' });
    expect(line).toBe('2026-12-01T11:00:00.000Z  replica.failed  service=web replica=web.1a node=edge-1  boom ]52;c;ZWNobyBwd25lZA== fake line 2J\n');
  });

  it('a dry run says what would change, where replicas go and why others wait', () => {
    const text = dryRunText('web', {
      dryRun: true,
      outcome: 'updated',
      changes: [{ path: 'image', from: 'a:1', to: 'a:2' }, { path: 'env.X', to: 'y' }],
      placement: { placed: [{ replica: 'web.1', node: 'n1', nodeName: 'edge-1' }], pending: 1, reasons: ['0 of 1 matching node fits'] },
    });
    expect(text).toBe(
      'service web: would be updated (dry run: nothing changed)\n  image: "a:1" -> "a:2"\n  env.X: (none) -> "y"\n  placed on: web.1 on edge-1 (n1)\n  pending: 1 (0 of 1 matching node fits)\n',
    );
  });
});

describe('dryRunText for a new service', () => {
  it('lists no field changes (the whole spec is new), only where its replicas would go', () => {
    const text = dryRunText('api', {
      dryRun: true,
      outcome: 'created',
      changes: [{ path: 'image', to: 'a:1' }, { path: 'mode', to: 'replicated' }],
      placement: { placed: [], pending: 1, reasons: ['no ready node'] },
    });
    expect(text).toBe('service api: would be created (dry run: nothing changed)\n  pending: 1 (no ready node)\n');
  });
});

describe('refusalLine', () => {
  it("is the hub's message, the fields it does not name yet, status and code", () => {
    const body = { error: { code: 'name_taken', message: 'node name "a" is taken', details: [{ path: 'name', message: 'is taken by another node' }] } };
    expect(refusalLine(409, body, 'http://h').line).toBe('node name "a" is taken (name: is taken by another node) [409 name_taken]');
    const spec = { error: { code: 'invalid_spec', message: 'image: is required', details: [{ path: 'image', message: 'is required' }] } };
    expect(refusalLine(400, spec, 'http://h').line).toBe('image: is required [400 invalid_spec]');
  });

  it('a 412 carries the current revision; an answer without the error shape still makes a line', () => {
    const stale = refusalLine(412, { error: { code: 'revision_mismatch', message: 'service "web" changed' }, currentRevision: 4 }, 'http://h');
    expect(stale).toEqual({ line: 'service "web" changed (the current revision is 4) [412 revision_mismatch]', code: 'revision_mismatch', currentRevision: 4 });
    const said = refusalLine(412, { error: { code: 'revision_mismatch', message: 'service "web" is at revision 4' }, currentRevision: 4 }, 'http://h');
    expect(said.line).toBe('service "web" is at revision 4 [412 revision_mismatch]');
    expect(refusalLine(502, null, 'http://h').line).toBe('the hub answered HTTP 502 [502 http_502]');
  });
});

describe('jsonErrorOffset', () => {
  it.each([
    ['{"a": 1}', null],
    ['[1, {"b": [true, false, null, "x\\u00e9"]}, -2.5e3]', null],
    ['{\n  "name": "a",\n  "image": \n}', 29],
    ['{"a" 1}', 5],
    ['{"a": 1,}', 8],
    ['{"a": tru}', 9],
    ['[1, 2', 5],
    ['', 0],
    ['{"a": 1} x', 9],
    ['"tab\there"', 4],
  ])('%j -> %j', (text, offset) => {
    expect(jsonErrorOffset(text)).toBe(offset);
  });
});
