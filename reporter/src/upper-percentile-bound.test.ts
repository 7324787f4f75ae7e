/**
 * The upper percentiles (collector/src/rollup.ts upperPercentiles, migration 005) and the bound
 * the reporter takes from them (storedPercentileBound), against brute force: random groups of
 * rows, each row a sketch of known values; each row's upper value must be within the sketch's 1 %
 * of its sorted values at rank min(n−1, ⌈q·n⌉), and the bound from the highest of them must be at
 * or above what the reporter answers for the group (the percentile of the merged sketch, clamped
 * to the exact min/max and rounded, as statisticValue does), however many rows and whatever their
 * sizes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { upperPercentiles } from '../../collector/src/rollup.ts';
import { newSketch, quantiles, RELATIVE_ACCURACY, type Sketch } from '../../sensor/src/aggregate/sketch.ts';
import { prng } from '../../test/support/prng.ts';
import { storedPercentileBound } from './query-service.ts';
import type { PercentileKey } from './store/report-store.ts';

const LEVELS = [['p50', 0.5], ['p90', 0.9], ['p95', 0.95], ['p99', 0.99]] as const;

interface Row { values: number[]; sketch: Sketch; min: number; max: number }

function row(values: number[]): Row {
  const sketch = newSketch();
  for (const v of values) sketch.accept(v);
  return { values, sketch, min: Math.min(...values), max: Math.max(...values) };
}

/** What the reporter answers for a group at level q: the merged sketch's value, clamped, rounded. */
function answer(rows: readonly Row[], q: number): number {
  const merged = newSketch();
  for (const r of rows) merged.merge(r.sketch);
  const min = Math.min(...rows.map((r) => r.min)), max = Math.max(...rows.map((r) => r.max));
  return Math.round(Math.min(max, Math.max(min, merged.getValueAtQuantile(q))));
}

test('each upper value is within 1 % of the sorted values at rank min(n−1, ⌈q·n⌉)', () => {
  const rng = prng(7);
  for (let i = 0; i < 300; i++) {
    const n = i < 20 ? i + 1 : 1 + Math.floor(rng() * 300);
    const values = Array.from({ length: n }, () => Math.round(1e5 * Math.exp(8 * rng())));
    const r = row(values);
    const u = upperPercentiles(r.sketch, r.min, r.max);
    const sorted = [...values].sort((a, b) => a - b);
    for (const [key, q] of LEVELS) {
      const truth = sorted[Math.min(n - 1, Math.ceil(q * n))]!;
      assert.ok(Math.abs(u[key] - truth) <= RELATIVE_ACCURACY * truth + 0.5, `n ${n} ${key}: ${u[key]} vs ${truth}`);
    }
  }
});

test('the bound from the rows\' upper values is never below the group\'s answer; the percentiles\' bound holds where it gives one', () => {
  const rng = prng(99);
  let groups = 0, lower_bounded = 0;
  for (let g = 0; g < 400; g++) {
    // 1 … 30 rows of 1 … 120 values: some levels apart, some with slow outliers, some {1 ms, 2 s}
    const count = 1 + Math.floor(rng() * (g % 2 === 0 ? 4 : 30));
    const rows: Row[] = [];
    for (let i = 0; i < count; i++) {
      if (g % 7 === 0) {
        rows.push(row([1e6, 2e9]));
        continue;
      }
      const level = 1e6 * 10 ** (2 * rng());
      const n = 1 + Math.floor(rng() * (rng() < 0.3 ? 3 : 120));
      rows.push(row(Array.from({ length: n }, () => Math.round(level * Math.exp(rng()) * (rng() < 0.02 ? 50 : 1)))));
    }
    const N = rows.reduce((a, r) => a + r.values.length, 0);
    for (const [key, q] of LEVELS) {
      const truth = answer(rows, q);
      const ups = rows.map((r) => upperPercentiles(r.sketch, r.min, r.max)[key]);
      const upper_key: PercentileKey = { key, q, upper: true };
      const b = storedPercentileBound([{ max: Math.max(...ups), rank_sum: 0 }], [upper_key], q, BigInt(N));
      assert.ok(Number.isFinite(b) && b >= truth, `group ${g} (${count} rows, ${N} values) ${key}: bound ${b} below the answer ${truth}`);
      // the percentiles themselves, with their rank sum: a bound only where the ranks add up
      const lows = rows.map((r) => quantiles(r.sketch, { min: r.min, max: r.max })[key]);
      const rank_sum = rows.reduce((a, r) => a + Math.floor(q * (r.values.length - 1)) + 1, 0);
      const lb = storedPercentileBound([{ max: Math.max(...lows), rank_sum }], [{ key, q }], q, BigInt(N));
      if (Number.isFinite(lb)) {
        lower_bounded++;
        assert.ok(lb >= truth, `group ${g} ${key}: percentiles' bound ${lb} below the answer ${truth}`);
      }
      groups++;
    }
  }
  assert.ok(lower_bounded > 0 && lower_bounded < groups, `the percentiles bound some groups (${lower_bounded} of ${groups}), not all`);
});

test('three rows of {1 ms, 2 s}: each row\'s p95 is 1 ms, its upper p95 is 2 s (within 1 %), as is the union\'s p95', () => {
  const rows = [row([1e6, 2e9]), row([1e6, 2e9]), row([1e6, 2e9])];
  const near2s = (v: number) => Math.abs(v - 2e9) <= RELATIVE_ACCURACY * 2e9;
  let highest = 0;
  for (const r of rows) {
    assert.equal(quantiles(r.sketch, { min: r.min, max: r.max }).p95, 1e6);
    const u = upperPercentiles(r.sketch, r.min, r.max).p95;
    assert.ok(near2s(u), `upper p95 ${u}`);
    highest = Math.max(highest, u);
  }
  const union = answer(rows, 0.95);
  assert.ok(near2s(union), `the union's p95 ${union}`);
  assert.ok(storedPercentileBound([{ max: highest, rank_sum: 0 }], [{ key: 'p95', q: 0.95, upper: true }], 0.95, 6n) >= union);
});
