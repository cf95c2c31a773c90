import { describe, it, expect } from 'vitest';
import { decodeAgentFrame, decodeHubFrame, encodeFrame } from '../../shared/codec.js';
import {
  PROTOCOL_LIMITS,
  PROTOCOL_VERSION,
  type AckFrame,
  type AssignedReplica,
  type HeartbeatFrame,
  type HelloFrame,
  type NodeFacts,
  type ReplicaReport,
  type StatusFrame,
  type TargetFrame,
  type WelcomeFrame,
} from '../../shared/protocol.js';
import { containerSpecHash, containerSpecOf } from '../../shared/container-spec.js';
import { validateServiceSpec } from '../../hub/spec/service-spec.js';

// ---------------------------------------------------------------------------------------------
// Fixtures

const facts: NodeFacts = {
  hostname: 'gw1.local',
  os: 'linux',
  osRelease: 'Debian 12',
  arch: 'arm64',
  cpus: 4,
  memoryBytes: 8 * 1024 ** 3,
  diskBytes: 64 * 1024 ** 3,
  diskFreeBytes: 10 * 1024 ** 3,
  agentVersion: '0.1.0',
  runtime: 'docker 26.1.0',
};

const report: ReplicaReport = {
  replicaId: 'web-0',
  service: 'web',
  state: 'running',
  specHash: '0123456789abcdef',
  containerId: 'c0ffee',
  error: null,
  restarts: 2,
};

const hello: HelloFrame = {
  type: 'hello',
  protocolVersion: PROTOCOL_VERSION,
  name: 'gateway-1',
  labels: { zone: 'eu-1' },
  advertiseAddress: '10.0.0.5',
  facts,
  appliedGeneration: 3,
  replicas: [report],
};

const heartbeat: HeartbeatFrame = { type: 'heartbeat' };
const ack: AckFrame = { type: 'ack', generation: 7 };
const status: StatusFrame = { type: 'status', replicas: [report, { ...report, replicaId: 'web-1', state: 'failed', containerId: null, error: 'exit 1' }] };

function assigned(): AssignedReplica {
  const v = validateServiceSpec({
    image: 'nginx:1',
    command: ['nginx', '-g', 'daemon off;'],
    env: { A: '1' },
    ports: [{ containerPort: 80, hostPort: 8080 }, { containerPort: 53, protocol: 'udp' }],
    resources: { cpus: 0.5 },
    labels: { team: 'edge' },
    registryAuth: { username: 'u', password: 'p', serveraddress: 'registry.example.com' },
  });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  const container = containerSpecOf(v.value);
  return { replicaId: 'web-0', service: 'web', specHash: containerSpecHash(container), container };
}

const welcome: WelcomeFrame = { type: 'welcome', protocolVersion: PROTOCOL_VERSION, nodeId: 'n-1', heartbeatIntervalMs: 5000 };
const target: TargetFrame = { type: 'target', generation: 4, replicas: [assigned()] };

/** Decodes as the hub does and returns the refusal reason, failing if the frame was accepted. */
function agentReason(data: string | Buffer): string {
  const d = decodeAgentFrame(data);
  if (d.ok) throw new Error(`expected a refusal, got ${JSON.stringify(d.frame)}`);
  return d.reason;
}

function hubReason(data: string | Buffer): string {
  const d = decodeHubFrame(data);
  if (d.ok) throw new Error(`expected a refusal, got ${JSON.stringify(d.frame)}`);
  return d.reason;
}

const json = (v: unknown) => JSON.stringify(v);

// ---------------------------------------------------------------------------------------------

describe('decodeAgentFrame: valid frames', () => {
  it.each<[string, unknown]>([
    ['hello', hello],
    ['hello with no replicas, labels or address', { ...hello, labels: {}, advertiseAddress: null, replicas: [], appliedGeneration: 0 }],
    ['heartbeat', heartbeat],
    ['ack', ack],
    ['ack of generation 0', { type: 'ack', generation: 0 }],
    ['status', status],
    ['status of a removed replica', { type: 'status', replicas: [{ ...report, state: 'removed' }] }],
  ])('accepts %s and gives the frame back as sent', (_, frame) => {
    expect(decodeAgentFrame(json(frame))).toEqual({ ok: true, frame });
  });

  it('accepts every replica state', () => {
    for (const state of ['pending', 'starting', 'running', 'failed', 'stopped', 'removed'] as const) {
      expect(decodeAgentFrame(json({ type: 'status', replicas: [{ ...report, state }] })).ok).toBe(true);
    }
  });

  it('accepts a Buffer as well as a string', () => {
    expect(decodeAgentFrame(Buffer.from(json(hello), 'utf8'))).toEqual({ ok: true, frame: hello });
    expect(decodeAgentFrame(Buffer.from(json(ack)))).toEqual({ ok: true, frame: ack });
  });

  it('decodes non-ASCII text in a Buffer as UTF-8', () => {
    const frame = { ...hello, name: 'passerelle-é', labels: { site: 'Zürich' } };
    expect(decodeAgentFrame(Buffer.from(json(frame), 'utf8'))).toEqual({ ok: true, frame });
  });
});

describe('decodeAgentFrame: refused frames', () => {
  it('refuses text that is not JSON', () => {
    expect(agentReason('{"type":"heartbeat"')).toMatch(/not valid JSON/);
    expect(agentReason('')).toMatch(/not valid JSON/);
    expect(agentReason(Buffer.from([0xff, 0xfe, 0x00]))).toMatch(/not valid JSON/);
  });

  it.each(['[]', '[{"type":"heartbeat"}]', '42', '"heartbeat"', 'null', 'true'])('refuses the JSON non-object %s', (text) => {
    expect(agentReason(text)).toMatch(/not a JSON object/);
  });

  it('refuses a frame without a type', () => {
    expect(agentReason('{}')).toMatch(/unknown frame type/);
    expect(agentReason(json({ generation: 1 }))).toMatch(/unknown frame type undefined/);
  });

  it('refuses an unknown or non-string type, naming it', () => {
    expect(agentReason(json({ type: 'goodbye' }))).toMatch(/unknown frame type "goodbye"/);
    expect(agentReason(json({ type: 5 }))).toMatch(/unknown frame type 5/);
    expect(agentReason(json({ type: 'toString' }))).toMatch(/unknown frame type "toString"/);
    expect(agentReason(json({ type: '__proto__' }))).toMatch(/unknown frame type "__proto__"/);
  });

  it('cuts a huge type value short in the reason', () => {
    const reason = agentReason(json({ type: 'x'.repeat(10_000) }));
    expect(reason).toMatch(/^unknown frame type "x+/);
    expect(reason.length).toBeLessThan(200);
  });

  it('refuses a frame type the hub sends', () => {
    expect(agentReason(json(welcome))).toMatch(/unknown frame type "welcome"/);
    expect(agentReason(json(target))).toMatch(/unknown frame type "target"/);
  });

  it('refuses a hello without facts, saying so', () => {
    const { facts: _facts, ...noFacts } = hello;
    const reason = agentReason(json(noFacts));
    expect(reason).toMatch(/^invalid hello frame/);
    expect(reason).toMatch(/facts/);
    expect(reason).toMatch(/required/);
  });

  it('refuses a hello with a missing fact, naming it', () => {
    const { cpus: _cpus, ...partial } = facts;
    expect(agentReason(json({ ...hello, facts: partial }))).toMatch(/facts\.cpus: is required/);
  });

  it('refuses a hello with an extra field, naming it', () => {
    expect(agentReason(json({ ...hello, sneaky: true }))).toMatch(/invalid hello frame: .*sneaky: unknown field/);
    expect(agentReason(json({ ...hello, facts: { ...facts, gpu: 'yes' } }))).toMatch(/facts\.gpu: unknown field/);
  });

  it('refuses a heartbeat with an extra field', () => {
    expect(agentReason(json({ type: 'heartbeat', at: 1 }))).toMatch(/invalid heartbeat frame: at: unknown field/);
  });

  it('refuses a status with no replicas', () => {
    expect(agentReason(json({ type: 'status', replicas: [] }))).toMatch(/invalid status frame: replicas: .*fewer than 1/);
  });

  it('refuses a status with more replicas than the limit', () => {
    const replicas = Array.from({ length: PROTOCOL_LIMITS.maxReportedReplicas + 1 }, (_, i) => ({ ...report, replicaId: `r-${i}` }));
    expect(agentReason(json({ type: 'status', replicas }))).toMatch(/replicas: .*more than/);
  });

  it('refuses a status with an unknown replica state, naming the field', () => {
    expect(agentReason(json({ type: 'status', replicas: [{ ...report, state: 'exploded' }] }))).toMatch(/replicas\[0\]\.state/);
  });

  it('refuses a status with negative restarts', () => {
    expect(agentReason(json({ type: 'status', replicas: [report, { ...report, restarts: -1 }] }))).toMatch(/replicas\[1\]\.restarts: must be >= 0/);
  });

  it('refuses an ack with a negative or fractional generation', () => {
    expect(agentReason(json({ type: 'ack', generation: -1 }))).toMatch(/invalid ack frame: generation: must be >= 0/);
    expect(agentReason(json({ type: 'ack', generation: 1.5 }))).toMatch(/generation: must be integer/);
    expect(agentReason(json({ type: 'ack', generation: '3' }))).toMatch(/generation/);
    expect(agentReason(json({ type: 'ack' }))).toMatch(/generation: is required/);
  });

  it.each<[string, unknown, RegExp]>([
    ['replicaId of 500 characters', { type: 'status', replicas: [{ ...report, replicaId: 'r'.repeat(500) }] }, /replicas\[0\]\.replicaId: must not have more than 128/],
    ['empty replicaId', { type: 'status', replicas: [{ ...report, replicaId: '' }] }, /replicas\[0\]\.replicaId: .*fewer than 1/],
    ['error text of 3000 characters', { type: 'status', replicas: [{ ...report, error: 'e'.repeat(3000) }] }, /replicas\[0\]\.error/],
    ['hostname of 300 characters', { ...hello, facts: { ...facts, hostname: 'h'.repeat(300) } }, /facts\.hostname: must not have more than 255/],
    ['node name of 200 characters', { ...hello, name: 'n'.repeat(200) }, /name: must not have more than 128/],
    ['label key of 300 characters', { ...hello, labels: { ['k'.repeat(300)]: 'v' } }, /labels\.k+: must not have more than 256/],
    ['label value of 2000 characters', { ...hello, labels: { k: 'v'.repeat(2000) } }, /labels\.k: must not have more than 1024/],
    ['empty label key', { ...hello, labels: { '': 'v' } }, /labels\.: .*fewer than 1/],
  ])('refuses an oversized or empty string: %s', (_, frame, reason) => {
    expect(agentReason(json(frame))).toMatch(reason);
  });
});

describe('decodeHubFrame', () => {
  it('accepts a welcome', () => {
    expect(decodeHubFrame(json(welcome))).toEqual({ ok: true, frame: welcome });
  });

  it('accepts a target carrying a full AssignedReplica, credentials included', () => {
    const d = decodeHubFrame(json(target));
    expect(d).toEqual({ ok: true, frame: target });
    if (!d.ok || d.frame.type !== 'target') throw new Error('expected a target');
    expect(d.frame.replicas[0]!.container.registryAuth).toEqual({ username: 'u', password: 'p', serveraddress: 'registry.example.com' });
    expect(d.frame.replicas[0]!.container.ports).toEqual([
      { containerPort: 80, hostPort: 8080, protocol: 'tcp' },
      { containerPort: 53, hostPort: null, protocol: 'udp' },
    ]);
  });

  it('accepts an empty target (the node should run nothing)', () => {
    expect(decodeHubFrame(json({ type: 'target', generation: 0, replicas: [] })).ok).toBe(true);
  });

  it('accepts a Buffer', () => {
    expect(decodeHubFrame(Buffer.from(json(welcome)))).toEqual({ ok: true, frame: welcome });
  });

  it('refuses a frame type an agent sends', () => {
    expect(hubReason(json(hello))).toMatch(/unknown frame type "hello"/);
    expect(hubReason(json(ack))).toMatch(/unknown frame type "ack"/);
  });

  it('refuses a welcome with a heartbeat interval below 100 ms', () => {
    expect(hubReason(json({ ...welcome, heartbeatIntervalMs: 10 }))).toMatch(/invalid welcome frame: heartbeatIntervalMs: must be >= 100/);
  });

  it('refuses a target whose container spec is not normalized', () => {
    const a = assigned();
    const { resources: _resources, ...noResources } = a.container;
    expect(hubReason(json({ ...target, replicas: [{ ...a, container: noResources }] }))).toMatch(/replicas\[0\]\.container\.resources: is required/);
    expect(hubReason(json({ ...target, replicas: [{ ...a, container: { ...a.container, ports: [{ containerPort: 80 }] } }] }))).toMatch(
      /replicas\[0\]\.container\.ports\[0\]\.(hostPort|protocol): is required/,
    );
    expect(hubReason(json({ ...target, replicas: [{ ...a, container: { ...a.container, image: '' } }] }))).toMatch(/container\.image/);
  });

  it('refuses non-JSON', () => {
    expect(hubReason('welcome')).toMatch(/not valid JSON/);
  });
});

describe('encodeFrame', () => {
  it.each<[string, Parameters<typeof encodeFrame>[0]]>([
    ['hello', hello],
    ['heartbeat', heartbeat],
    ['ack', ack],
    ['status', status],
  ])('round-trips an agent frame (%s) through decodeAgentFrame', (_, frame) => {
    const text = encodeFrame(frame);
    expect(typeof text).toBe('string');
    expect(decodeAgentFrame(text)).toEqual({ ok: true, frame });
    expect(decodeAgentFrame(Buffer.from(text))).toEqual({ ok: true, frame });
  });

  it.each<[string, Parameters<typeof encodeFrame>[0]]>([
    ['welcome', welcome],
    ['target', target],
  ])('round-trips a hub frame (%s) through decodeHubFrame', (_, frame) => {
    expect(decodeHubFrame(encodeFrame(frame))).toEqual({ ok: true, frame });
  });

  it('writes JSON', () => {
    expect(JSON.parse(encodeFrame(ack))).toEqual(ack);
  });
});
