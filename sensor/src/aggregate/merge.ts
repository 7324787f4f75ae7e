import type { SummaryMetric, SummaryRecord } from '../output/records.ts';
import { rfc3339Seconds } from './interval-aggregator.ts';
import { decodeSketch, encodeSketch, mergeSketches, quantiles } from './sketch.ts';

/** The fields that make two summaries about the same thing (besides sensor and interval). */
const KEY_FIELDS = ['server', 'server_port', 'transport', 'protocol', 'signature'] as const;

/**
 * Two summaries of the same server, port, transport, protocol and signature combined, for
 * roll-ups (longer intervals) and for combining sensors. Pure: neither input is modified.
 *
 * - counts, sums, outcome counts add; min/max combine; sketches merge (exactly: bucket counts
 *   add) and p50/p90/p95/p99 are recomputed from the merged sketch, clamped to the merged
 *   min/max. A timing metric for which either side lacks a sketch keeps count/sum/min/max
 *   only (its percentiles could not be right).
 * - `interval_start` is the earlier start and `interval_s` the span from it to the later
 *   end (two adjacent 300 s intervals give 600 s; the same interval stays as it is).
 * - `sensor` stays when both agree, else becomes "*".
 * - `partial` when either is partial.
 */
export function mergeSummaries(a: SummaryRecord, b: SummaryRecord): SummaryRecord {
  for (const f of KEY_FIELDS) {
    if (a[f] !== b[f]) throw new Error(`mergeSummaries: different ${f} (${String(a[f])} vs ${String(b[f])}); only summaries of the same key merge`);
  }
  const a_start = parseStart(a.interval_start), b_start = parseStart(b.interval_start);
  const start = Math.min(a_start, b_start);
  const end = Math.max(a_start + a.interval_s, b_start + b.interval_s);

  const outcomes: Record<string, number> = { ...a.outcomes };
  for (const [k, n] of Object.entries(b.outcomes)) outcomes[k] = (outcomes[k] ?? 0) + n;

  const metrics: Record<string, SummaryMetric> = {};
  for (const [name, m] of Object.entries(a.metrics)) {
    const o = b.metrics[name];
    metrics[name] = o === undefined ? { ...m } : mergeMetric(m, o);
  }
  for (const [name, m] of Object.entries(b.metrics)) {
    if (!(name in metrics)) metrics[name] = { ...m };
  }

  const out: SummaryRecord = {
    type: 'summary',
    interval_start: rfc3339Seconds(start),
    interval_s: end - start,
    sensor: a.sensor === b.sensor ? a.sensor : '*',
    server: a.server,
    server_port: a.server_port,
    transport: a.transport,
    protocol: a.protocol,
    signature: a.signature,
    count: a.count + b.count,
    outcomes,
    metrics,
  };
  if (a.partial === true || b.partial === true) out.partial = true;
  return out;
}

function mergeMetric(a: SummaryMetric, b: SummaryMetric): SummaryMetric {
  const m: SummaryMetric = {
    count: a.count + b.count,
    sum: a.sum + b.sum,
    min: Math.min(a.min, b.min),
    max: Math.max(a.max, b.max),
  };
  const sk = a.sketch !== undefined && b.sketch !== undefined ? mergeSketches(decodeSketch(a.sketch), decodeSketch(b.sketch)) : null;
  if (sk !== null) Object.assign(m, quantiles(sk, m));
  const clamped = (a.negative_clamped ?? 0) + (b.negative_clamped ?? 0);
  if (clamped > 0) m.negative_clamped = clamped;
  if (sk !== null) m.sketch = encodeSketch(sk);
  return m;
}

function parseStart(text: string): number {
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) throw new Error(`mergeSummaries: bad interval_start ${JSON.stringify(text)}`);
  return Math.floor(ms / 1000);
}
