// Test support (not a test file): level-1 summaries built from known raw durations, and the
// level-2 rows those durations must roll up to, computed from the raw values themselves (sorting
// them for percentiles), never by the roll-up code.
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { IngestRequestSchema, type IngestRequest } from '../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import { SummarySchema, type Summary } from '../../proto/src/gen/wiretime/v1/summary_pb.ts';
import { BucketCounts, decodeSketch, encodeSketch, RELATIVE_ACCURACY } from '../../sensor/src/aggregate/sketch.ts';
import { prng } from '../../test/support/prng.ts';
import type { Sql } from './store/sql.ts';

export const KEYS = [
  { server: '10.0.0.1', port: 443, transport: 'tcp', protocol: 'http', signature: 'GET_index' },
  { server: '10.0.0.2', port: 5432, transport: 'tcp', protocol: 'pgsql', signature: 'QUERY' },
] as const;

/** One level-1 interval as the sensor measured it. */
export interface RawInterval {
  key: number;
  sensor: string;
  start_s: number;
  ttfr_ns: number[];
  bytes: number[];
  ok: number;
  error: number;
  partial: boolean;
}

export interface GenOptions {
  seed: number;
  /** first interval (epoch s, hour-aligned) and how many hours */
  start_s: number;
  hours: number;
  sensors: readonly string[];
  /** most transactions in one 5-minute interval */
  max_per_interval?: number;
}

/** 5-minute intervals for every key and sensor; an interval with no transaction is not sent (as a sensor does). */
export function generate(o: GenOptions): RawInterval[] {
  const rnd = prng(o.seed);
  const out: RawInterval[] = [];
  const max = o.max_per_interval ?? 12;
  for (let i = 0; i < o.hours * 12; i++) {
    for (const sensor of o.sensors) {
      for (let key = 0; key < KEYS.length; key++) {
        const n = Math.floor(rnd() * (max + 1));
        if (n === 0) continue;
        const ttfr: number[] = [], bytes: number[] = [];
        for (let k = 0; k < n; k++) {
          // 100 µs … 1 s, log-uniform, integer ns; now and then a 0 (same-timestamp packets)
          ttfr.push(rnd() < 0.02 ? 0 : Math.round(Math.exp(Math.log(1e5) + rnd() * Math.log(1e4))));
          bytes.push(Math.floor(rnd() * 100_000));
        }
        const error = Math.floor(rnd() * (n / 3));
        out.push({ key, sensor, start_s: o.start_s + i * 300, ttfr_ns: ttfr, bytes, ok: n - error, error, partial: rnd() < 0.1 });
      }
    }
  }
  return out;
}

function sum(v: readonly number[]): number {
  return v.reduce((a, b) => a + b, 0);
}

/** The Summary a sensor sends for one interval: count/sum/min/max from the values, the sketch from the sensor's own code. */
export function summaryOf(r: RawInterval): Summary {
  const k = KEYS[r.key]!;
  const b = new BucketCounts();
  for (const v of r.ttfr_ns) b.add(v);
  const min = Math.min(...r.ttfr_ns), max = Math.max(...r.ttfr_ns), s = sum(r.ttfr_ns);
  return create(SummarySchema, {
    intervalStartS: BigInt(r.start_s), intervalS: 300,
    server: k.server, serverPort: k.port, transport: k.transport, protocol: k.protocol, signature: k.signature,
    count: BigInt(r.ttfr_ns.length), partial: r.partial,
    outcomes: [{ outcome: 'ok', count: BigInt(r.ok) }, ...(r.error > 0 ? [{ outcome: 'error', count: BigInt(r.error) }] : [])],
    metrics: [
      { name: 'response_bytes', count: BigInt(r.bytes.length), sum: sum(r.bytes), min: Math.min(...r.bytes), max: Math.max(...r.bytes), sketch: new Uint8Array(0), negativeClamped: 0n },
      { name: 'ttfr_ns', count: BigInt(r.ttfr_ns.length), sum: s, min, max, sketch: new Uint8Array(Buffer.from(encodeSketch(b.toSketch(min, max, s)), 'base64')), negativeClamped: 0n },
    ],
  });
}

/** Batches of up to `per_batch` summaries per sensor, sequence numbers from `first_sequence`. */
export function batchesOf(raw: readonly RawInterval[], per_batch = 200, first_sequence = 1n, stream = 'stream-1'): IngestRequest[] {
  const bySensor = new Map<string, RawInterval[]>();
  for (const r of raw) (bySensor.get(r.sensor) ?? bySensor.set(r.sensor, []).get(r.sensor)!).push(r);
  const out: IngestRequest[] = [];
  for (const [sensor, list] of bySensor) {
    let seq = first_sequence;
    for (let i = 0; i < list.length; i += per_batch) {
      out.push(create(IngestRequestSchema, { sensorId: sensor, streamId: stream, sequence: seq++, summaries: list.slice(i, i + per_batch).map(summaryOf) }));
    }
  }
  return out;
}

/** What a level-2 row must hold: every raw value of its key and bucket. */
export interface Expected {
  key: number;
  start_s: number;
  ttfr_ns: number[];
  bytes: number[];
  ok: number;
  error: number;
  partial: boolean;
  /** level-1 intervals in it */
  intervals: number;
}

/** Raw intervals grouped by key and bucket (3600 or 86400 s), only buckets starting in [from_s, to_s). */
export function expectedRows(raw: readonly RawInterval[], bucket_s: number, from_s: number, to_s: number): Map<string, Expected> {
  const out = new Map<string, Expected>();
  for (const r of raw) {
    const start = Math.floor(r.start_s / bucket_s) * bucket_s;
    if (start < from_s || start >= to_s) continue;
    const id = `${r.key}|${start}`;
    let e = out.get(id);
    if (!e) out.set(id, (e = { key: r.key, start_s: start, ttfr_ns: [], bytes: [], ok: 0, error: 0, partial: false, intervals: 0 }));
    e.ttfr_ns.push(...r.ttfr_ns);
    e.bytes.push(...r.bytes);
    e.ok += r.ok;
    e.error += r.error;
    e.partial ||= r.partial;
    e.intervals++;
  }
  return out;
}

/** The value at rank ⌊q·(n−1)⌋ of the sorted values: the quantile DDSketch estimates (sketch.ts). */
export function rankQuantile(values: readonly number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(q * (s.length - 1))]!;
}

interface L2Row {
  key: number;
  start_s: number;
  count: bigint;
  partial: boolean;
  outcomes: Record<string, number>;
  metrics: Record<string, { count: number; sum: number; min: number; max: number; negative_clamped: number }>;
  source_rows: bigint;
  sketch: Uint8Array | undefined;
}

/** Level-2 rows of one interval_s as stored, keyed `${KEYS index}|${start_s}`. */
export async function readL2(sql: Sql, interval_s: number): Promise<Map<string, L2Row>> {
  const rows = await sql.query<{ server: string; port: number; signature: string; interval_start: Date; count: bigint; partial: boolean;
    outcomes: Record<string, number>; metrics: L2Row['metrics']; source_rows: bigint; sketch: Uint8Array | null }>(
    `SELECT host(s.address) AS server, s.port, g.name AS signature, l.interval_start, l.count, l.partial, l.outcomes, l.metrics, l.source_rows, k.sketch
     FROM summaries_l2 l JOIN servers s USING (server_id) JOIN signatures g USING (signature_id)
     LEFT JOIN summary_sketches_l2 k ON k.server_id = l.server_id AND k.signature_id = l.signature_id
       AND k.interval_s = l.interval_s AND k.interval_start = l.interval_start AND k.metric = 'ttfr_ns'
     WHERE l.interval_s = $1`,
    [interval_s],
  );
  const out = new Map<string, L2Row>();
  for (const r of rows) {
    const key = KEYS.findIndex((k) => k.server === r.server && k.port === r.port && k.signature === r.signature);
    assert.ok(key >= 0, `unknown key ${r.server}:${r.port} ${r.signature}`);
    const start_s = r.interval_start.getTime() / 1000;
    out.set(`${key}|${start_s}`, { key, start_s, count: r.count, partial: r.partial, outcomes: r.outcomes, metrics: r.metrics,
      source_rows: r.source_rows, sketch: r.sketch ?? undefined });
  }
  return out;
}

/**
 * Asserts that the stored rows of `interval_s` are exactly `expected`: counts, sums, min, max,
 * outcomes and partial exact; p50/p95/p99 of the merged sketch within the sketch's relative
 * accuracy of the raw values' quantiles. `source_rows` checked when given per bucket.
 */
export async function assertLevel(sql: Sql, interval_s: number, expected: Map<string, Expected>, source_rows?: (e: Expected) => number): Promise<void> {
  const got = await readL2(sql, interval_s);
  assert.deepEqual([...got.keys()].sort(), [...expected.keys()].sort(), `rows of interval_s ${interval_s}`);
  for (const [id, e] of expected) {
    const g = got.get(id)!;
    const where = `interval_s ${interval_s} row ${id} (${new Date(e.start_s * 1000).toISOString()})`;
    const n = e.ttfr_ns.length;
    assert.equal(g.count, BigInt(n), `${where}: count`);
    assert.equal(g.partial, e.partial, `${where}: partial`);
    assert.deepEqual(g.outcomes, e.error > 0 ? { ok: e.ok, error: e.error } : { ok: e.ok }, `${where}: outcomes`);
    const { p50, p90, p95, p99, ...ttfr } = g.metrics.ttfr_ns as L2Row['metrics'][string] & Partial<Record<'p50' | 'p90' | 'p95' | 'p99', number>>;
    assert.deepEqual(ttfr, { count: n, sum: sum(e.ttfr_ns), min: Math.min(...e.ttfr_ns), max: Math.max(...e.ttfr_ns), negative_clamped: 0 }, `${where}: ttfr_ns`);
    // the row's stored percentiles (for the reporter's top-N bound): within 1 % of the sorted raw values
    for (const [q, stored] of [[0.5, p50], [0.9, p90], [0.95, p95], [0.99, p99]] as const) {
      const truth = rankQuantile(e.ttfr_ns, q);
      assert.ok(stored !== undefined && Math.abs(stored - truth) <= RELATIVE_ACCURACY * truth + 0.5,
        `${where}: stored p${q * 100} ${stored} vs ${truth} from the sorted raw values (more than ${RELATIVE_ACCURACY * 100} % apart)`);
    }
    assert.deepEqual(g.metrics.response_bytes, { count: n, sum: sum(e.bytes), min: Math.min(...e.bytes), max: Math.max(...e.bytes), negative_clamped: 0 }, `${where}: response_bytes`);
    if (source_rows) assert.equal(g.source_rows, BigInt(source_rows(e)), `${where}: source_rows`);
    assert.ok(g.sketch, `${where}: a ttfr_ns sketch`);
    const sk = decodeSketch(Buffer.from(g.sketch).toString('base64'));
    assert.equal(sk.count, n, `${where}: values in the sketch`);
    for (const q of [0.5, 0.95, 0.99]) {
      const truth = rankQuantile(e.ttfr_ns, q);
      const est = sk.getValueAtQuantile(q);
      assert.ok(Math.abs(est - truth) <= RELATIVE_ACCURACY * truth + 1e-9,
        `${where}: p${q * 100} ${est} vs ${truth} from the sorted raw values (more than ${RELATIVE_ACCURACY * 100} % apart)`);
    }
  }
}
