import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { SummarySchema } from '@wiretime/proto/gen/wiretime/v1/summary_pb.ts';
import { IntervalAggregator } from '../aggregate/interval-aggregator.ts';
import { encodeSketch, newSketch, quantiles } from '../aggregate/sketch.ts';
import { T0, tx } from '../aggregate/test-helpers.ts';
import type { SummaryMetric, SummaryRecord } from '../output/records.ts';
import { fromSummaryMessage, toSummaryMessage } from './summary-message.ts';

/** A timing metric as the aggregator writes it: quantiles from the sketch, clamped to min/max. */
function timing(values: number[], negative_clamped = 0): SummaryMetric {
  const sk = newSketch();
  for (const v of values) sk.accept(v);
  const m: SummaryMetric = { count: values.length, sum: values.reduce((a, b) => a + b, 0), min: Math.min(...values), max: Math.max(...values) };
  Object.assign(m, quantiles(sk, m));
  if (negative_clamped > 0) m.negative_clamped = negative_clamped;
  m.sketch = encodeSketch(sk);
  return m;
}

const http: SummaryRecord = {
  type: 'summary',
  interval_start: '2026-01-01T00:05:00Z',
  interval_s: 300,
  sensor: 'farm-a',
  server: '10.2.0.1',
  server_port: 80,
  transport: 'tcp',
  protocol: 'http',
  signature: 'GET_/index',
  count: 5,
  outcomes: { ok: 4, error: 1 },
  metrics: {
    ttfr_ns: timing([1_000_000, 2_500_000, 3_000_000, 12_000_000, 250_000_000], 2),
    ttlr_ns: timing([1_500_000, 2_600_000, 3_100_000, 15_000_000, 251_000_000]),
    response_bytes: { count: 5, sum: 12_345, min: 12, max: 9_000 },
  },
};

const dns: SummaryRecord = {
  type: 'summary',
  interval_start: '2025-12-31T23:59:00Z',
  interval_s: 60,
  sensor: 'farm-b',
  server: '2001:db8::53',
  server_port: 53,
  transport: 'udp',
  protocol: 'dns',
  signature: 'DNS_A',
  count: 1,
  outcomes: { timeout: 1 },
  metrics: {},
  partial: true,
};

describe('summary message', () => {
  it('round-trips hand-made summaries (through the wire bytes too)', () => {
    for (const s of [http, dns]) {
      const m = toSummaryMessage(s);
      assert.deepEqual(fromSummaryMessage(m, s.sensor), s);
      const wire = fromBinary(SummarySchema, toBinary(SummarySchema, m));
      assert.deepEqual(fromSummaryMessage(wire, s.sensor), s);
    }
  });

  it('maps the fields: epoch seconds, sketch bytes, repeated fields sorted by name', () => {
    const m = toSummaryMessage(http);
    assert.equal(m.intervalStartS, BigInt(Date.UTC(2026, 0, 1, 0, 5) / 1000));
    assert.equal(m.count, 5n);
    assert.deepEqual(m.outcomes.map((o) => [o.outcome, o.count]), [['error', 1n], ['ok', 4n]]);
    assert.deepEqual(m.metrics.map((x) => x.name), ['response_bytes', 'ttfr_ns', 'ttlr_ns']);
    assert.deepEqual(Buffer.from(m.metrics[1]!.sketch), Buffer.from(http.metrics.ttfr_ns!.sketch!, 'base64'));
    assert.equal(m.metrics[0]!.sketch.length, 0);
    assert.equal(m.metrics[1]!.negativeClamped, 2n);
    assert.equal(m.partial, false);
    assert.equal(toSummaryMessage(dns).partial, true);
  });

  it('encodes the same summary to the same bytes whatever the key order of its objects', () => {
    const reordered: SummaryRecord = { ...http, outcomes: { error: 1, ok: 4 }, metrics: { response_bytes: http.metrics.response_bytes!, ttlr_ns: http.metrics.ttlr_ns!, ttfr_ns: http.metrics.ttfr_ns! } };
    assert.deepEqual(toBinary(SummarySchema, toSummaryMessage(reordered)), toBinary(SummarySchema, toSummaryMessage(http)));
  });

  it('round-trips what the IntervalAggregator emits', () => {
    const out: SummaryRecord[] = [];
    const agg = new IntervalAggregator({ sensor_id: 's1', interval_s: 60 }, (s) => out.push(s));
    for (let i = 0; i < 200; i++) agg.add(tx({ ttfr_ns: 1_000 * (i + 1) ** 2, ttlr_ns: 2_000 * (i + 1) ** 2, response_bytes: 100 + i, outcome: i % 7 === 0 ? 'error' : 'ok' }), T0 + (i % 120));
    agg.advanceTo(T0 + 10_000);
    agg.flush();
    assert.ok(out.length >= 2);
    for (const s of out) assert.deepEqual(fromSummaryMessage(toSummaryMessage(s), s.sensor), s);
  });

  it('refuses an interval start that is not a whole-second RFC 3339 time', () => {
    assert.throws(() => toSummaryMessage({ ...dns, interval_start: 'yesterday' }), /bad interval_start/);
    assert.throws(() => toSummaryMessage({ ...dns, interval_start: '2026-01-01T00:00:00.5Z' }), /bad interval_start/);
  });
});
