import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SummaryRecord, TransactionRecord } from '../output/records.ts';
import { DRAIN_MIN, IntervalAggregator, SAMPLES_BEFORE_SKETCH, SPREAD_S, type AggregatorOptions } from './interval-aggregator.ts';
import { RELATIVE_ACCURACY, decodeSketch, newSketch, quantiles } from './sketch.ts';
import { T0, conn, prng, relErr, trueQuantile, tx } from './test-helpers.ts';

function collect(options: Partial<AggregatorOptions> = {}): { agg: IntervalAggregator; out: SummaryRecord[] } {
  const out: SummaryRecord[] = [];
  const agg = new IntervalAggregator({ sensor_id: 's1', ...options }, (s) => out.push(s));
  return { agg, out };
}

/** The list in the brief, written out here independently of the code under test. */
const TRANSACTION_NUMERIC = [
  'request_ns', 'ttfr_ns', 'ttlr_ns', 'ttla_ns', 'edt_ns', 'rtt_ns', 'rtt_server_ns', 'rtt_client_ns', 'request_bytes',
  'response_bytes', 'client_acks', 'bytes_acked', 'server_pkts', 'server_pkt_bytes_avg', 'server_pkt_bytes_max', 'client_mss',
  'server_mss', 'client_win_min', 'client_win_last', 'server_win_min', 'server_win_last', 'client_retransmits',
  'server_retransmits', 'client_out_of_order', 'server_out_of_order', 'client_lost_bytes', 'server_lost_bytes',
  'zero_window_events', 'request_retransmits',
];
const CONNECTION_NUMERIC = ['rtt_ns', 'rtt_server_ns', 'rtt_client_ns', 'syn_retransmits', 'syn_ack_retransmits', 'client_mss', 'server_mss'];

describe('IntervalAggregator: per-key counts', () => {
  it('counts, sums, min, max and outcomes of hand-made transactions', () => {
    const { agg, out } = collect();
    agg.add(tx({ ttfr_ns: 1000, request_bytes: 100, outcome: 'ok' }), T0 + 1);
    agg.add(tx({ ttfr_ns: 3000, request_bytes: 200, outcome: 'ok' }), T0 + 2);
    agg.add(tx({ ttfr_ns: null, request_bytes: 300, outcome: 'error' }), T0 + 3);
    agg.flush();
    assert.equal(out.length, 1);
    const s = out[0]!;
    assert.equal(s.type, 'summary');
    assert.equal(s.interval_start, '2026-01-01T00:00:00Z');
    assert.equal(s.interval_s, 300);
    assert.equal(s.sensor, 's1');
    assert.deepEqual([s.server, s.server_port, s.transport, s.protocol, s.signature], ['10.0.0.2', 80, 'tcp', 'http', 'GET']);
    assert.equal(s.count, 3);
    assert.deepEqual(s.outcomes, { ok: 2, error: 1 });
    const t = s.metrics.ttfr_ns!;
    assert.deepEqual([t.count, t.sum, t.min, t.max], [2, 4000, 1000, 3000]);
    // p50 and p99 of [1000, 3000] are both the value at rank ⌊q·1⌋ = 0: 1000 (within 1 %, clamped into [min, max])
    assert.ok(relErr(t.p50!, 1000) <= RELATIVE_ACCURACY && t.p50! >= 1000);
    assert.ok(relErr(t.p99!, 1000) <= RELATIVE_ACCURACY);
    assert.equal(typeof t.sketch, 'string');
    const rb = s.metrics.request_bytes!;
    assert.deepEqual(rb, { count: 3, sum: 600, min: 100, max: 300 }); // no sketch for a non-timing metric
    // always-present counters are metrics too; metrics never measured are left out
    assert.deepEqual(s.metrics.client_retransmits, { count: 3, sum: 0, min: 0, max: 0 });
    assert.equal(s.metrics.ttla_ns, undefined);
    assert.equal(s.partial, true);
  });

  it('summarises every numeric field of a transaction and of a connection, under its own name', () => {
    const { agg, out } = collect();
    const t: Record<string, unknown> = {};
    TRANSACTION_NUMERIC.forEach((name, i) => (t[name] = 1000 + i));
    agg.add(tx(t as Partial<TransactionRecord>), T0);
    const c: Record<string, unknown> = {};
    CONNECTION_NUMERIC.forEach((name, i) => (c[name] = 50 + i));
    agg.add(conn({ ...c, outcome: 'refused' }), T0);
    agg.flush();
    const [ts, cs] = [out.find((s) => s.signature === 'GET')!, out.find((s) => s.signature === 'TCP_CONNECT')!];
    assert.deepEqual(Object.keys(ts.metrics).sort(), [...TRANSACTION_NUMERIC].sort());
    TRANSACTION_NUMERIC.forEach((name, i) => assert.equal(ts.metrics[name]!.sum, 1000 + i, name));
    for (const name of TRANSACTION_NUMERIC) assert.equal(ts.metrics[name]!.sketch !== undefined, name.endsWith('_ns'), name);
    assert.deepEqual(Object.keys(cs.metrics).sort(), [...CONNECTION_NUMERIC].sort());
    CONNECTION_NUMERIC.forEach((name, i) => assert.equal(cs.metrics[name]!.sum, 50 + i, name));
    assert.deepEqual([cs.protocol, cs.signature, cs.count, cs.outcomes], ['tcp', 'TCP_CONNECT', 1, { refused: 1 }]);
  });

  it('keeps a duration of 0 as 0 and clamps negative durations to 0, counting them', () => {
    const { agg, out } = collect();
    agg.add(tx({ request_ns: 0, ttfr_ns: -5000 }), T0);
    agg.add(tx({ request_ns: 0, ttfr_ns: 4000 }), T0);
    agg.add(tx({ request_ns: 10, ttfr_ns: -1 }), T0);
    agg.flush();
    const m = out[0]!.metrics;
    assert.deepEqual({ ...m.request_ns, sketch: undefined }, { count: 3, sum: 10, min: 0, max: 10, p50: 0, p90: 0, p95: 0, p99: 0, sketch: undefined });
    const t = m.ttfr_ns!;
    assert.deepEqual([t.count, t.sum, t.min, t.max, t.negative_clamped, t.p50], [3, 4000, 0, 4000, 2, 0]);
    assert.equal(m.request_ns!.negative_clamped, undefined);
  });
});

describe('IntervalAggregator: intervals and capture time', () => {
  it('aligns intervals: 00:04:59 and 00:05:00 land in two intervals of 300 s', () => {
    const { agg, out } = collect({ interval_s: 300 });
    agg.add(tx(), T0 + 299);
    agg.add(tx(), T0 + 300);
    agg.add(tx(), T0 + 599);
    agg.flush();
    assert.deepEqual(out.map((s) => [s.interval_start, s.count]), [['2026-01-01T00:00:00Z', 1], ['2026-01-01T00:05:00Z', 2]]);
  });

  it('closes an interval exactly when capture time reaches its end + grace', () => {
    const { agg, out } = collect({ interval_s: 300, grace_s: 60 });
    agg.add(tx(), T0 + 10);
    agg.advanceTo(T0 + 300); // end of the interval: still open
    agg.advanceTo(T0 + 359.999999);
    assert.equal(out.length, 0);
    assert.equal(agg.stats().open_intervals, 1);
    agg.advanceTo(T0 + 360);
    assert.equal(out.length, 1);
    assert.equal(out[0]!.partial, undefined);
    assert.deepEqual(agg.stats(), { open_intervals: 0, keys: 0, summaries_emitted: 1, summaries_pending: 0, late_records: 0, overflowed_records: 0 });
    agg.advanceTo(T0 + 100); // time never goes back
    agg.flush();
    assert.equal(out.length, 1);
  });

  it('puts a record that finishes within the grace into its own interval', () => {
    const { agg, out } = collect({ interval_s: 300, grace_s: 60 });
    agg.add(tx(), T0 + 310);
    agg.advanceTo(T0 + 350);
    agg.add(tx({ ttfr_ns: 1 }), T0 + 299); // began in the first interval, reported 51 s after its end
    agg.advanceTo(T0 + 360);
    assert.deepEqual(out.map((s) => [s.interval_start, s.count]), [['2026-01-01T00:00:00Z', 1]]);
    assert.equal(agg.stats().late_records, 0);
  });

  it('files a record of a closed interval under the oldest open interval, counted as late', () => {
    const { agg, out } = collect({ interval_s: 300, grace_s: 60 });
    agg.add(tx({ signature: 'A' }), T0 + 10);
    agg.add(tx({ signature: 'B' }), T0 + 400); // interval 300
    agg.add(tx({ signature: 'C' }), T0 + 700); // interval 600
    agg.advanceTo(T0 + 360); // closes interval 0
    agg.add(tx({ signature: 'LATE' }), T0 + 20);
    assert.equal(agg.stats().late_records, 1);
    agg.flush();
    assert.deepEqual(out.map((s) => [s.interval_start, s.signature]), [
      ['2026-01-01T00:00:00Z', 'A'],
      ['2026-01-01T00:05:00Z', 'B'],
      ['2026-01-01T00:05:00Z', 'LATE'],
      ['2026-01-01T00:10:00Z', 'C'],
    ]);
  });

  it('files a late record under the interval capture time is in when none is open, never dropping it', () => {
    const { agg, out } = collect({ interval_s: 300, grace_s: 60 });
    agg.add(tx(), T0 + 10);
    agg.advanceTo(T0 + 1000); // interval 0 closes; capture time is in interval 900
    agg.add(tx({ signature: 'LATE' }), T0 + 5);
    agg.flush();
    assert.deepEqual(out.map((s) => [s.interval_start, s.signature, s.count, s.partial]), [
      ['2026-01-01T00:00:00Z', 'GET', 1, undefined],
      ['2026-01-01T00:15:00Z', 'LATE', 1, true],
    ]);
    assert.equal(agg.stats().late_records, 1);
  });

  it('marks intervals flushed before their end as partial, and only those', () => {
    const { agg, out } = collect({ interval_s: 300, grace_s: 60 });
    agg.add(tx(), T0 + 10);
    agg.add(tx(), T0 + 310);
    agg.advanceTo(T0 + 330); // the first interval has ended (within its grace), the second not
    agg.flush();
    assert.deepEqual(out.map((s) => [s.interval_start, s.partial]), [['2026-01-01T00:00:00Z', undefined], ['2026-01-01T00:05:00Z', true]]);
    assert.equal(agg.stats().open_intervals, 0);
  });

  it('emits the summaries of an interval sorted by key', () => {
    const { agg, out } = collect();
    const keys: [string, number, 'tcp' | 'udp', string, string][] = [
      ['10.0.0.9', 80, 'tcp', 'http', 'POST'], ['10.0.0.10', 53, 'udp', 'dns', 'A'], ['10.0.0.9', 8080, 'tcp', 'http', 'GET'],
      ['10.0.0.9', 80, 'tcp', 'http', 'GET'], ['10.0.0.10', 53, 'tcp', 'dns', 'A'], ['10.0.0.9', 443, 'tcp', 'tcp', 'REQUEST'],
    ];
    for (const [server, server_port, transport, protocol, signature] of keys) agg.add(tx({ server, server_port, transport, protocol, signature }), T0);
    agg.add(conn({ server: '10.0.0.9', server_port: 443 }), T0);
    agg.flush();
    assert.deepEqual(out.map((s) => `${s.server} ${s.server_port} ${s.transport} ${s.protocol} ${s.signature}`), [
      '10.0.0.10 53 tcp dns A',
      '10.0.0.10 53 udp dns A',
      '10.0.0.9 80 tcp http GET',
      '10.0.0.9 80 tcp http POST',
      '10.0.0.9 443 tcp tcp REQUEST',
      '10.0.0.9 443 tcp tcp TCP_CONNECT',
      '10.0.0.9 8080 tcp http GET',
    ]);
  });
});

describe('IntervalAggregator: a large close is handed out over capture time', () => {
  /** `keys` keys in the interval starting at `start`: servers 10.1.x.y, one transaction each */
  function fill(agg: IntervalAggregator, start: number, keys: number, signature = 'GET'): void {
    for (let k = 0; k < keys; k++) agg.add(tx({ server: `10.1.${k >> 8}.${k & 255}`, signature, ttfr_ns: 1000 + k }), start + 1);
  }
  const byKey = (a: SummaryRecord, b: SummaryRecord): number => (a.server < b.server ? -1 : a.server > b.server ? 1 : 0);

  it('a close of fewer than DRAIN_MIN keys comes out at once, as capture time passes end + grace', () => {
    const { agg, out } = collect({ interval_s: 300, grace_s: 60 });
    fill(agg, T0, DRAIN_MIN - 1);
    agg.advanceTo(T0 + 360);
    assert.equal(out.length, DRAIN_MIN - 1);
    assert.equal(agg.stats().summaries_pending, 0);
  });

  it('20 000 keys: DRAIN_MIN at the close, then a share per capture second, all within SPREAD_S seconds, in key order, each once', () => {
    const keys = 20_000;
    const { agg, out } = collect({ interval_s: 300, grace_s: 60 });
    fill(agg, T0, keys);
    agg.advanceTo(T0 + 360);
    assert.equal(out.length, DRAIN_MIN);
    assert.deepEqual(agg.stats().summaries_pending, keys - DRAIN_MIN);
    // the rest over SPREAD_S seconds: ⌈20 000 / 30⌉ = 667 a second, but never fewer than DRAIN_MIN a call
    const per_s = Math.max(DRAIN_MIN, Math.ceil(keys / SPREAD_S));
    let t = 0;
    while (out.length < keys) {
      t++;
      const before = out.length;
      agg.advanceTo(T0 + 360 + t);
      assert.ok(out.length - before <= per_s, `second ${t}: ${out.length - before} summaries`);
      assert.ok(out.length > before, `second ${t}: none`);
    }
    assert.ok(t <= SPREAD_S, `${t} s`);
    assert.equal(out.length, keys);
    assert.deepEqual(out.map((s) => s.server), [...out].sort(byKey).map((s) => s.server));
    assert.equal(new Set(out.map((s) => s.server)).size, keys);
    assert.equal(agg.stats().summaries_pending, 0);
    assert.equal(agg.stats().summaries_emitted, keys);
  });

  it('a gap in capture time hands out the share of the whole gap; flush hands out what is left', () => {
    const { agg, out } = collect({ interval_s: 300, grace_s: 60 });
    fill(agg, T0, 60_000);
    agg.advanceTo(T0 + 360);
    assert.equal(out.length, DRAIN_MIN);
    agg.advanceTo(T0 + 370); // 10 s later: ⌈60 000 / 30⌉ · 10 = 20 000 more
    assert.equal(out.length, DRAIN_MIN + 20_000);
    agg.flush();
    assert.equal(out.length, 60_000);
    assert.equal(agg.stats().summaries_pending, 0);
  });

  it('intervals still come out oldest first: the next close waits behind the summaries pending', () => {
    const { agg, out } = collect({ interval_s: 60, grace_s: 0 });
    fill(agg, T0, 5000, 'A');
    fill(agg, T0 + 60, 5000, 'B');
    agg.advanceTo(T0 + 60); // the first closes: DRAIN_MIN of it
    agg.advanceTo(T0 + 120); // the second closes; 60 s have passed: all pending go out
    agg.flush();
    assert.equal(out.length, 10_000);
    assert.deepEqual([...new Set(out.map((s) => `${s.interval_start} ${s.signature}`))], ['2026-01-01T00:00:00Z A', '2026-01-01T00:01:00Z B']);
  });

  it('a summary callback that throws loses that summary only: the rest stay pending, in order', () => {
    const out: SummaryRecord[] = [];
    let calls = 0;
    const agg = new IntervalAggregator({ sensor_id: 's1', interval_s: 300, grace_s: 60 }, (s) => {
      if (++calls === 3) throw new Error('sink down');
      out.push(s);
    });
    fill(agg, T0, 10);
    assert.throws(() => agg.advanceTo(T0 + 360), /sink down/);
    assert.equal(out.length, 2);
    assert.equal(agg.stats().summaries_pending, 7);
    agg.flush();
    assert.equal(out.length, 9);
    assert.deepEqual(out.map((s) => s.server), ['10.1.0.0', '10.1.0.1', '10.1.0.3', '10.1.0.4', '10.1.0.5', '10.1.0.6', '10.1.0.7', '10.1.0.8', '10.1.0.9']);
  });
});

describe('IntervalAggregator: bounds and sketches', () => {
  it('folds keys beyond max_keys_per_interval into an overflow key of the same server, counted', () => {
    const { agg, out } = collect({ max_keys_per_interval: 2 });
    agg.add(tx({ signature: 'A', ttfr_ns: 10 }), T0);
    agg.add(tx({ signature: 'B', ttfr_ns: 20 }), T0);
    agg.add(tx({ signature: 'C', ttfr_ns: 30 }), T0);
    agg.add(tx({ signature: 'D', ttfr_ns: 40, outcome: 'reset' }), T0);
    agg.add(tx({ signature: 'A', ttfr_ns: 50 }), T0); // an existing key still counts as itself
    agg.add(conn({ rtt_ns: 1000 }), T0); // a connection key beyond the limit: its own overflow key
    assert.deepEqual(agg.stats(), { open_intervals: 1, keys: 4, summaries_emitted: 0, summaries_pending: 0, late_records: 0, overflowed_records: 3 });
    agg.flush();
    assert.deepEqual(out.map((s) => [s.signature, s.count]), [[':overflow', 2], ['A', 2], ['B', 1], ['TCP_CONNECT:overflow', 1]]);
    const o = out[0]!;
    assert.deepEqual([o.server, o.server_port, o.protocol], ['10.0.0.2', 80, 'http']);
    assert.deepEqual(o.outcomes, { ok: 1, reset: 1 });
    assert.deepEqual([o.metrics.ttfr_ns!.sum, o.metrics.ttfr_ns!.min, o.metrics.ttfr_ns!.max], [70, 30, 40]);
    assert.equal(out[3]!.metrics.rtt_ns!.sum, 1000);
  });

  it('encodes sketches that decode to the same quantiles, and equal a sketch fed the same values', () => {
    const rnd = prng(42);
    const values: number[] = [];
    const { agg, out } = collect();
    for (let i = 0; i < 5000; i++) {
      const v = Math.round(1e5 * Math.exp(rnd() * 6));
      values.push(v);
      agg.add(tx({ ttfr_ns: v }), T0 + (i % 300));
    }
    agg.flush();
    const m = out[0]!.metrics.ttfr_ns!;
    const decoded = decodeSketch(m.sketch!);
    assert.deepEqual(quantiles(decoded, m), { p50: m.p50, p90: m.p90, p95: m.p95, p99: m.p99 });
    const direct = newSketch();
    for (const v of values) direct.accept(v);
    for (let q = 0; q <= 100; q++) assert.equal(decoded.getValueAtQuantile(q / 100), direct.getValueAtQuantile(q / 100));
    const sorted = [...values].sort((a, b) => a - b);
    for (const [q, p] of [[0.5, m.p50], [0.9, m.p90], [0.95, m.p95], [0.99, m.p99]] as const) {
      assert.ok(relErr(p!, trueQuantile(sorted, q)) <= RELATIVE_ACCURACY, `p${q * 100}`);
    }
  });

  it('gives the same sketch whether a metric stayed within the sample buffer or went past it', () => {
    for (const n of [1, SAMPLES_BEFORE_SKETCH - 1, SAMPLES_BEFORE_SKETCH, SAMPLES_BEFORE_SKETCH + 1, 3 * SAMPLES_BEFORE_SKETCH]) {
      const { agg, out } = collect();
      const direct = newSketch();
      for (let i = 0; i < n; i++) {
        const v = 1000 * (i + 1) + (i % 3);
        agg.add(tx({ ttlr_ns: v }), T0);
        direct.accept(v);
      }
      agg.flush();
      const m = out[0]!.metrics.ttlr_ns!;
      const d = decodeSketch(m.sketch!);
      assert.equal(d.count, n);
      for (let q = 0; q <= 20; q++) assert.equal(d.getValueAtQuantile(q / 20), direct.getValueAtQuantile(q / 20), `n=${n}`);
      assert.deepEqual({ p50: m.p50, p90: m.p90, p95: m.p95, p99: m.p99 }, quantiles(direct, m));
    }
  });

  it('keeps each timing metric\'s buckets apart while the others grow around them: every sketch equals one fed its values alone', () => {
    // 8 timing metrics of one key, values drifting up for some and down for others over six
    // decades (so every metric's range widens many times, on both sides), with zeros between.
    const TIMING = TRANSACTION_NUMERIC.slice(0, 8);
    const rnd = prng(9);
    const { agg, out } = collect();
    const direct = TIMING.map(() => newSketch());
    for (let i = 0; i < 4000; i++) {
      const over: Partial<TransactionRecord> = {};
      TIMING.forEach((name, k) => {
        const drift = (k % 2 === 0 ? i : 4000 - i) / 4000;
        const v = rnd() < 0.05 ? 0 : Math.round(Math.exp(2 + k * 0.7 + 12 * drift + rnd()));
        (over as Record<string, number>)[name] = v;
        direct[k]!.accept(v);
      });
      agg.add(tx(over), T0 + (i % 300));
    }
    agg.flush();
    assert.equal(out.length, 1);
    TIMING.forEach((name, k) => {
      const m = out[0]!.metrics[name]!;
      const d = decodeSketch(m.sketch!);
      assert.equal(d.count, 4000, name);
      assert.equal(d.zeroCount, direct[k]!.zeroCount, name);
      for (let q = 0; q <= 100; q++) assert.equal(d.getValueAtQuantile(q / 100), direct[k]!.getValueAtQuantile(q / 100), `${name} q=${q}`);
      assert.deepEqual({ p50: m.p50, p90: m.p90, p95: m.p95, p99: m.p99 }, quantiles(direct[k]!, m), name);
    });
  });

  it('refuses bad options and non-finite times', () => {
    assert.throws(() => new IntervalAggregator({ interval_s: 0 }, () => {}), /interval_s/);
    assert.throws(() => new IntervalAggregator({ interval_s: 2.5 }, () => {}), /interval_s/);
    assert.throws(() => new IntervalAggregator({ grace_s: -1 }, () => {}), /grace_s/);
    assert.throws(() => new IntervalAggregator({ max_keys_per_interval: 0 }, () => {}), /max_keys/);
    const { agg } = collect();
    assert.throws(() => agg.add(tx(), NaN), /time_s/);
    assert.throws(() => agg.add(tx(), 1e13), /time_s/);
    assert.equal(new IntervalAggregator({}, () => {}).options.interval_s, 300);
  });
});
