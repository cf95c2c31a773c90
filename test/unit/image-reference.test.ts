import { describe, expect, it } from 'vitest';
import { imageReferenceError } from '../../hub/spec/image-reference.js';

describe('image references', () => {
  it.each([
    'busybox',
    'busybox:1',
    'library/busybox:latest',
    '127.0.0.1:5000/busybox:1',
    'localhost:5000/team/web',
    'registry.example.com/team/web-app:1.2.3',
    'registry-1.example.com:443/a/b/c_d__e.f--g:v1_2-3.4',
    `web@sha256:${'a'.repeat(64)}`,
    `registry.example.com/web:1@sha256:${'0123456789abcdef'.repeat(4)}`,
    '[::1]:5000/web:1',
    `web:${'t'.repeat(128)}`,
  ])('accepts %s', (ref) => {
    expect(imageReferenceError(ref)).toBeNull();
  });

  it.each([
    ['not a valid ref !!', /whitespace/],
    ['web:1\n', /whitespace/],
    ['web:\u0000', /control/],
    ['web:1\u00a0', /whitespace/],
    ['wéb:1', /printable ASCII/],
    ['web:\ud800', /printable ASCII/],
    ['Web:1', /not an image reference/],
    ['web:', /not an image reference/],
    ['web:-1', /not an image reference/],
    [`web:${'t'.repeat(129)}`, /not an image reference/],
    ['web@sha256:abc', /not an image reference/],
    ['-web', /not an image reference/],
    ['web..app', /not an image reference/],
    ['web/', /not an image reference/],
    ['/web', /not an image reference/],
    ['team//web', /not an image reference/],
    ['web?x=1', /not an image reference/],
    ['../../containers/json', /not an image reference/],
    [`${'a'.repeat(256)}:1`, /at most 255/],
  ])('refuses %j', (ref, reason) => {
    expect(imageReferenceError(ref)).toMatch(reason);
  });
});
