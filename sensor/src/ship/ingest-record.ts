import type { SensorStats, Summary } from '@wiretime/proto/gen/wiretime/v1/summary_pb.ts';

/**
 * The spool's record of a batch — IngestRequest { sequence, summaries, stats } — encoded by
 * hand, byte for byte what protobuf-es's `toBinary(IngestRequestSchema, create(…))` writes
 * (fields in field-number order, proto3 defaults left out, unknown fields none): one pass to
 * size the nested messages, one to write them into a single buffer, after `header` bytes the
 * spool fills in. On the ingest bench (bench/ingest.ts: 29 metrics, 8 sketches a summary)
 * toBinary cost the sensor ~45 µs a summary and most of its ~70 µs of garbage collection
 * (a chunk list per nested message, a copy of every sketch into it, then concatenations); this
 * costs a few µs. ingest-record.test.ts compares the two on generated batches.
 *
 * The record is written in `into` when it has room (the caller's reusable buffer; the result
 * is then a view of it), else in a new buffer.
 *
 * Returns null when a message is not one this encoder is sure to write as toBinary does
 * (unknown fields, a foreign or plain object, a value of the wrong type or range, a string
 * that is not well-formed UTF-16): the caller then uses toBinary, which also throws where it
 * throws.
 */
export function encodeIngestRecord(sequence: bigint, summaries: readonly Summary[], stats: SensorStats | undefined, header: number, into?: Buffer): Buffer | null {
  if (typeof sequence !== 'bigint' || sequence < 0n || sequence >= TWO64) return null;
  if (stats !== undefined && !statsOk(stats)) return null;
  // pass 1: sizes
  const n = summaries.length;
  if (sizes.length < n) sizes = new Int32Array(Math.max(n, sizes.length * 2));
  let metricSlots = 0;
  for (const s of summaries) metricSlots += s.metrics?.length ?? 0;
  if (metricSizes.length < metricSlots) metricSizes = new Int32Array(Math.max(metricSlots, metricSizes.length * 2));
  let total = sequence !== 0n ? 1 + varintSize64(sequence) : 0;
  let mi = 0;
  for (let i = 0; i < n; i++) {
    const size = summarySize(summaries[i]!, mi);
    if (size < 0) return null;
    mi += summaries[i]!.metrics.length;
    sizes[i] = size;
    total += 1 + varintSize(size) + size;
  }
  let statsSize = 0;
  if (stats !== undefined) {
    statsSize = statsBodySize(stats);
    total += 1 + varintSize(statsSize) + statsSize;
  }
  // pass 2: bytes
  // in `into` when it is large enough (its first header + total bytes), else a new buffer
  const out = into !== undefined && into.length >= header + total ? into.subarray(0, header + total) : Buffer.allocUnsafe(header + total);
  let p = header;
  if (sequence !== 0n) {
    out[p++] = 0x10;
    p = writeVarint64(out, p, sequence);
  }
  mi = 0;
  for (let i = 0; i < n; i++) {
    const s = summaries[i]!;
    out[p++] = 0x1a;
    p = writeVarint(out, p, sizes[i]!);
    p = writeSummary(out, p, s, mi);
    mi += s.metrics.length;
  }
  if (stats !== undefined) {
    out[p++] = 0x22;
    p = writeVarint(out, p, statsSize);
    p = writeStats(out, p, stats);
  }
  if (p !== out.length) throw new Error(`encodeIngestRecord: wrote ${p - header} bytes of ${total}`);
  return out;
}

const TWO32 = 2 ** 32;
const TWO64 = 1n << 64n;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/** body sizes of the summaries and of their metrics, from pass 1 for pass 2 (module scratch: encoding is synchronous) */
let sizes = new Int32Array(1024);
let metricSizes = new Int32Array(32 * 1024);

const f64 = new Float64Array(1);
const f64bytes = new Uint8Array(f64.buffer);
/** the host's byte order (doubles go on the wire little-endian) */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isUint32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < TWO32;
}
function isUint64(v: unknown): v is bigint {
  return typeof v === 'bigint' && v >= 0n && v < TWO64;
}
function isInt64(v: unknown): v is bigint {
  return typeof v === 'bigint' && v >= INT64_MIN && v <= INT64_MAX;
}
/** a well-formed string: its UTF-8 is what TextEncoder (protobuf-es) writes */
function isText(v: unknown): v is string {
  if (typeof v !== 'string') return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    // a lone surrogate: TextEncoder writes U+FFFD for it; leave that to toBinary
    if (c > 0xdbff || i + 1 >= v.length) return false;
    const d = v.charCodeAt(++i);
    if (d < 0xdc00 || d > 0xdfff) return false;
  }
  return true;
}
function noUnknown(m: { $unknown?: unknown[] }): boolean {
  return m.$unknown === undefined || m.$unknown.length === 0;
}

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x20_0000 ? 3 : v < 0x1000_0000 ? 4 : 5;
}
/** a uint64 (or an int64 as its two's complement) */
function varintSize64(v: bigint): number {
  if (v < 0n) return 10;
  if (v < 0x1000_0000n) return varintSize(Number(v));
  let n = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    n++;
  }
  return n;
}
/** UTF-8 bytes of a well-formed string */
function textSize(s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) > 0x7f) return Buffer.byteLength(s, 'utf8');
  return n;
}

function writeVarint(out: Buffer, p: number, v: number): number {
  while (v >= 0x80) {
    out[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[p++] = v;
  return p;
}
function writeVarint64(out: Buffer, p: number, v: bigint): number {
  if (v >= 0n && v < 0x1000_0000n) return writeVarint(out, p, Number(v));
  let u = BigInt.asUintN(64, v);
  while (u >= 0x80n) {
    out[p++] = Number(u & 0x7fn) | 0x80;
    u >>= 7n;
  }
  out[p++] = Number(u);
  return p;
}
function writeText(out: Buffer, p: number, s: string, size: number): number {
  if (size === s.length) {
    for (let i = 0; i < size; i++) out[p + i] = s.charCodeAt(i);
    return p + size;
  }
  return p + out.write(s, p, size, 'utf8');
}
function writeDouble(out: Buffer, p: number, x: number): number {
  f64[0] = x;
  for (let i = 0; i < 8; i++) out[p + i] = f64bytes[LITTLE_ENDIAN ? i : 7 - i]!;
  return p + 8;
}

/** 1 + length prefix + body of a string field, or 0 when it is empty (proto3 default) */
function textFieldSize(s: string): number {
  if (s === '') return 0;
  const n = textSize(s);
  return 1 + varintSize(n) + n;
}

function statsOk(st: SensorStats): boolean {
  return st.$typeName === 'wiretime.v1.SensorStats' && noUnknown(st) && isUint64(st.packets) && isUint64(st.bytes) && isUint64(st.kernelDrops) &&
    isUint64(st.interfaceDrops) && isUint64(st.flowsActive) && isUint64(st.transactions) && isUint64(st.spoolBytes) && isInt64(st.captureTimeS);
}
function statsBodySize(st: SensorStats): number {
  let n = 0;
  for (const v of [st.packets, st.bytes, st.kernelDrops, st.interfaceDrops, st.flowsActive, st.transactions, st.spoolBytes, st.captureTimeS]) {
    if (v !== 0n) n += 1 + varintSize64(v);
  }
  return n;
}
function writeStats(out: Buffer, p: number, st: SensorStats): number {
  const values = [st.packets, st.bytes, st.kernelDrops, st.interfaceDrops, st.flowsActive, st.transactions, st.spoolBytes, st.captureTimeS];
  for (let f = 0; f < 8; f++) {
    const v = values[f]!;
    if (v === 0n) continue;
    out[p++] = (f + 1) << 3;
    p = writeVarint64(out, p, v);
  }
  return p;
}

/** the body size of a summary (its metrics' body sizes into metricSizes from `mi`); -1 to leave it to toBinary */
function summarySize(s: Summary, mi: number): number {
  if (s.$typeName !== 'wiretime.v1.Summary' || !noUnknown(s)) return -1;
  if (!isInt64(s.intervalStartS) || !isUint32(s.intervalS) || !isText(s.server) || !isUint32(s.serverPort) || !isText(s.transport) ||
    !isText(s.protocol) || !isText(s.signature) || !isUint64(s.count) || typeof s.partial !== 'boolean' ||
    !Array.isArray(s.outcomes) || !Array.isArray(s.metrics)) return -1;
  let n = 0;
  if (s.intervalStartS !== 0n) n += 1 + varintSize64(s.intervalStartS);
  if (s.intervalS !== 0) n += 1 + varintSize(s.intervalS);
  n += textFieldSize(s.server);
  if (s.serverPort !== 0) n += 1 + varintSize(s.serverPort);
  n += textFieldSize(s.transport) + textFieldSize(s.protocol) + textFieldSize(s.signature);
  if (s.count !== 0n) n += 1 + varintSize64(s.count);
  for (const o of s.outcomes) {
    if (o.$typeName !== 'wiretime.v1.OutcomeCount' || !noUnknown(o) || !isText(o.outcome) || !isUint64(o.count)) return -1;
    const b = textFieldSize(o.outcome) + (o.count !== 0n ? 1 + varintSize64(o.count) : 0);
    n += 1 + varintSize(b) + b;
  }
  for (let j = 0; j < s.metrics.length; j++) {
    const m = s.metrics[j]!;
    if (m.$typeName !== 'wiretime.v1.Metric' || !noUnknown(m) || !isText(m.name) || !isUint64(m.count) || typeof m.sum !== 'number' ||
      typeof m.min !== 'number' || typeof m.max !== 'number' || !(m.sketch instanceof Uint8Array) || !isUint64(m.negativeClamped)) return -1;
    let b = textFieldSize(m.name);
    if (m.count !== 0n) b += 1 + varintSize64(m.count);
    // doubles: written unless +0 (toBinary's !Object.is(value, 0): -0 and NaN are written)
    if (!Object.is(m.sum, 0)) b += 9;
    if (!Object.is(m.min, 0)) b += 9;
    if (!Object.is(m.max, 0)) b += 9;
    if (m.sketch.length > 0) b += 1 + varintSize(m.sketch.length) + m.sketch.length;
    if (m.negativeClamped !== 0n) b += 1 + varintSize64(m.negativeClamped);
    metricSizes[mi + j] = b;
    n += 1 + varintSize(b) + b;
  }
  if (s.partial) n += 2;
  return n;
}

function writeTextField(out: Buffer, p: number, tag: number, s: string): number {
  if (s === '') return p;
  const n = textSize(s);
  out[p++] = tag;
  p = writeVarint(out, p, n);
  return writeText(out, p, s, n);
}

function writeSummary(out: Buffer, p: number, s: Summary, mi: number): number {
  if (s.intervalStartS !== 0n) {
    out[p++] = 0x08;
    p = writeVarint64(out, p, s.intervalStartS);
  }
  if (s.intervalS !== 0) {
    out[p++] = 0x10;
    p = writeVarint(out, p, s.intervalS);
  }
  p = writeTextField(out, p, 0x1a, s.server);
  if (s.serverPort !== 0) {
    out[p++] = 0x20;
    p = writeVarint(out, p, s.serverPort);
  }
  p = writeTextField(out, p, 0x2a, s.transport);
  p = writeTextField(out, p, 0x32, s.protocol);
  p = writeTextField(out, p, 0x3a, s.signature);
  if (s.count !== 0n) {
    out[p++] = 0x40;
    p = writeVarint64(out, p, s.count);
  }
  for (const o of s.outcomes) {
    out[p++] = 0x4a;
    const b = textFieldSize(o.outcome) + (o.count !== 0n ? 1 + varintSize64(o.count) : 0);
    p = writeVarint(out, p, b);
    p = writeTextField(out, p, 0x0a, o.outcome);
    if (o.count !== 0n) {
      out[p++] = 0x10;
      p = writeVarint64(out, p, o.count);
    }
  }
  for (let j = 0; j < s.metrics.length; j++) {
    const m = s.metrics[j]!;
    out[p++] = 0x52;
    p = writeVarint(out, p, metricSizes[mi + j]!);
    p = writeTextField(out, p, 0x0a, m.name);
    if (m.count !== 0n) {
      out[p++] = 0x10;
      p = writeVarint64(out, p, m.count);
    }
    if (!Object.is(m.sum, 0)) {
      out[p++] = 0x19;
      p = writeDouble(out, p, m.sum);
    }
    if (!Object.is(m.min, 0)) {
      out[p++] = 0x21;
      p = writeDouble(out, p, m.min);
    }
    if (!Object.is(m.max, 0)) {
      out[p++] = 0x29;
      p = writeDouble(out, p, m.max);
    }
    if (m.sketch.length > 0) {
      out[p++] = 0x32;
      p = writeVarint(out, p, m.sketch.length);
      out.set(m.sketch, p);
      p += m.sketch.length;
    }
    if (m.negativeClamped !== 0n) {
      out[p++] = 0x38;
      p = writeVarint64(out, p, m.negativeClamped);
    }
  }
  if (s.partial) {
    out[p++] = 0x58;
    out[p++] = 1;
  }
  return p;
}
