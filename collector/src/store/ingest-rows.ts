// The collector's fast path from an IngestRequest's wire bytes to the binary COPY payloads of
// summaries_l1 and summary_sketches (copy-binary.ts), in one walk of the bytes: no message
// objects, sketches copied from the request straight into the COPY payload, every field checked
// as validate-batch.ts checks it on the way.
//
// Why hand-written: on the ingest bench (bench/ingest.ts; ~14 KB summaries, 29 metrics, 8
// sketches) the collector spent ~255–300 µs of CPU per summary; its CPU profile put protobuf-es's
// reflective fromBinary (with create) at ~40 µs a summary, validateBatch at ~40 µs
// (checkSketchBytes ~29 of it), building the rows (`prepare`: JSON strings, String(x) of 87
// doubles ~43 µs of it) at ~70 µs and writing them into the COPY buffer at ~10 µs, and garbage
// collection at ~70 µs. bench/ingest-decode-micro.ts runs both paths on the bench's batches in
// one process: fromBinary + validateBatch + storeBatch's rows 130–200 µs a summary, this decoder
// 50–60 µs (checkSketchBytes ~18 and the doubles ~10 of it: double-text.ts), on the shared
// 2-core machine.
//
// It is an accelerator, never a second judge: it accepts only what it is sure protobuf-es
// decodes to a batch that validateBatch accepts, and then produces the rows summary-store.ts's
// `prepare` produces. Anything else — a malformed or merely unusual encoding (an unexpected
// wire type, a group, an overlong varint, a count ≥ 2^53, a non-ASCII string), or any invalid
// field — makes it return null, and the caller takes the protobuf-es path (fromBinary,
// validateBatch, storeBatch), which gives the refusal and its message exactly as before.
// ingest-rows.test.ts holds the two paths to the same answers on generated and mangled batches.
import { isIP } from 'node:net';
import { create, fromBinary } from '@bufbuild/protobuf';
import { IngestRequestSchema, type IngestRequest } from '../../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import { SensorStatsSchema, type SensorStats } from '../../../proto/src/gen/wiretime/v1/summary_pb.ts';
import { checkSketchBytes } from '../../../sensor/src/aggregate/sketch.ts';
import { MAX_INTERVAL_S, MAX_NAME, MAX_PROTOCOL, MAX_SUMMARIES_PER_BATCH, MAX_TIME_S, MIN_TIME_S } from '../validate-batch.ts';
import { PG_EPOCH_S, SIGNATURE, jsonbKeyOrder } from './copy-binary.ts';
import { writeDouble, writeInteger } from './double-text.ts';

const TWO32 = 4_294_967_296;
const TWO53 = 2 ** 53;
/** a 64-bit varint whose high word is below this is below 2^53: exact as a number */
const SAFE_HI = 0x20_0000;
const MIN_S = Number(MIN_TIME_S);
const MAX_S = Number(MAX_TIME_S);
const PG_EPOCH = Number(PG_EPOCH_S);
const DAY_S = 86_400;
const MAX_OUTCOMES = 64;
/** distinct metric names remembered (names are few: one set per analyzer) */
const MAX_NAMES = 4096;
/** free output buffers kept for reuse */
const MAX_SINKS = 8;

// wire types (https://protobuf.dev/programming-guides/encoding/#structure)
const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

/** The top level of an IngestRequest: what authentication and the idempotency key need. */
export interface IngestHead {
  /** the request as received */
  readonly bytes: Buffer;
  readonly sensorId: string;
  readonly streamId: string;
  readonly sequence: bigint;
  readonly summaryCount: number;
  readonly stats: SensorStats | undefined;
  /** [start, end) of each summary's bytes in `bytes`, flattened */
  readonly summaryRanges: number[];
}

/** A server or a signature of a batch, for the dimension tables. */
export interface ServerDimension { address: string; port: number; transport: string }
export interface SignatureDimension { protocol: string; name: string }

/**
 * A batch as rows ready for binary COPY: its summaries (the first of each key, as
 * summary-store.ts keeps them) and their sketches. The dimension ids are not known yet: the
 * store writes them into the tuples (`patchIds`) once it has resolved them. Owned by the store
 * once handed to it; the payloads must not be touched while a COPY reads them.
 */
export interface IngestRows extends IngestHead {
  /** summaries kept: one per distinct key */
  readonly rows: number;
  /** complete COPY payloads (header, tuples, trailer); sketches null when there are none */
  readonly facts: Buffer;
  readonly sketches: Buffer | null;
  /** per kept row: its server and signature key (summary-store.ts's serverKey / signatureKey) */
  readonly rowServer: string[];
  readonly rowSignature: string[];
  /** offset of each row's tuple in `facts` */
  readonly factTuples: number[];
  /** offset of each sketch tuple in `sketches`, and the row it belongs to */
  readonly sketchTuples: number[];
  readonly sketchRows: number[];
  /** the batch's distinct servers and signatures by key */
  readonly servers: Map<string, ServerDimension>;
  readonly signatures: Map<string, SignatureDimension>;
  /** UTC midnights (epoch seconds) of the rows' interval starts, distinct */
  readonly days: bigint[];
  /** the same batch decoded by protobuf-es (made on first call): for the INSERT path */
  request(): IngestRequest;
  /**
   * The payloads are no longer needed (their COPY completed): their memory goes back to the
   * decoder for the next batches. `facts` and `sketches` must not be used afterwards.
   */
  release(): void;
}

/** Writes dimension ids into the tuples of `rows` (first two fields of every tuple). */
export function patchIds(rows: IngestRows, serverId: (key: string) => bigint, signatureId: (key: string) => bigint): void {
  // each row's two ids as 32-bit halves: [server hi, server lo, signature hi, signature lo]
  const ids = new Array<number>(rows.rows * 4);
  for (let r = 0; r < rows.rows; r++) {
    const a = serverId(rows.rowServer[r]!), b = signatureId(rows.rowSignature[r]!);
    ids[4 * r] = Number(BigInt.asIntN(64, a) >> 32n) | 0;
    ids[4 * r + 1] = Number(a & 0xffff_ffffn);
    ids[4 * r + 2] = Number(BigInt.asIntN(64, b) >> 32n) | 0;
    ids[4 * r + 3] = Number(b & 0xffff_ffffn);
  }
  // a tuple starts: int16 field count, then int32 length 8 + int64 server_id, int32 8 + int64 signature_id
  const put = (buf: Buffer, at: number, r: number) => {
    buf.writeInt32BE(ids[4 * r]!, at + 6);
    buf.writeUInt32BE(ids[4 * r + 1]!, at + 10);
    buf.writeInt32BE(ids[4 * r + 2]!, at + 18);
    buf.writeUInt32BE(ids[4 * r + 3]!, at + 22);
  };
  for (let r = 0; r < rows.rows; r++) put(rows.facts, rows.factTuples[r]!, r);
  const sk = rows.sketches;
  if (sk === null) return;
  for (let k = 0; k < rows.sketchTuples.length; k++) put(sk, rows.sketchTuples[k]!, rows.sketchRows[k]!);
}

/** A growing output buffer; callers make `room` before writing. */
class ByteSink {
  buf: Buffer;
  pos = 0;
  constructor(bytes: number) {
    this.buf = Buffer.allocUnsafe(Math.max(bytes, 64));
  }
  room(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }
  private grow(n: number): void {
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u8(v: number): void {
    this.buf[this.pos++] = v;
  }
  i16(v: number): void {
    const b = this.buf, p = this.pos;
    b[p] = (v >>> 8) & 0xff;
    b[p + 1] = v & 0xff;
    this.pos = p + 2;
  }
  i32(v: number): void {
    const b = this.buf, p = this.pos;
    b[p] = (v >>> 24) & 0xff;
    b[p + 1] = (v >>> 16) & 0xff;
    b[p + 2] = (v >>> 8) & 0xff;
    b[p + 3] = v & 0xff;
    this.pos = p + 4;
  }
  /** a non-negative integer below 2^53, as int64 */
  i64(v: number): void {
    this.i32(Math.floor(v / TWO32));
    this.i32(v >>> 0);
  }
  /** ASCII text (callers pass only ASCII) */
  ascii(s: string): void {
    const b = this.buf, p = this.pos, n = s.length;
    for (let i = 0; i < n; i++) b[p + i] = s.charCodeAt(i);
    this.pos = p + n;
  }
  /** bytes [s, e) of src */
  copy(src: Buffer, s: number, e: number): void {
    const n = e - s;
    if (n > 32) {
      src.copy(this.buf, this.pos, s, e);
    } else {
      const b = this.buf, p = this.pos;
      for (let i = 0; i < n; i++) b[p + i] = src[s + i]!;
    }
    this.pos += n;
  }
  lit(bytes: Uint8Array): void {
    const b = this.buf, p = this.pos, n = bytes.length;
    for (let i = 0; i < n; i++) b[p + i] = bytes[i]!;
    this.pos = p + n;
  }
  /** a non-negative integer below 2^53 in decimal, as String() writes it */
  decimal(n: number): void {
    this.pos = writeInteger(this.buf, this.pos, n);
  }
  /** a finite double as jsonNumber (summary-store.ts) and JSON.stringify write it: String(x) */
  number(x: number): void {
    if (Number.isInteger(x) && x > -TWO53 && x < TWO53) {
      // String(-0) is "0", which this writes too
      if (x < 0) {
        this.buf[this.pos++] = 0x2d;
        x = -x;
      }
      this.pos = writeInteger(this.buf, this.pos, x);
      return;
    }
    const end = writeDouble(this.buf, this.pos, x);
    if (end >= 0) this.pos = end;
    else this.ascii(String(x));
  }
  /** the COPY header (copy-binary.ts) */
  copyHeader(): void {
    this.room(SIGNATURE.length + 8);
    this.copy(SIGNATURE, 0, SIGNATURE.length);
    this.i32(0);
    this.i32(0);
  }
  finish(): Buffer {
    this.room(2);
    this.i16(0xffff);
    return this.buf.subarray(0, this.pos);
  }
}

/** Interned metric names: their JSON key and what validation needs to know about them. */
interface MetricName {
  name: string;
  bytes: Uint8Array;
  /** `"name":{"max":` */
  json: Uint8Array;
  /** ends with _ns: may carry a sketch */
  timing: boolean;
  /** the summary it was last seen in (duplicates within a summary are refused) */
  seen: number;
}

const ascii = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
const J_MIN = ascii(',"min":');
const J_SUM = ascii(',"sum":');
const J_COUNT = ascii(',"count":');
const J_NEG = ascii(',"negative_clamped":');

/** /^[a-z][a-z0-9_]{0,63}$/ (validate-batch.ts METRIC) on bytes [s, e) */
function isMetricName(b: Buffer, s: number, e: number): boolean {
  const n = e - s;
  if (n < 1 || n > 64) return false;
  const c0 = b[s]!;
  if (c0 < 0x61 || c0 > 0x7a) return false;
  for (let i = s + 1; i < e; i++) {
    const c = b[i]!;
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x5f)) return false;
  }
  return true;
}

/** /^[\x21-\x7e][\x20-\x7e]*$/ (validate-batch.ts NAME) on bytes [s, e), at most `max` long */
function isName(b: Buffer, s: number, e: number, max: number): boolean {
  const n = e - s;
  if (n < 1 || n > max) return false;
  const c0 = b[s]!;
  if (c0 < 0x21 || c0 > 0x7e) return false;
  for (let i = s + 1; i < e; i++) {
    const c = b[i]!;
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/** /^[0-9A-Za-z_-]{1,64}$/ (validate-batch.ts STREAM_ID) on bytes [s, e) */
function isStreamId(b: Buffer, s: number, e: number): boolean {
  const n = e - s;
  if (n < 1 || n > 64) return false;
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x2d)) return false;
  }
  return true;
}

/** whether key [s1, e1) comes before key [s2, e2) in jsonb's order (shorter first, then bytewise) */
function keyBefore(b: Buffer, s1: number, e1: number, s2: number, e2: number): boolean {
  const n1 = e1 - s1, n2 = e2 - s2;
  if (n1 !== n2) return n1 < n2;
  return b.compare(b, s2, e2, s1, e1) < 0;
}

function sameBytes(a: Uint8Array, b: Buffer, s: number, e: number): boolean {
  if (a.length !== e - s) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[s + i]) return false;
  return true;
}

function isAscii(b: Buffer, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (b[i]! > 0x7f) return false;
  return true;
}

/** bytes [s, e) as text, one char per byte (Buffer's latin1Slice: toString without its argument checks) */
function latin1(b: Buffer, s: number, e: number): string {
  return (b as unknown as { latin1Slice(s: number, e: number): string }).latin1Slice(s, e);
}

function u64(lo: number, hi: number): bigint {
  return hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) | BigInt(lo);
}

/**
 * Decodes IngestRequests as described at the top of this file. One instance per collector
 * (it remembers metric names); not re-entrant (it decodes synchronously, one batch at a time).
 */
export class IngestRowsDecoder {
  // wire cursor
  private b: Buffer = Buffer.alloc(0);
  private view: DataView = new DataView(new ArrayBuffer(8));
  private pos = 0;
  /** the last 64-bit varint read, as two 32-bit words */
  private lo = 0;
  private hi = 0;

  private readonly names = new Map<string, MetricName>();
  /** the names of the last summary's metrics, by position (summaries of a protocol repeat them) */
  private readonly lastNames: (MetricName | undefined)[] = [];
  /** released output buffers */
  private readonly sinks: ByteSink[] = [];
  private serial = 0;

  // one summary's fields, as read
  private startLo = 0;
  private startHi = 0;
  private intervalS = 0;
  private serverS = 0;
  private serverE = 0;
  private port = 0;
  private transportS = 0;
  private transportE = 0;
  private protocolS = 0;
  private protocolE = 0;
  private signatureS = 0;
  private signatureE = 0;
  private countLo = 0;
  private countHi = 0;
  private partial = false;
  private outcomeRanges: number[] = [];
  private metricRanges: number[] = [];
  // distinct outcomes of one summary: name range and summed count
  private outcomeS: number[] = [];
  private outcomeE: number[] = [];
  private outcomeN: number[] = [];
  private outcomeOrder: number[] = [];
  // one summary's metrics, read (pass 1), then written in jsonb's key order (pass 2)
  private metricName_: MetricName[] = [];
  private metricCount: number[] = [];
  private metricSum: number[] = [];
  private metricMin: number[] = [];
  private metricMax: number[] = [];
  private metricNegLo: number[] = [];
  private metricNegHi: number[] = [];
  /** the order last computed, for the names it was computed for (summaries of a protocol repeat them) */
  private metricOrder: number[] = [];
  private metricOrderNames: MetricName[] = [];

  /** The top-level fields of an IngestRequest; null when its encoding is not one this path takes. */
  readHead(bytes: Uint8Array): IngestHead | null {
    const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.b = b;
    this.pos = 0;
    const end = b.length;
    let sensorS = 0, sensorE = 0, streamS = 0, streamE = 0, seqLo = 0, seqHi = 0;
    const ranges: number[] = [];
    let stats: SensorStats | undefined;
    while (this.pos < end) {
      const tag = this.varint32();
      if (tag < 8) return null; // malformed, or field number 0
      const field = tag >>> 3, wire = tag & 7;
      if (field === 2) {
        if (wire !== VARINT || !this.varint64()) return null;
        seqLo = this.lo;
        seqHi = this.hi;
      } else if (field === 1 || field === 3 || field === 4 || field === 5) {
        if (wire !== LEN) return null;
        const n = this.length(end);
        if (n < 0) return null;
        const s = this.pos;
        this.pos += n;
        if (field === 1) {
          sensorS = s;
          sensorE = this.pos;
        } else if (field === 5) {
          streamS = s;
          streamE = this.pos;
        } else if (field === 3) {
          ranges.push(s, this.pos);
        } else {
          // a message field given twice merges into the first (as protobuf-es reads it)
          stats ??= create(SensorStatsSchema);
          this.pos = s;
          if (!this.readStats(stats, s + n)) return null;
        }
      } else if (!this.skip(wire, end)) {
        return null;
      }
    }
    if (!isAscii(b, sensorS, sensorE) || !isAscii(b, streamS, streamE)) return null;
    return {
      bytes: b,
      sensorId: latin1(b, sensorS, sensorE),
      streamId: latin1(b, streamS, streamE),
      sequence: u64(seqLo, seqHi),
      summaryCount: ranges.length >> 1,
      stats,
      summaryRanges: ranges,
    };
  }

  /**
   * The rows of a batch whose head `readHead` gave; null when the protobuf-es path must
   * decide (anything invalid or unusual, see the top of this file).
   *
   * Costs and why: the top of this file.
   */
  decode(head: IngestHead): IngestRows | null {
    if (!this.headValid(head)) return null;
    const b = head.bytes;
    this.b = b;
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const sensor = Buffer.from(head.sensorId, 'latin1');
    const facts = this.sink((b.length >> 1) + 4096);
    const sketches = this.sink(b.length + 4096);
    facts.copyHeader();
    sketches.copyHeader();
    const rowServer: string[] = [], rowSignature: string[] = [], factTuples: number[] = [], sketchTuples: number[] = [], sketchRows: number[] = [];
    const servers = new Map<string, ServerDimension>();
    const signatures = new Map<string, SignatureDimension>();
    const keys = new Set<string>();
    const days: bigint[] = [];
    let lastDay = -1;
    const ranges = head.summaryRanges;
    for (let i = 0; i < ranges.length; i += 2) {
      if (!this.readSummary(ranges[i]!, ranges[i + 1]!)) return null;
      // validateBatch's checks of the summary's own fields
      const intervalS = this.intervalS;
      if (intervalS < 1 || intervalS > MAX_INTERVAL_S) return null;
      if (this.startHi !== 0) return null; // negative or past 2100
      const start = this.startLo;
      if (start < MIN_S || start > MAX_S || start % intervalS !== 0) return null;
      if (this.port > 65_535) return null;
      if (!isAscii(b, this.serverS, this.serverE)) return null;
      const server = latin1(b, this.serverS, this.serverE);
      if (isIP(server) === 0) return null;
      const tl = this.transportE - this.transportS, t0 = b[this.transportS], t1 = b[this.transportS + 1], t2 = b[this.transportS + 2];
      if (!(tl === 3 && ((t0 === 0x74 && t1 === 0x63 && t2 === 0x70) || (t0 === 0x75 && t1 === 0x64 && t2 === 0x70)))) return null;
      const transport = t0 === 0x74 ? 'tcp' : 'udp';
      if (!isName(b, this.protocolS, this.protocolE, MAX_PROTOCOL) || !isName(b, this.signatureS, this.signatureE, MAX_NAME)) return null;
      const protocol = latin1(b, this.protocolS, this.protocolE);
      const signature = latin1(b, this.signatureS, this.signatureE);
      if (this.countHi >= SAFE_HI) return null;
      const count = this.countHi * TWO32 + this.countLo;

      const serverKey = `${server}\u0000${this.port}\u0000${transport}`;
      const signatureKey = `${protocol}\u0000${signature}`;
      const key = `${serverKey}\u0001${signatureKey}\u0001${start}\u0001${intervalS}`;
      const duplicate = keys.has(key); // validated like the others, not stored (the first one is)
      const factMark = facts.pos, sketchMark = sketches.pos, sketchCount = sketchTuples.length;
      const row = rowServer.length;
      const ts_us = (start - PG_EPOCH) * 1_000_000;

      // summaries_l1 (server_id, signature_id, interval_start, sensor_id, interval_s, count, partial, outcomes, metrics)
      const tuple = facts.pos;
      facts.room(2 + 12 + 12 + 12 + 4 + sensor.length + 8 + 12 + 5 + 4 + 1);
      facts.i16(9);
      facts.i32(8);
      facts.i64(0); // server_id, patched by the store
      facts.i32(8);
      facts.i64(0); // signature_id
      facts.i32(8);
      facts.i64(ts_us);
      facts.i32(sensor.length);
      facts.copy(sensor, 0, sensor.length);
      facts.i32(4);
      facts.i32(intervalS);
      facts.i32(8);
      facts.i64(count);
      facts.i32(1);
      facts.u8(this.partial ? 1 : 0);
      if (!this.writeOutcomes(facts, count)) return null;
      if (!this.writeMetrics(facts, sketches, count, sensor, ts_us, intervalS, sketchTuples, sketchRows, row)) return null;
      if (duplicate) {
        facts.pos = factMark;
        sketches.pos = sketchMark;
        sketchTuples.length = sketchCount;
        sketchRows.length = sketchCount;
        continue;
      }
      keys.add(key);
      factTuples.push(tuple);
      rowServer.push(serverKey);
      rowSignature.push(signatureKey);
      if (!servers.has(serverKey)) servers.set(serverKey, { address: server, port: this.port, transport });
      if (!signatures.has(signatureKey)) signatures.set(signatureKey, { protocol, name: signature });
      const day = start - (start % DAY_S);
      if (day !== lastDay) {
        lastDay = day;
        const d = BigInt(day);
        if (!days.includes(d)) days.push(d);
      }
    }
    let request: IngestRequest | undefined;
    let released = false;
    return {
      ...head,
      rows: rowServer.length,
      facts: facts.finish(),
      sketches: sketchTuples.length > 0 ? sketches.finish() : null,
      rowServer,
      rowSignature,
      factTuples,
      sketchTuples,
      sketchRows,
      servers,
      signatures,
      days,
      request: () => (request ??= fromBinary(IngestRequestSchema, head.bytes)),
      release: () => {
        if (released) return;
        released = true;
        if (this.sinks.length < MAX_SINKS) this.sinks.push(facts, sketches);
      },
    };
  }

  /** an empty output buffer of at least `bytes`, reused when one is free (a fresh 1 MiB buffer costs its page faults and a share of a major GC) */
  private sink(bytes: number): ByteSink {
    let best = -1;
    for (let i = 0; i < this.sinks.length; i++) {
      if (this.sinks[i]!.buf.length >= bytes && (best < 0 || this.sinks[i]!.buf.length < this.sinks[best]!.buf.length)) best = i;
    }
    if (best < 0) return new ByteSink(bytes);
    const s = this.sinks[best]!;
    this.sinks[best] = this.sinks[this.sinks.length - 1]!;
    this.sinks.pop();
    s.pos = 0;
    return s;
  }

  /** validateBatch's checks of the batch's own fields */
  private headValid(head: IngestHead): boolean {
    const sensor = Buffer.from(head.sensorId, 'latin1'), stream = Buffer.from(head.streamId, 'latin1');
    return isName(sensor, 0, sensor.length, MAX_NAME) && isStreamId(stream, 0, stream.length) && head.sequence > 0n &&
      head.summaryCount <= MAX_SUMMARIES_PER_BATCH;
  }

  // ------------------------------------------------------------------ wire reading

  /** a varint of at most 5 bytes below 2^32 (as protobuf-es's uint32 reads it exactly); -1 otherwise or past the end */
  private varint32(): number {
    const b = this.b, end = b.length;
    let p = this.pos, v = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (p >= end) return -1;
      const c = b[p++]!;
      if (shift === 28 && c > 0x0f) return -1;
      v += (c & 0x7f) * 2 ** shift;
      if (c < 0x80) {
        this.pos = p;
        return v;
      }
    }
    return -1;
  }

  /** a varint of at most 10 bytes that fits 64 bits, into lo/hi; false otherwise */
  private varint64(): boolean {
    const b = this.b, end = b.length;
    let p = this.pos, lo = 0, hi = 0;
    for (let i = 0; i < 10; i++) {
      if (p >= end) return false;
      const c = b[p++]!;
      const bits = c & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= (bits & 0x0f) << 28;
        hi = bits >>> 4;
      } else if (i < 9) hi |= bits << (7 * i - 32);
      else {
        if (c > 1) return false;
        hi |= bits << 31;
      }
      if (c < 0x80) {
        this.pos = p;
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        return true;
      }
    }
    return false;
  }

  /** a length prefix whose bytes lie within `end`; -1 otherwise */
  private length(end: number): number {
    const n = this.varint32();
    return n < 0 || this.pos + n > end ? -1 : n;
  }

  /** skips an unknown field; false for groups and anything malformed */
  private skip(wire: number, end: number): boolean {
    switch (wire) {
      case VARINT:
        return this.varint64() && this.pos <= end;
      case I64:
        this.pos += 8;
        return this.pos <= end;
      case I32:
        this.pos += 4;
        return this.pos <= end;
      case LEN: {
        const n = this.length(end);
        if (n < 0) return false;
        this.pos += n;
        return true;
      }
      default:
        return false;
    }
  }

  /** SensorStats fields into `stats` (all varints: uint64 1–7, int64 8) */
  private readStats(stats: SensorStats, end: number): boolean {
    while (this.pos < end) {
      const tag = this.varint32();
      if (tag < 8) return false;
      const field = tag >>> 3, wire = tag & 7;
      if (field >= 1 && field <= 8) {
        if (wire !== VARINT || !this.varint64() || this.pos > end) return false;
        const v = u64(this.lo, this.hi);
        switch (field) {
          case 1: stats.packets = v; break;
          case 2: stats.bytes = v; break;
          case 3: stats.kernelDrops = v; break;
          case 4: stats.interfaceDrops = v; break;
          case 5: stats.flowsActive = v; break;
          case 6: stats.transactions = v; break;
          case 7: stats.spoolBytes = v; break;
          default: stats.captureTimeS = BigInt.asIntN(64, v);
        }
      } else if (!this.skip(wire, end)) {
        return false;
      }
    }
    return this.pos === end;
  }

  /** one Summary's fields into this decoder's summary fields; outcomes and metrics as ranges */
  private readSummary(s: number, end: number): boolean {
    this.pos = s;
    this.startLo = this.startHi = this.intervalS = this.port = this.countLo = this.countHi = 0;
    this.serverS = this.serverE = this.transportS = this.transportE = this.protocolS = this.protocolE = this.signatureS = this.signatureE = 0;
    this.partial = false;
    this.outcomeRanges.length = 0;
    this.metricRanges.length = 0;
    while (this.pos < end) {
      const tag = this.varint32();
      if (tag < 8) return false;
      const field = tag >>> 3, wire = tag & 7;
      switch (field) {
        case 1:
        case 8:
        case 11:
          if (wire !== VARINT || !this.varint64() || this.pos > end) return false;
          if (field === 1) {
            this.startLo = this.lo;
            this.startHi = this.hi;
          } else if (field === 8) {
            this.countLo = this.lo;
            this.countHi = this.hi;
          } else {
            this.partial = this.lo !== 0 || this.hi !== 0;
          }
          break;
        case 2:
        case 4: {
          if (wire !== VARINT) return false;
          const v = this.varint32();
          if (v < 0 || this.pos > end) return false;
          if (field === 2) this.intervalS = v;
          else this.port = v;
          break;
        }
        case 3:
        case 5:
        case 6:
        case 7:
        case 9:
        case 10: {
          if (wire !== LEN) return false;
          const n = this.length(end);
          if (n < 0) return false;
          const a = this.pos, z = a + n;
          this.pos = z;
          if (field === 3) {
            this.serverS = a;
            this.serverE = z;
          } else if (field === 5) {
            this.transportS = a;
            this.transportE = z;
          } else if (field === 6) {
            this.protocolS = a;
            this.protocolE = z;
          } else if (field === 7) {
            this.signatureS = a;
            this.signatureE = z;
          } else if (field === 9) {
            this.outcomeRanges.push(a, z);
          } else {
            this.metricRanges.push(a, z);
          }
          break;
        }
        default:
          if (!this.skip(wire, end)) return false;
      }
    }
    return this.pos === end;
  }

  /** the outcomes jsonb field: counts summed by outcome, in order of first appearance */
  private writeOutcomes(out: ByteSink, count: number): boolean {
    const b = this.b, ranges = this.outcomeRanges;
    if (ranges.length > 2 * MAX_OUTCOMES) return false;
    const names_s = this.outcomeS, names_e = this.outcomeE, sums = this.outcomeN;
    let distinct = 0, total = 0, bytes = 2;
    for (let i = 0; i < ranges.length; i += 2) {
      const end = ranges[i + 1]!;
      this.pos = ranges[i]!;
      let ns = 0, ne = 0, lo = 0, hi = 0;
      while (this.pos < end) {
        const tag = this.varint32();
        if (tag < 8) return false;
        const field = tag >>> 3, wire = tag & 7;
        if (field === 1) {
          if (wire !== LEN) return false;
          const n = this.length(end);
          if (n < 0) return false;
          ns = this.pos;
          ne = this.pos += n;
        } else if (field === 2) {
          if (wire !== VARINT || !this.varint64() || this.pos > end) return false;
          lo = this.lo;
          hi = this.hi;
        } else if (!this.skip(wire, end)) {
          return false;
        }
      }
      if (this.pos !== end || !isMetricName(b, ns, ne) || hi >= SAFE_HI) return false;
      const n = hi * TWO32 + lo;
      total += n;
      if (total > Number.MAX_SAFE_INTEGER) return false;
      let j = 0;
      for (; j < distinct; j++) {
        if (names_e[j]! - names_s[j]! === ne - ns && b.compare(b, ns, ne, names_s[j], names_e[j]) === 0) break;
      }
      if (j === distinct) {
        names_s[j] = ns;
        names_e[j] = ne;
        sums[j] = n;
        distinct++;
        bytes += ne - ns + 4 + 16;
      } else {
        sums[j]! += n;
      }
    }
    if (total > count) return false;
    out.room(4 + 1 + bytes);
    const len_at = out.pos;
    out.pos += 4;
    out.u8(1); // jsonb version
    out.u8(0x7b);
    // in jsonb's key order (summary-store.ts jsonbKeyOrder): an insertion sort of the few outcomes
    const order = this.outcomeOrder;
    for (let j = 0; j < distinct; j++) {
      let k = j;
      while (k > 0 && keyBefore(b, names_s[j]!, names_e[j]!, names_s[order[k - 1]!]!, names_e[order[k - 1]!]!)) {
        order[k] = order[k - 1]!;
        k--;
      }
      order[k] = j;
    }
    for (let k = 0; k < distinct; k++) {
      const j = order[k]!;
      if (k > 0) out.u8(0x2c);
      out.u8(0x22);
      out.copy(b, names_s[j]!, names_e[j]!);
      out.u8(0x22);
      out.u8(0x3a);
      out.decimal(sums[j]!);
    }
    out.u8(0x7d);
    out.buf.writeInt32BE(out.pos - len_at - 4, len_at);
    return true;
  }

  /** the metrics jsonb field, and a summary_sketches tuple per sketch */
  private writeMetrics(out: ByteSink, sk: ByteSink, count: number, sensor: Buffer, ts_us: number, intervalS: number,
    sketchTuples: number[], sketchRows: number[], row: number): boolean {
    const b = this.b, view = this.view, ranges = this.metricRanges;
    const serial = ++this.serial;
    const names = this.metricName_;
    let nm = 0;
    for (let i = 0; i < ranges.length; i += 2) {
      const end = ranges[i + 1]!;
      this.pos = ranges[i]!;
      let ns = 0, ne = 0, cLo = 0, cHi = 0, sum = 0, min = 0, max = 0, ss = 0, se = 0, nLo = 0, nHi = 0;
      while (this.pos < end) {
        const tag = this.varint32();
        if (tag < 8) return false;
        const field = tag >>> 3, wire = tag & 7;
        switch (field) {
          case 1:
          case 6: {
            if (wire !== LEN) return false;
            const n = this.length(end);
            if (n < 0) return false;
            if (field === 1) {
              ns = this.pos;
              ne = this.pos += n;
            } else {
              ss = this.pos;
              se = this.pos += n;
            }
            break;
          }
          case 2:
          case 7:
            if (wire !== VARINT || !this.varint64() || this.pos > end) return false;
            if (field === 2) {
              cLo = this.lo;
              cHi = this.hi;
            } else {
              nLo = this.lo;
              nHi = this.hi;
            }
            break;
          case 3:
          case 4:
          case 5: {
            if (wire !== I64 || this.pos + 8 > end) return false;
            const x = view.getFloat64(this.pos, true);
            this.pos += 8;
            if (field === 3) sum = x;
            else if (field === 4) min = x;
            else max = x;
            break;
          }
          default:
            if (!this.skip(wire, end)) return false;
        }
      }
      if (this.pos !== end || !isMetricName(b, ns, ne)) return false;
      const j = i >> 1;
      let name = this.lastNames[j];
      if (name === undefined || !sameBytes(name.bytes, b, ns, ne)) this.lastNames[j] = name = this.metricName(b, ns, ne);
      if (name.seen === serial) return false; // twice in one summary
      name.seen = serial;
      if (cHi >= SAFE_HI) return false;
      const mcount = cHi * TWO32 + cLo;
      if (mcount > count) return false;
      if (!(Number.isFinite(sum) && Number.isFinite(min) && Number.isFinite(max))) return false;
      if (mcount > 0 && !(min <= max)) return false;
      if (se > ss) {
        if (!name.timing) return false;
        if (checkSketchBytes(b.subarray(ss, se)) !== null) return false;
        // summary_sketches (server_id, signature_id, interval_start, sensor_id, interval_s, metric, sketch)
        sketchTuples.push(sk.pos);
        sketchRows.push(row);
        sk.room(2 + 12 + 12 + 12 + 4 + sensor.length + 8 + 4 + name.name.length + 4 + (se - ss));
        sk.i16(7);
        sk.i32(8);
        sk.i64(0);
        sk.i32(8);
        sk.i64(0);
        sk.i32(8);
        sk.i64(ts_us);
        sk.i32(sensor.length);
        sk.copy(sensor, 0, sensor.length);
        sk.i32(4);
        sk.i32(intervalS);
        sk.i32(name.name.length);
        sk.ascii(name.name);
        sk.i32(se - ss);
        sk.copy(b, ss, se);
      }
      names[nm] = name;
      this.metricCount[nm] = mcount;
      this.metricSum[nm] = sum;
      this.metricMin[nm] = min;
      this.metricMax[nm] = max;
      this.metricNegLo[nm] = nLo;
      this.metricNegHi[nm] = nHi;
      nm++;
    }
    // the metrics jsonb, keys in jsonb's order (summary-store.ts jsonbKeyOrder)
    const order = this.metricOrder, ordered = this.metricOrderNames;
    let same = ordered.length === nm;
    for (let k = 0; same && k < nm; k++) same = ordered[k] === names[k];
    if (!same) {
      ordered.length = nm;
      order.length = nm;
      for (let k = 0; k < nm; k++) {
        ordered[k] = names[k]!;
        order[k] = k;
      }
      order.sort((x, y) => jsonbKeyOrder(names[x]!.name, names[y]!.name));
    }
    out.room(5);
    const len_at = out.pos;
    out.pos += 4;
    out.u8(1); // jsonb version
    out.u8(0x7b);
    for (let k = 0; k < nm; k++) {
      const j = order[k]!, name = names[j]!;
      // "name":{"max":M,"min":m,"sum":S,"count":C,"negative_clamped":N}
      out.room(1 + name.json.length + 3 * 32 + 20 + J_MIN.length + J_SUM.length + J_COUNT.length + J_NEG.length + 24 + 1);
      if (k > 0) out.u8(0x2c);
      out.lit(name.json);
      out.number(this.metricMax[j]!);
      out.lit(J_MIN);
      out.number(this.metricMin[j]!);
      out.lit(J_SUM);
      out.number(this.metricSum[j]!);
      out.lit(J_COUNT);
      out.decimal(this.metricCount[j]!);
      out.lit(J_NEG);
      const nLo = this.metricNegLo[j]!, nHi = this.metricNegHi[j]!;
      if (nHi < SAFE_HI) out.decimal(nHi * TWO32 + nLo);
      else out.ascii(u64(nLo, nHi).toString());
      out.u8(0x7d);
    }
    out.room(1);
    out.u8(0x7d);
    out.buf.writeInt32BE(out.pos - len_at - 4, len_at);
    return true;
  }

  private metricName(b: Buffer, s: number, e: number): MetricName {
    const text = latin1(b, s, e);
    let m = this.names.get(text);
    if (m === undefined) {
      if (this.names.size >= MAX_NAMES) this.names.clear();
      m = { name: text, bytes: ascii(text), json: ascii(`"${text}":{"max":`), timing: text.endsWith('_ns'), seen: 0 };
      this.names.set(text, m);
    }
    return m;
  }
}
