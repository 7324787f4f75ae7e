import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SummaryRecord, TransactionRecord } from '../output/records.ts';
import { IntervalAggregator } from './interval-aggregator.ts';
import { mergeSummaries } from './merge.ts';
import { RELATIVE_ACCURACY, decodeSketch } from './sketch.ts';
import { T0, normal, prng, relErr, trueQuantile, tx } from './test-helpers.ts';

function summarise(records: [TransactionRecord, number][], options: { sensor_id?: string; interval_s?: number } = {}): SummaryRecord[] {
  const out: SummaryRecord[] = [];
  const agg = new IntervalAggregator({ sensor_id: 's1', ...options }, (s) => out.push(s));
  for (const [r, t] of records) agg.add(r, t);
  agg.advanceTo(T0 + 100_000);
  agg.flush();
  return out;
}

function randomRecords(seed: number, n: number, from_s: number, span_s: number): [TransactionRecord, number][] {
  const rnd = prng(seed);
  const outcomes = ['ok', 'ok', 'ok', 'error', 'timeout'] as const;
  const out: [TransactionRecord, number][] = [];
  for (let i = 0; i < n; i++) {
    const ttfr = rnd() < 0.1 ? null : Math.round(2e6 * Math.exp(normal(rnd)));
    out.push([tx({
      ttfr_ns: ttfr,
      ttlr_ns: ttfr === null ? null : ttfr + Math.round(rnd() * 1e6),
      request_ns: rnd() < 0.3 ? 0 : Math.round(rnd() * 5e4),
      response_bytes: Math.round(rnd() * 1e5),
      client_mss: rnd() < 0.5 ? null : 1460,
      outcome: outcomes[Math.floor(rnd() * outcomes.length)]!,
    }), from_s + Math.floor(rnd() * span_s)]);
  }
  return out;
}

describe('mergeSummaries', () => {
  it('of two intervals equals the summary of the union of their records', () => {
    const first = randomRecords(1, 3000, T0, 300);
    const second = randomRecords(2, 1700, T0 + 300, 300);
    const [a, b] = summarise([...first, ...second], { interval_s: 300 });
    const [u] = summarise([...first, ...second], { interval_s: 600 });
    assert.ok(a && b && u);
    assert.deepEqual([a.interval_start, b.interval_start, u.interval_start], ['2026-01-01T00:00:00Z', '2026-01-01T00:05:00Z', '2026-01-01T00:00:00Z']);
    const m = mergeSummaries(a, b);
    assert.equal(m.interval_start, u.interval_start);
    assert.equal(m.interval_s, 600);
    assert.equal(m.count, 4700);
    assert.equal(m.count, u.count);
    assert.deepEqual(m.outcomes, u.outcomes);
    assert.deepEqual(Object.keys(m.metrics).sort(), Object.keys(u.metrics).sort());
    for (const [name, mu] of Object.entries(u.metrics)) {
      const mm = m.metrics[name]!;
      assert.deepEqual([mm.count, mm.sum, mm.min, mm.max], [mu.count, mu.sum, mu.min, mu.max], name);
      if (mu.sketch === undefined) continue;
      // sketches merge exactly, so the percentiles are those of the union's own sketch…
      assert.deepEqual([mm.p50, mm.p90, mm.p95, mm.p99], [mu.p50, mu.p90, mu.p95, mu.p99], name);
      const dm = decodeSketch(mm.sketch!), du = decodeSketch(mu.sketch!);
      for (let q = 0; q <= 200; q++) assert.equal(dm.getValueAtQuantile(q / 200), du.getValueAtQuantile(q / 200), `${name} q=${q / 200}`);
    }
    // …and within the sketch's error of the true percentiles of the union
    const ttfr = [...first, ...second].map(([r]) => r.ttfr_ns).filter((v): v is number => v !== null).sort((x, y) => x - y);
    for (const [q, p] of [[0.5, m.metrics.ttfr_ns!.p50], [0.9, m.metrics.ttfr_ns!.p90], [0.95, m.metrics.ttfr_ns!.p95], [0.99, m.metrics.ttfr_ns!.p99]] as const) {
      assert.ok(relErr(p!, trueQuantile(ttfr, q)) <= RELATIVE_ACCURACY, `p${q * 100}`);
    }
    assert.equal(m.metrics.ttfr_ns!.count, ttfr.length);
  });

  it('combines sensors of the same interval, leaving its inputs as they were', () => {
    const [a] = summarise(randomRecords(3, 200, T0, 300), { sensor_id: 'north' });
    const [b] = summarise(randomRecords(4, 300, T0, 300), { sensor_id: 'south' });
    const a_before = structuredClone(a), b_before = structuredClone(b);
    const m = mergeSummaries(a!, b!);
    assert.deepEqual([a, b], [a_before, b_before]);
    assert.deepEqual([m.sensor, m.interval_start, m.interval_s, m.count], ['*', '2026-01-01T00:00:00Z', 300, 500]);
    assert.equal(mergeSummaries(a!, a!).sensor, 'north');
    assert.equal(mergeSummaries(a!, a!).count, 400);
  });

  it('keeps metrics present on one side only, and propagates partial', () => {
    const [a] = summarise([[tx({ ttla_ns: 5000, ttfr_ns: 100 }), T0]]);
    const [b] = summarise([[tx({ ttfr_ns: 300 }), T0 + 300]]);
    const m = mergeSummaries(a!, { ...b!, partial: true });
    assert.deepEqual([m.metrics.ttla_ns!.count, m.metrics.ttla_ns!.p50], [1, 5000]);
    assert.deepEqual([m.metrics.ttfr_ns!.count, m.metrics.ttfr_ns!.min, m.metrics.ttfr_ns!.max, m.metrics.ttfr_ns!.p99], [2, 100, 300, 100]);
    assert.equal(m.partial, true);
    assert.equal(mergeSummaries(a!, b!).partial, undefined);
  });

  it('sums negative_clamped and drops percentiles when a side has no sketch', () => {
    const [a] = summarise([[tx({ ttfr_ns: -1 }), T0]]);
    const [b] = summarise([[tx({ ttfr_ns: -2 }), T0], [tx({ ttfr_ns: 9 }), T0]]);
    assert.equal(mergeSummaries(a!, b!).metrics.ttfr_ns!.negative_clamped, 2);
    const stripped = structuredClone(b!);
    delete stripped.metrics.ttfr_ns!.sketch;
    const m = mergeSummaries(a!, stripped).metrics.ttfr_ns!;
    assert.deepEqual(m, { count: 3, sum: 9, min: 0, max: 9, negative_clamped: 2 });
  });

  it('refuses summaries of different keys', () => {
    const [a] = summarise([[tx(), T0]]);
    const [b] = summarise([[tx({ signature: 'POST' }), T0]]);
    assert.throws(() => mergeSummaries(a!, b!), /different signature/);
  });
});
