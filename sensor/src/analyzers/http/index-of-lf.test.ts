import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { indexOfLF } from './index-of-lf.ts';

/** The answer by definition: the first LF in b[from, to). */
function naive(b: Uint8Array, from: number, to: number): number {
  for (let i = from; i < to; i++) if (b[i] === 0x0a) return i;
  return -1;
}

function lcg(seed: number): (n: number) => number {
  return (n) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
}

describe('indexOfLF', () => {
  // bytes that differ from LF by one bit, or share its low bits: what a wrong word test would take for LF
  const NEAR = [0x0b, 0x09, 0x08, 0x0e, 0x1a, 0x2a, 0x4a, 0x8a, 0x8b, 0x0a ^ 0xff, 0x00, 0xff, 0x0d];

  function buffer(rnd: (n: number) => number, bytes: number, lf_every: number): Uint8Array {
    const b = new Uint8Array(bytes);
    for (let i = 0; i < bytes; i++) b[i] = rnd(lf_every) === 0 ? 0x0a : NEAR[rnd(NEAR.length)]!;
    return b;
  }

  test('agrees with a byte-by-byte search on large buffers (the word path), at every alignment of from and to', () => {
    const rnd = lcg(3);
    for (const lf_every of [2, 7, 40, 400, 100_000]) {
      const b = buffer(rnd, 256 * 1024, lf_every);
      for (let k = 0; k < 3000; k++) {
        const from = rnd(b.length);
        const to = Math.min(b.length, from + rnd(k % 10 === 0 ? 5000 : 64));
        assert.equal(indexOfLF(b, from, to), naive(b, from, to), `every ${lf_every}: [${from}, ${to})`);
      }
    }
  });

  test('an LF at each byte of a word, and just outside the range, in turn', () => {
    const b = new Uint8Array(128 * 1024).fill(0x0b);
    for (let at = 1000; at < 1016; at++) {
      b[at] = 0x0a;
      for (let from = 992; from <= at + 1; from++) {
        assert.equal(indexOfLF(b, from, at + 1), from <= at ? at : -1, `LF at ${at}, from ${from}`);
        assert.equal(indexOfLF(b, from, at), -1, `LF at ${at} is past to`);
      }
      b[at] = 0x0b;
    }
  });

  test('two large buffers taken in turns, small buffers and a view not on a 4-byte boundary', () => {
    const rnd = lcg(9);
    const a = buffer(rnd, 70_000, 50), c = buffer(rnd, 90_000, 50);
    const small = buffer(rnd, 1000, 50);
    const odd = new Uint8Array(c.buffer, 3, 80_000);
    for (let k = 0; k < 2000; k++) {
      for (const b of [a, c, small, odd]) {
        const from = rnd(b.length);
        const to = Math.min(b.length, from + rnd(300));
        assert.equal(indexOfLF(b, from, to), naive(b, from, to));
      }
    }
  });
});
