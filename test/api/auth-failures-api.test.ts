/**
 * Failed authentications at the HTTP API and /v1/join, with the hub's default limits: one address
 * that keeps failing is slowed, then refused with 429 and Retry-After, while other addresses and
 * right tokens go on as before.
 */
import { describe, expect, it } from 'vitest';
import { apiHubPerTest } from '../helpers/api-hub.js';

const ADMIN = 'admin-token-for-auth-failures';
const api = apiHubPerTest('tether-auth-failures-', ADMIN);

const WRONG = `Bearer tat_0123456789abcdef.${'A'.repeat(43)}`;
const GREEDY = '198.51.100.7';

function get(url: string, authorization: string, remoteAddress: string) {
  return api.app.inject({ method: 'GET', url, remoteAddress, headers: { authorization } });
}

function burst(n: number, remoteAddress: string) {
  return Promise.all(Array.from({ length: n }, () => get('/v1/nodes', WRONG, remoteAddress)));
}

describe('failed authentications from one address', () => {
  it('are answered 401 up to the allowance and the slowed ones, then refused with 429 and Retry-After', async () => {
    // The allowance (10) and the slowed failures (10): each a 401 saying why.
    const first = await burst(20, GREEDY);
    expect(first.map((r) => r.statusCode)).toEqual(Array(20).fill(401));
    expect(first[0]!.json().error.code).toBe('unauthorized');

    const refused = await get('/v1/nodes', WRONG, GREEDY);
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('60');
    expect(refused.json().error).toMatchObject({ code: 'too_many_failures', message: expect.stringContaining('retry in 60 s') });

    // One table for every kind: the same address's join attempts are refused too.
    const join = await api.app.inject({ method: 'POST', url: '/v1/join', remoteAddress: GREEDY, payload: { joinToken: 'tjt_wrong', name: 'dev-1' } });
    expect(join.statusCode).toBe(429);
    expect(join.headers['retry-after']).toBe('60');

    const metrics = (await get('/metrics', `Bearer ${ADMIN}`, '127.0.0.1')).body;
    expect(metrics).toContain('tether_auth_failures_total{kind="api_token"} 21');
    expect(metrics).toContain('tether_auth_refused_total{kind="api_token"} 1');
    expect(metrics).toContain('tether_auth_refused_total{kind="join_token"} 1');
  });

  it('leave other addresses, and right tokens from the refused address, unaffected', async () => {
    await burst(21, GREEDY);
    expect((await get('/v1/nodes', WRONG, GREEDY)).statusCode).toBe(429);

    // Another address: its own allowance.
    const other = await get('/v1/nodes', WRONG, '198.51.100.8');
    expect(other.statusCode).toBe(401);
    expect((await get('/v1/nodes', `Bearer ${ADMIN}`, '198.51.100.8')).statusCode).toBe(200);
    // A right token is let through from the refused address: guessing 256 random bits gains nothing
    // from it, and others behind the same address must keep working.
    expect((await get('/v1/nodes', `Bearer ${ADMIN}`, GREEDY)).statusCode).toBe(200);
    // An IPv6 client's whole /64 counts as one address; another /64 does not share its count.
    await Promise.all(Array.from({ length: 21 }, (_, i) => get('/v1/nodes', WRONG, `2001:db8:0:1::${i + 1}`)));
    expect((await get('/v1/nodes', WRONG, '2001:db8:0:1:abcd::1')).statusCode).toBe(429);
    expect((await get('/v1/nodes', WRONG, '2001:db8:0:2::1')).statusCode).toBe(401);
  });

  it('leave the audit log one record per failure up to the refusal, none after it', async () => {
    const write = () => api.app.inject({ method: 'PUT', url: '/v1/services/web', remoteAddress: GREEDY, headers: { authorization: WRONG }, payload: { image: 'busybox:1' } });
    const answers = await Promise.all(Array.from({ length: 100 }, write));
    expect(answers.filter((r) => r.statusCode === 429)).toHaveLength(80);
    const audit = await get('/v1/audit?limit=1000', `Bearer ${ADMIN}`, '127.0.0.1');
    const statuses = (audit.json().records as Array<{ status: number }>).map((r) => r.status);
    expect(statuses).toEqual(Array(20).fill(401));
  });

  it('count wrong join tokens at /v1/join, and leave a right one from elsewhere alone', async () => {
    const wrong = () => api.app.inject({ method: 'POST', url: '/v1/join', remoteAddress: GREEDY, payload: { joinToken: 'tjt_wrong', name: 'dev-1' } });
    const answers = await Promise.all(Array.from({ length: 21 }, wrong));
    expect(answers.filter((r) => r.statusCode === 401)).toHaveLength(20);
    expect(answers.filter((r) => r.statusCode === 429)).toHaveLength(1);
    const { token } = await api.hub.nodes.createJoinToken(60);
    const joined = await api.app.inject({ method: 'POST', url: '/v1/join', remoteAddress: '198.51.100.9', payload: { joinToken: token, name: 'dev-2' } });
    expect(joined.statusCode).toBe(201);
  });
});
