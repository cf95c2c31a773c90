import { describe, expect, it } from 'vitest';
import { newReplicaId } from '../../hub/replica-id.js';

describe('newReplicaId', () => {
  it('gives the service name, a dot and ten hex digits, distinct across several refills of its pool', () => {
    const ids = Array.from({ length: 5000 }, () => newReplicaId('web'));
    for (const id of ids) expect(id).toMatch(/^web\.[0-9a-f]{10}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
