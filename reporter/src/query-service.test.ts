/**
 * The query service's pure parts: which level each part of a window is read from, the
 * significance rule of a comparison, and the upper bound that lets a top-N by percentile stop
 * reading sketches early (it must never be below an answer).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newSketch } from '../../sensor/src/aggregate/sketch.ts';
import { prng } from '../../test/support/prng.ts';
import { percentileBound, planSegments, significantChange } from './query-service.ts';
import type { LevelState } from './store/report-store.ts';

const H = 3600, D = 86_400;
const T = 1_767_571_200; // a midnight
const NONE: LevelState = { hourly_source_deleted_until_s: null, daily_source_deleted_until_s: null, hourly_rolled_until_s: null, daily_rolled_until_s: null };

test('windows are split by level: daily rows before the daily deletion point, hourly before the hourly one, level 1 after', () => {
  assert.deepEqual(planSegments(T, T + D, NONE, { hour: true, day: true }), [{ level: 0, start_s: T, end_s: T + D }]);
  const st: LevelState = { hourly_source_deleted_until_s: T, daily_source_deleted_until_s: T - D, hourly_rolled_until_s: T, daily_rolled_until_s: T - D };
  assert.deepEqual(planSegments(T - 3 * D, T + H, st, { hour: false, day: false }), [
    { level: D, start_s: T - 3 * D, end_s: T - D },
    { level: H, start_s: T - D, end_s: T },
    { level: 0, start_s: T, end_s: T + H },
  ]);
  // a window inside level 1 only
  assert.deepEqual(planSegments(T + H, T + 2 * H, st, { hour: false, day: false }), [{ level: 0, start_s: T + H, end_s: T + 2 * H }]);
});

test('rows already rolled up are read from the coarser level only when allowed and on its boundaries', () => {
  const st: LevelState = { hourly_source_deleted_until_s: null, daily_source_deleted_until_s: null, hourly_rolled_until_s: T + 6 * H, daily_rolled_until_s: T };
  assert.deepEqual(planSegments(T, T + 10 * H, st, { hour: true, day: true }), [
    { level: H, start_s: T, end_s: T + 6 * H },
    { level: 0, start_s: T + 6 * H, end_s: T + 10 * H },
  ]);
  assert.deepEqual(planSegments(T, T + 10 * H, st, { hour: false, day: false }), [{ level: 0, start_s: T, end_s: T + 10 * H }]);
  // not on an hour boundary: level 1 throughout
  assert.deepEqual(planSegments(T + 300, T + 10 * H, st, { hour: true, day: true }), [{ level: 0, start_s: T + 300, end_s: T + 10 * H }]);
  // the window ends inside the rolled-up hours: hourly rows up to its last whole hour
  assert.deepEqual(planSegments(T, T + 2 * H + 600, st, { hour: true, day: true }), [
    { level: H, start_s: T, end_s: T + 2 * H },
    { level: 0, start_s: T + 2 * H, end_s: T + 2 * H + 600 },
  ]);
  const days: LevelState = { ...st, hourly_rolled_until_s: T + 3 * D, daily_rolled_until_s: T + 2 * D };
  assert.deepEqual(planSegments(T, T + 3 * D, days, { hour: true, day: true }), [
    { level: D, start_s: T, end_s: T + 2 * D },
    { level: H, start_s: T + 2 * D, end_s: T + 3 * D },
  ]);
});

test('significance: exact statistics on any change, percentiles beyond the 1 % error of both estimates', () => {
  assert.equal(significantChange(100, 100, 0), false);
  assert.equal(significantChange(100, 100.001, 0), true);
  assert.equal(significantChange(100, 100, 0.01), false);
  assert.equal(significantChange(100, 101.5, 0.01), false, '1.5 % is within the error of two 1 % estimates');
  // the ranges [v/1.01, v/0.99] touch at a ratio of 1.01/0.99 = 1.0202…
  assert.equal(significantChange(100, 102.1, 0.01), true);
  assert.equal(significantChange(102.1, 100, 0.01), true, 'either direction');
  assert.equal(significantChange(100, 150, 0.01), true);
});

test('the percentile bound is never below the answer (sketch estimate clamped to min/max)', () => {
  const rng = prng(7);
  for (let trial = 0; trial < 300; trial++) {
    const n = 1 + Math.floor(rng() * (trial % 3 === 0 ? 5 : 400));
    const values: number[] = [];
    for (let i = 0; i < n; i++) {
      // log-normal-ish, heavy-tailed (Pareto), or constant
      const v = trial % 5 === 0 ? 5e6 : trial % 2 === 0 ? 1e6 * Math.exp(3 * rng()) : 1e6 / Math.pow(1 - rng() * 0.999, 1.5);
      values.push(Math.round(v));
    }
    const s = newSketch();
    for (const v of values) s.accept(v);
    const min = Math.min(...values), max = Math.max(...values), sum = values.reduce((a, b) => a + b, 0);
    for (const q of [0.5, 0.9, 0.95, 0.99]) {
      const answer = Math.round(Math.min(max, Math.max(min, s.getValueAtQuantile(q))));
      const bound = percentileBound({ count: BigInt(n), sum, min, max }, q);
      assert.ok(answer <= bound, `trial ${trial} n ${n} q ${q}: answer ${answer} above bound ${bound}`);
    }
  }
});
