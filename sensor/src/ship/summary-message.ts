import { create } from '@bufbuild/protobuf';
import { MetricSchema, OutcomeCountSchema, SummarySchema, type Summary } from '@wiretime/proto/gen/wiretime/v1/summary_pb.ts';
import { rfc3339Seconds } from '../aggregate/interval-aggregator.ts';
import { decodeSketch, quantiles } from '../aggregate/sketch.ts';
import type { SummaryMetric, SummaryRecord } from '../output/records.ts';

/**
 * The wire form of an interval summary (proto wiretime.v1.Summary) and back.
 *
 * - `interval_start` (RFC 3339, whole seconds) ↔ `interval_start_s` (epoch seconds, int64);
 * - a metric's `sketch` (base64 of DataDog's DDSketch protobuf) ↔ raw bytes;
 * - outcomes and metrics become repeated fields sorted by name (code-point order), so the
 *   encoding of a summary does not depend on the insertion order of its objects;
 * - the sensor is not part of a Summary: it travels once per batch (IngestRequest.sensor_id).
 *
 * p50/p90/p95/p99 are not shipped: they are a function of the sketch and the exact min/max,
 * and `fromSummaryMessage` recomputes them the way the IntervalAggregator does.
 */
export function toSummaryMessage(s: SummaryRecord): Summary {
  const ms = Date.parse(s.interval_start);
  if (!Number.isFinite(ms) || ms % 1000 !== 0) throw new Error(`toSummaryMessage: bad interval_start ${JSON.stringify(s.interval_start)}`);
  return create(SummarySchema, {
    intervalStartS: BigInt(ms / 1000),
    intervalS: s.interval_s,
    server: s.server,
    serverPort: s.server_port,
    transport: s.transport,
    protocol: s.protocol,
    signature: s.signature,
    count: BigInt(s.count),
    outcomes: sortedKeys(s.outcomes).map((outcome) => create(OutcomeCountSchema, { outcome, count: BigInt(s.outcomes[outcome]!) })),
    metrics: sortedKeys(s.metrics).map((name) => {
      const m = s.metrics[name]!;
      return create(MetricSchema, {
        name,
        count: BigInt(m.count),
        sum: m.sum,
        min: m.min,
        max: m.max,
        sketch: m.sketch === undefined ? new Uint8Array(0) : new Uint8Array(Buffer.from(m.sketch, 'base64')),
        negativeClamped: BigInt(m.negative_clamped ?? 0),
      });
    }),
    partial: s.partial === true,
  });
}

/** The record form of a shipped summary; `sensor` comes from the batch that carried it. */
export function fromSummaryMessage(m: Summary, sensor: string): SummaryRecord {
  if (m.transport !== 'tcp' && m.transport !== 'udp') throw new Error(`fromSummaryMessage: bad transport ${JSON.stringify(m.transport)}`);
  const outcomes: Record<string, number> = {};
  for (const o of m.outcomes) outcomes[o.outcome] = Number(o.count);
  const metrics: Record<string, SummaryMetric> = {};
  for (const x of m.metrics) {
    const metric: SummaryMetric = { count: Number(x.count), sum: x.sum, min: x.min, max: x.max };
    if (x.sketch.length > 0) {
      const sketch = Buffer.from(x.sketch).toString('base64');
      Object.assign(metric, quantiles(decodeSketch(sketch), metric));
      if (x.negativeClamped > 0n) metric.negative_clamped = Number(x.negativeClamped);
      metric.sketch = sketch;
    } else if (x.negativeClamped > 0n) {
      metric.negative_clamped = Number(x.negativeClamped);
    }
    metrics[x.name] = metric;
  }
  const s: SummaryRecord = {
    type: 'summary',
    interval_start: rfc3339Seconds(Number(m.intervalStartS)),
    interval_s: m.intervalS,
    sensor,
    server: m.server,
    server_port: m.serverPort,
    transport: m.transport,
    protocol: m.protocol,
    signature: m.signature,
    count: Number(m.count),
    outcomes,
    metrics,
  };
  if (m.partial) s.partial = true;
  return s;
}

function sortedKeys(o: Record<string, unknown>): string[] {
  return Object.keys(o).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
