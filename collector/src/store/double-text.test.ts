// writeDouble and writeInteger against String(x), the definition they stand in for, on random
// doubles over the whole range writeDouble takes (16 ≤ |x| < 2^53, not integral), on short
// decimals and their neighbours one ulp away, on every binade's first and last steps, and on
// the ingest bench's shapes; and on doubles it must leave to String(x).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prng as rng } from '../../../test/support/prng.ts';
import { writeDouble, writeInteger } from './double-text.ts';

const out = new Uint8Array(64);
const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

function text(x: number): string | null {
  const end = writeDouble(out, 0, x);
  return end < 0 ? null : Buffer.from(out.subarray(0, end)).toString('latin1');
}

test('writeDouble writes what String(x) writes, for every double it takes', () => {
  const r = rng(7);
  let taken = 0;
  const same = (x: number) => {
    const got = text(x);
    if (got === null) return;
    taken++;
    if (got !== String(x)) assert.fail(`${String(x)}: wrote ${got}`);
  };
  for (let i = 0; i < 300_000; i++) {
    // random significand bits in each binade from 2^4 to 2^52
    const e = 4 + Math.floor(r() * 49);
    u32[1] = ((e + 1023) << 20) | Math.floor(r() * 0x10_0000);
    u32[0] = Math.floor(r() * 2 ** 32);
    const x = f64[0]!;
    same(x);
    same(-x);
    // short decimals, and the doubles one ulp either side
    const d = 16 + Math.round(r() * 1e6) / 10 ** Math.floor(r() * 9);
    same(d);
    f64[0] = d;
    u32[0] = (u32[0]! + 1) >>> 0;
    same(f64[0]!);
    f64[0] = d;
    u32[0] = (u32[0]! - 1) >>> 0;
    same(f64[0]!);
    // the ingest bench's sums, minima and maxima
    const min = 1000 + r() * 1e5;
    same(min);
    same((min + r() * 1e7) * (3 + Math.floor(r() * 500)));
    same(min + r() * 5e7);
  }
  for (let e = 4; e < 53; e++) {
    const base = 2 ** e, ulp = 2 ** (e - 52);
    for (let k = 1; k < 300; k++) {
      same(base + k * ulp);
      same(2 * base - k * ulp);
      same(base + 0.5 + k * ulp);
      same(base + 0.1 * k);
    }
  }
  assert.ok(taken > 2_000_000, `${taken}`);
});

test('writeDouble leaves integers, |x| < 16, |x| ≥ 2^53 and non-finite values to String(x)', () => {
  for (const x of [0, -0, 1, 15.999, -15.5, 16, 17, 1e15, 2 ** 53, 2 ** 53 + 2, 1e21, 1.5e300, 5e-324, NaN, Infinity, -Infinity, 0.1]) {
    assert.equal(text(x), null, String(x));
  }
  assert.equal(text(16.5), '16.5');
  assert.equal(text(-(2 ** 51) - 0.5), String(-(2 ** 51) - 0.5));
});

test('writeInteger writes what String(n) writes below 2^53', () => {
  const r = rng(9);
  const ns = [0, 9, 10, 99, 100, 2 ** 31 - 1, 2 ** 31, 999_999_999_999_999, 1e15, 1e16 - 2, 1e16, 2 ** 53 - 1];
  for (let i = 0; i < 100_000; i++) ns.push(Math.floor(r() * 2 ** (1 + Math.floor(r() * 53))));
  for (const n of ns) {
    const end = writeInteger(out, 0, n);
    assert.equal(Buffer.from(out.subarray(0, end)).toString('latin1'), String(n));
  }
});
