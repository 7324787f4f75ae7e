import { isIP } from 'node:net';
import { checkSketchBytes } from '../../sensor/src/aggregate/sketch.ts';
import type { IngestRequest } from '../../proto/src/gen/wiretime/v1/ingest_pb.ts';

/** Longest sensor id, signature or protocol name accepted. */
export const MAX_NAME = 200;
/** Names: printable ASCII without controls, as signatures and sensor ids are written. */
const NAME = /^[\x21-\x7e][\x20-\x7e]*$/;
/** Metric names: snake_case, as in the raw output. */
const METRIC = /^[a-z][a-z0-9_]{0,63}$/;
/** A spool's stream id: what the sensor's spool writes (sensor/src/ship/spool.ts). */
const STREAM_ID = /^[0-9A-Za-z_-]{1,64}$/;
/** Summaries in one batch, at most. */
export const MAX_SUMMARIES_PER_BATCH = 10_000;
/** 2000-01-01 and 2100-01-01: interval starts outside are clock errors. */
export const MIN_TIME_S = 946_684_800n;
export const MAX_TIME_S = 4_102_444_800n;
/** Longest protocol name accepted. */
export const MAX_PROTOCOL = 32;
/** Longest interval accepted, seconds. */
export const MAX_INTERVAL_S = 366 * 86_400;

/**
 * Checks every field of a batch before anything is stored; returns null when it is sound,
 * else a message naming the field ("summaries[3].server: not an IP address") that the
 * collector returns with INVALID_ARGUMENT.
 */
export function validateBatch(batch: IngestRequest): string | null {
  if (!NAME.test(batch.sensorId) || batch.sensorId.length > MAX_NAME) return `sensor_id: ${describe(batch.sensorId)} is not a name (printable ASCII, 1–${MAX_NAME} characters)`;
  if (!STREAM_ID.test(batch.streamId)) return `stream_id: ${describe(batch.streamId)} is not a stream id (1–64 characters of [0-9A-Za-z_-])`;
  if (batch.sequence <= 0n) return 'sequence: must be 1 or more';
  if (batch.summaries.length > MAX_SUMMARIES_PER_BATCH) return `summaries: ${batch.summaries.length} in one batch, at most ${MAX_SUMMARIES_PER_BATCH}`;
  for (let i = 0; i < batch.summaries.length; i++) {
    const s = batch.summaries[i]!;
    const at = `summaries[${i}]`;
    if (s.intervalS < 1 || s.intervalS > MAX_INTERVAL_S) return `${at}.interval_s: ${s.intervalS} is not an interval length in seconds`;
    if (s.intervalStartS < MIN_TIME_S || s.intervalStartS > MAX_TIME_S) return `${at}.interval_start_s: ${s.intervalStartS} is outside 2000–2100`;
    if (s.intervalStartS % BigInt(s.intervalS) !== 0n) return `${at}.interval_start_s: ${s.intervalStartS} is not aligned to interval_s ${s.intervalS}`;
    if (isIP(s.server) === 0) return `${at}.server: ${describe(s.server)} is not an IP address`;
    if (s.serverPort > 65_535) return `${at}.server_port: ${s.serverPort} is not a port`;
    if (s.transport !== 'tcp' && s.transport !== 'udp') return `${at}.transport: ${describe(s.transport)} is not tcp or udp`;
    if (!NAME.test(s.protocol) || s.protocol.length > MAX_PROTOCOL) return `${at}.protocol: ${describe(s.protocol)} is not a protocol name`;
    if (!NAME.test(s.signature) || s.signature.length > MAX_NAME) return `${at}.signature: ${describe(s.signature)} is not a name (printable ASCII, 1–${MAX_NAME} characters)`;
    let outcomes = 0n;
    for (let j = 0; j < s.outcomes.length; j++) {
      const o = s.outcomes[j]!;
      if (!METRIC.test(o.outcome)) return `${at}.outcomes[${j}].outcome: ${describe(o.outcome)} is not an outcome name`;
      outcomes += o.count;
    }
    if (outcomes > s.count) return `${at}.outcomes: they count ${outcomes} records, the summary ${s.count}`;
    const names = new Set<string>();
    for (let j = 0; j < s.metrics.length; j++) {
      const m = s.metrics[j]!;
      const mat = `${at}.metrics[${j}]`;
      if (!METRIC.test(m.name)) return `${mat}.name: ${describe(m.name)} is not a metric name`;
      if (names.has(m.name)) return `${mat}.name: ${m.name} appears twice`;
      names.add(m.name);
      if (m.count > s.count) return `${mat}.count: ${m.count} is more than the summary's ${s.count}`;
      if (![m.sum, m.min, m.max].every(Number.isFinite)) return `${mat}: sum, min and max must be finite numbers`;
      if (m.count > 0n && !(m.min <= m.max)) return `${mat}: min ${m.min} is above max ${m.max}`;
      if (m.sketch.length > 0) {
        if (!m.name.endsWith('_ns')) return `${mat}.sketch: only timing metrics (_ns) carry a sketch`;
        const bad = checkSketchBytes(m.sketch);
        if (bad !== null) return `${mat}.sketch: decodeSketch: ${bad}`;
      }
    }
  }
  return null;
}

function describe(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}
