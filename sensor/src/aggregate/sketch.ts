import { DDSketch } from '@datadog/sketches-js';

/**
 * Mergeable quantile sketches for the timing metrics of interval summaries (DESIGN.md,
 * Interval summaries): a thin layer over the DDSketch of @datadog/sketches-js with a
 * relative accuracy of 1 %, so that p50/p90/p95/p99 stay within 1 % of the true value
 * however many intervals or sensors are merged.
 *
 * Decisions, from reading and testing the library (2.1.1):
 *
 * - Quantile definition. `getValueAtQuantile(q)` returns (an approximation of) the value
 *   at rank ⌊q·(n−1)⌋ of the sorted values (0-based; its store takes the first bin whose
 *   running count exceeds q·(n−1)): the "lower" quantile, no interpolation. So p99 of
 *   [1000, 3000] is ~1000. `quantiles()` keeps that definition.
 *
 * - Zero. Values ≤ ~1e-308 go to the sketch's exact zero bucket: a duration of 0 ns (two
 *   packets with the same timestamp) is kept as exactly 0, counted, merged and encoded.
 *
 * - Negative values. The library keeps them in a separate store, but `merge()` forgets to
 *   merge that store (only `count` grows), so a merged sketch with negatives answers
 *   wrong quantiles. A negative duration only arises from a capture whose clock stepped
 *   backwards; it is clamped to 0 (`clampDuration`) before it reaches the summary's
 *   count/sum/min/max or the sketch, and counted per metric as `negative_clamped`.
 *   `encodeSketch` and `decodeSketch` refuse sketches holding negative values.
 *
 * - Serialization. The library's `toProto()`/`fromProto()` need `protobufjs`, which the
 *   package lists only as a devDependency (DataDog/sketches-js issue #26, PR #30), so they
 *   throw "Cannot find module 'protobufjs/minimal'" here. `fromProto()` also drops
 *   min/max/sum, returns a base class, ignores the sparse `binCounts` form, and would
 *   allocate whatever key range garbage bytes claim. This module therefore writes and reads
 *   the same protobuf message (DataDog sketches-proto `DDSketch`: mapping, positive and
 *   negative stores, zero count) itself and validates what it reads. Each store is written
 *   in the smaller of the message's two forms (contiguous counts over the occupied range, or
 *   the sparse key → count map); the library writes its whole padded array (~9 KB for six
 *   values). Caution: the library's own `fromProto()` reads only the contiguous form (it
 *   ignores the map, which other DDSketch implementations read), so read these sketches
 *   with `decodeSketch`, which reads both and whatever the library's `toProto()` wrote.
 *
 * - Decoded sketches carry no exact min/max/sum (the format has none): `min`/`max` are set
 *   to the bounds of the lowest/highest occupied bucket (safe bounds, so a later merge with
 *   an exactly known sketch cannot clamp a quantile wrongly) and `sum` to NaN. Summaries
 *   carry the exact values beside the sketch; pass them to `quantiles()` as bounds.
 */

export const RELATIVE_ACCURACY = 0.01;

const REFERENCE = new DDSketch({ relativeAccuracy: RELATIVE_ACCURACY });
/** γ of the logarithmic mapping: bucket k holds values in (γ^(k−1), γ^k] */
export const SKETCH_GAMMA = REFERENCE.mapping.gamma;
/** keys outside this range cannot come from a finite double */
const KEY_MIN = REFERENCE.mapping.key(REFERENCE.mapping.minPossible) - 1;
const KEY_MAX = REFERENCE.mapping.key(REFERENCE.mapping.maxPossible) + 1;

export type Sketch = DDSketch;

export interface Quantiles {
  p50: number;
  p90: number;
  p95: number;
  p99: number;
}

export function newSketch(): DDSketch {
  return new DDSketch({ relativeAccuracy: RELATIVE_ACCURACY });
}

/** A duration as it enters a summary: negative values (clock stepped back) become 0. */
export function clampDuration(ns: number): number {
  return ns < 0 ? 0 : ns;
}

const MAPPING = REFERENCE.mapping;
const EMPTY_BINS = new Uint32Array(0);

/** Values at or below this go to the sketch's zero bucket (the library's test). */
export const SKETCH_MIN_POSITIVE = MAPPING.minPossible;

/** The bucket key of a value above SKETCH_MIN_POSITIVE: the library's mapping, as `DDSketch.accept` uses it. */
export function bucketKey(value: number): number {
  return MAPPING.key(value);
}

/**
 * The bucket range [lo, lo + len) widened to hold `key`, with room on the side it grew (a
 * quarter of the range, at least 8 buckets; 16 buckets around `key` when the range is empty),
 * so that a range spreading one bucket at a time is not copied at every step.
 */
export function widenedRange(lo: number, len: number, key: number): { lo: number; len: number } {
  if (len === 0) return { lo: key - 8, len: 16 };
  const hi = lo + len - 1;
  const pad = Math.max(8, len >> 2);
  const new_lo = key < lo ? key - pad : lo;
  const new_hi = key > hi ? key + pad : hi;
  return { lo: new_lo, len: new_hi - new_lo + 1 };
}

/**
 * Values counted into the sketch's buckets (the library's own mapping, so bucket for bucket
 * the same as `DDSketch.accept`), in one Uint32Array over the occupied key range. The
 * library's sketch keeps its bins in a JS array grown in chunks of 128 and costs ~5 KB once
 * a few values spread over three decades; this costs 4 bytes per bucket of the range
 * (~1.4 KB for three decades). For durations ≥ 0 only: counts per interval, not roll-ups.
 */
export class BucketCounts {
  /** key of bins[0] */
  private lo = 0;
  private bins: Uint32Array = EMPTY_BINS;
  zero = 0;
  count = 0;

  /**
   * Counts kept elsewhere, read as one (for quantiles, encode, toSketch): `bins[j]` values in
   * bucket `lo + j`, `zero` values in the zero bucket, `count` values in all. The interval
   * aggregator keeps a key's buckets for all its metrics in one array (interval-aggregator.ts).
   */
  static over(bins: Uint32Array, lo: number, zero: number, count: number): BucketCounts {
    const b = new BucketCounts();
    b.bins = bins;
    b.lo = lo;
    b.zero = zero;
    b.count = count;
    return b;
  }

  add(value: number): void {
    this.count++;
    // the library's test: at or below minPossible (~1e-308) is zero
    if (!(value > MAPPING.minPossible)) {
      this.zero++;
      return;
    }
    const key = MAPPING.key(value);
    let i = key - this.lo;
    if (i < 0 || i >= this.bins.length) i = this.grow(key);
    this.bins[i]!++;
  }

  /** Widens the range to hold `key` (with some room on the side it grew), returns its index. */
  private grow(key: number): number {
    const old = this.bins;
    const r = widenedRange(this.lo, old.length, key);
    const bins = new Uint32Array(r.len);
    if (old.length > 0) bins.set(old, this.lo - r.lo);
    this.bins = bins;
    this.lo = r.lo;
    return key - r.lo;
  }

  /** The DDSketch of these values; `min`/`max`/`sum` (known exactly by the caller) are set on it. */
  toSketch(min: number, max: number, sum: number): DDSketch {
    return sketchFromBins(this.lo, this.bins, this.zero, min, max, sum);
  }

  /**
   * `quantiles(this.toSketch(…), bounds)`, read off the buckets without building the
   * library's sketch: the library's definition (DDSketch.getValueAtQuantile, its dense
   * store's keyAtRank): rank q·(n−1); the zero bucket holds the lowest ranks; otherwise
   * the first bucket whose running count exceeds the rank left, valued by the mapping.
   * An interval's close does this for every timing metric of every key, in code that has
   * not run since the last close.
   */
  quantiles(bounds: { min: number; max: number }): Quantiles {
    if (this.count <= 0) throw new Error('quantiles: the sketch is empty');
    const out = QUANTILE_SCRATCH;
    // The four ranks ascend: one walk over the buckets finds them all.
    // (locals only in the walk, as in planStore)
    const bins = this.bins;
    const n_bins = bins.length;
    const zero = this.zero;
    const ranks = this.count - 1;
    let i = 0;
    let running = 0;
    let last = -1;
    for (let k = 0; k < 4; k++) {
      const rank = QUANTILE_POINTS[k]! * ranks;
      let v = 0;
      if (!(rank < zero)) {
        const left = rank - zero;
        while (!(running > left) && i < n_bins) {
          const c = bins[i]!;
          if (c !== 0) {
            running += c;
            last = i;
          }
          i++;
        }
        // past the last bucket: the library's fallback, its highest key (not reached with whole counts)
        v = MAPPING.value(this.lo + last);
      }
      out[k] = clampRound(v, bounds);
    }
    return { p50: out[0]!, p90: out[1]!, p95: out[2]!, p99: out[3]! };
  }

  /** `encodeSketch(this.toSketch(…))`, byte for byte, without building the library's sketch. */
  encode(): string {
    return encodeStores(SKETCH_GAMMA, { bins: this.bins, offset: this.lo }, NO_STORE, this.zero);
  }
}

/** p50, p90, p95, p99 */
const QUANTILE_POINTS = [0.5, 0.9, 0.95, 0.99];
const QUANTILE_SCRATCH = new Float64Array(4);

/** A new sketch holding the contents of both (neither is modified). */
export function mergeSketches(a: DDSketch, b: DDSketch): DDSketch {
  const out = newSketch();
  out.merge(a);
  out.merge(b);
  return out;
}

/**
 * p50/p90/p95/p99 as integers (ns). With `bounds` (the exact min and max of the values,
 * which a summary carries), each estimate is clamped into [min, max]: the true quantile
 * lies there, so clamping only removes error (p50 of a single value becomes exact).
 */
export function quantiles(s: DDSketch, bounds?: { min: number; max: number }): Quantiles {
  if (s.count <= 0) throw new Error('quantiles: the sketch is empty');
  const q = (p: number): number => clampRound(s.getValueAtQuantile(p), bounds);
  return { p50: q(QUANTILE_POINTS[0]!), p90: q(QUANTILE_POINTS[1]!), p95: q(QUANTILE_POINTS[2]!), p99: q(QUANTILE_POINTS[3]!) };
}

/** A quantile estimate as summaries carry it: an integer, within the exact bounds when known. */
function clampRound(v: number, bounds: { min: number; max: number } | undefined): number {
  if (bounds !== undefined) {
    if (v < bounds.min) v = bounds.min;
    if (v > bounds.max) v = bounds.max;
  }
  return Math.round(v);
}

// ------------------------------------------------------------------ encoding

/** Protobuf wire types used by the DDSketch message. */
const VARINT = 0, I64 = 1, LEN = 2, I32 = 5;

/** Bytes of a varint. */
function varintSize(v: number): number {
  // Called for every occupied bucket when a store's two forms are sized: the common sizes
  // without a division.
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  let n = 4;
  v = Math.floor(v / 0x10000000);
  while (v > 0) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

function zigzag(v: number): number {
  return ((v << 1) ^ (v >> 31)) >>> 0;
}

/** Writes into one scratch buffer, reused by every encodeSketch call (sizes are computed first). */
class Writer {
  buf = Buffer.allocUnsafe(4096);
  view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  pos = 0;

  reset(size: number): void {
    if (this.buf.length < size) {
      this.buf = Buffer.allocUnsafe(Math.max(size, this.buf.length * 2));
      this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
    }
    this.pos = 0;
  }

  varint(v: number): void {
    const buf = this.buf;
    while (v >= 0x80) {
      buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    buf[this.pos++] = v;
  }

  tag(field: number, wire: number): void {
    this.buf[this.pos++] = field * 8 + wire;
  }

  double(v: number): void {
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  /**
   * `values[from .. to]` as packed little-endian doubles. A store's contiguous form is one
   * double per bucket of its range (hundreds for latencies spread over decades, for every
   * timing metric of every key when an interval closes): converted in a Float64Array and
   * copied in one go rather than written one `writeDoubleLE` at a time.
   */
  doubles(values: ArrayLike<number>, from: number, to: number): void {
    const n = to - from + 1;
    if (n <= 0) return;
    if (!LITTLE_ENDIAN) {
      for (let i = from; i <= to; i++) this.double(values[i]!);
      return;
    }
    if (this.f64.length < n) this.f64 = new Float64Array(Math.max(n, 2 * this.f64.length));
    const f64 = this.f64;
    if (values instanceof Uint32Array) f64.set(values.subarray(from, to + 1));
    else for (let i = 0; i < n; i++) f64[i] = values[from + i]!;
    this.buf.set(new Uint8Array(f64.buffer, 0, n * 8), this.pos);
    this.pos += n * 8;
  }

  private f64 = new Float64Array(256);
}

/** Float64Array holds the platform's byte order; the wire's doubles are little-endian. */
const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

const WRITER = new Writer();

interface StoreLike {
  bins: ArrayLike<number>;
  offset: number;
}

/**
 * How a store is written: in whichever of the message's two forms is smaller, contiguous
 * counts (8 bytes per bin of the occupied range, zeros included) or the sparse key → count
 * map (~13 bytes per non-empty bin). A few values spread over decades of latency leave most
 * of the range empty, and the sparse form is then several times smaller.
 */
interface StorePlan {
  store: StoreLike;
  /** occupied index range of store.bins; lo > hi when empty */
  lo: number;
  hi: number;
  sparse: boolean;
  /** bytes of the Store message body */
  size: number;
  /** where this store's occupied indexes start in NONEMPTY (`count` of them) */
  nonempty_at: number;
  count: number;
}

/**
 * Occupied bucket indexes found by planStore, read back by writeStore's sparse form: the
 * stores of one sketch, one after the other (encodeStores plans both stores, then writes).
 * Latencies spread over decades leave most buckets of the range empty; the writer then
 * visits only the occupied ones. Grown as needed, never shrunk (at most one range's length).
 */
let NONEMPTY = new Int32Array(1024);

function planStore(store: StoreLike, at: number): StorePlan {
  // One pass: the occupied range, its indexes and the sparse form's size together. This runs
  // at an interval's close for every timing metric of every key (~300 buckets for the bench's
  // latencies, tens of thousands of keys at a large site) in code that has run little since
  // the last close: it keeps to locals and calls nothing per bucket. A close of 10 000 keys
  // took ~0.8x the time of the earlier three passes with varint helpers per occupied bucket.
  const bins = store.bins;
  const offset = store.offset;
  const n_bins = bins.length;
  if (NONEMPTY.length < at + n_bins) {
    const grown = new Int32Array(Math.max(at + n_bins, 2 * NONEMPTY.length));
    grown.set(NONEMPTY.subarray(0, at));
    NONEMPTY = grown;
  }
  const nonempty = NONEMPTY;
  let count = 0;
  let sparse_size = 0;
  for (let i = 0; i < n_bins; i++) {
    if (!(bins[i]! > 0)) continue;
    nonempty[at + count++] = i;
    const k = i + offset;
    const z = ((k << 1) ^ (k >> 31)) >>> 0;
    // an entry: tag, length, key's tag, key (a varint of 1-5 bytes), count's tag, 8 bytes
    sparse_size += z < 0x80 ? 13 : z < 0x4000 ? 14 : z < 0x200000 ? 15 : z < 0x10000000 ? 16 : 17;
  }
  if (count === 0) return { store, lo: 0, hi: -1, sparse: false, size: 0, nonempty_at: at, count };
  const lo = nonempty[at]!;
  const hi = nonempty[at + count - 1]!;
  const n = hi - lo + 1;
  const contiguous_size = 1 + varintSize(n * 8) + n * 8 + 1 + varintSize(zigzag(lo + offset));
  return sparse_size < contiguous_size
    ? { store, lo, hi, sparse: true, size: sparse_size, nonempty_at: at, count }
    : { store, lo, hi, sparse: false, size: contiguous_size, nonempty_at: at, count };
}

function writeStore(w: Writer, field: number, p: StorePlan): void {
  w.tag(field, LEN);
  w.varint(p.size);
  const bins = p.store.bins, offset = p.store.offset;
  if (p.lo > p.hi) return;
  if (p.sparse) {
    // binCounts entries { 1: sint32 key, 2: double count }, for the occupied buckets planStore found
    const buf = w.buf;
    const view = w.view;
    const nonempty = NONEMPTY;
    const end = p.nonempty_at + p.count;
    let pos = w.pos;
    for (let j = p.nonempty_at; j < end; j++) {
      const i = nonempty[j]!;
      const k = i + offset;
      let z = ((k << 1) ^ (k >> 31)) >>> 0;
      buf[pos] = 0x0a; // field 1, LEN
      buf[pos + 1] = z < 0x80 ? 11 : z < 0x4000 ? 12 : z < 0x200000 ? 13 : z < 0x10000000 ? 14 : 15;
      buf[pos + 2] = 0x08; // field 1, VARINT
      pos += 3;
      while (z >= 0x80) {
        buf[pos++] = (z & 0x7f) | 0x80;
        z >>>= 7;
      }
      buf[pos] = z;
      buf[pos + 1] = 0x11; // field 2, I64
      view.setFloat64(pos + 2, bins[i]!, true);
      pos += 10;
    }
    w.pos = pos;
  } else {
    // contiguousBinCounts (packed doubles), then contiguousBinIndexOffset
    w.tag(2, LEN);
    w.varint((p.hi - p.lo + 1) * 8);
    w.doubles(bins, p.lo, p.hi);
    w.tag(3, VARINT);
    w.varint(zigzag(p.lo + offset));
  }
}

/** The sketch as base64 of the DDSketch protobuf message (stores in their smaller form, see planStore). */
export function encodeSketch(s: DDSketch): string {
  if (s.negativeStore.count > 0) throw new Error('encodeSketch: the sketch holds negative values (clamp durations to 0 first)');
  return encodeStores(s.mapping.gamma, s.store, s.negativeStore, s.zeroCount);
}

const NO_STORE: StoreLike = { bins: [], offset: 0 };

function encodeStores(gamma: number, positive: StoreLike, negative: StoreLike, zero_count: number): string {
  const pos = planStore(positive, 0);
  const neg = planStore(negative, pos.count);
  const mapping_size = 9 + 9 + 2;
  const total = 2 + mapping_size + 1 + varintSize(pos.size) + pos.size + 1 + varintSize(neg.size) + neg.size + 9;
  const w = WRITER;
  w.reset(total);
  // mapping { gamma, indexOffset 0, interpolation NONE (the logarithmic mapping) }
  w.tag(1, LEN);
  w.varint(mapping_size);
  w.tag(1, I64);
  w.double(gamma);
  w.tag(2, I64);
  w.double(0);
  w.tag(3, VARINT);
  w.varint(0);
  // The library's fromProto() needs both stores present, even empty.
  writeStore(w, 2, pos);
  writeStore(w, 3, neg);
  w.tag(4, I64);
  w.double(zero_count);
  if (w.pos !== total) throw new Error(`encodeSketch: wrote ${w.pos} bytes, planned ${total}`);
  return w.buf.toString('base64', 0, total);
}

/**
 * A DDSketch with the given bucket counts (`counts[i]` for key `lo + i`), its dense store
 * filled in one go: adding keys one by one makes the library re-centre its bins again and
 * again. Counts must be ≥ 0; min/max/sum are set as given.
 */
function sketchFromBins(lo: number, counts: ArrayLike<number>, zero: number, min: number, max: number, sum: number): DDSketch {
  const s = newSketch();
  let a = 0, b = counts.length - 1;
  while (a <= b && !(counts[a]! > 0)) a++;
  while (b >= a && !(counts[b]! > 0)) b--;
  if (a <= b) {
    const store = s.store;
    const bins = new Array<number>(b - a + 1);
    let n = 0;
    for (let i = a; i <= b; i++) n += bins[i - a] = counts[i]!;
    store.bins = bins;
    store.offset = lo + a;
    store.minKey = lo + a;
    store.maxKey = lo + b;
    store.count = n;
  }
  s.zeroCount = zero;
  s.count = s.store.count + zero;
  s.min = min;
  s.max = max;
  s.sum = sum;
  return s;
}

// ------------------------------------------------------------------ decoding

class NotASketch extends Error {}

let lastBuffer: ArrayBufferLike | null = null;
let lastBytes: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
let lastView: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

class Reader {
  /**
   * `buf` and `view` span a whole ArrayBuffer and `pos`/`end` index into it; sub-readers
   * share them (creating a DataView costs more than reading a sketch of 200 buckets).
   */
  constructor(readonly buf: Uint8Array, public pos: number, readonly end: number, readonly view: DataView) {}

  /** A reader over `bytes`, reusing the DataView of the last ArrayBuffer seen. */
  static of(bytes: Uint8Array): Reader {
    if (bytes.buffer !== lastBuffer) {
      lastBuffer = bytes.buffer;
      lastBytes = new Uint8Array(bytes.buffer);
      lastView = new DataView(bytes.buffer);
    }
    return new Reader(lastBytes, bytes.byteOffset, bytes.byteOffset + bytes.length, lastView);
  }

  more(): boolean {
    return this.pos < this.end;
  }

  /** An unsigned varint of at most 32 bits. */
  varint32(): number {
    let v = 0, mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new NotASketch('truncated varint');
      const b = this.buf[this.pos++]!;
      v += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) {
        if (v > 0xffffffff) throw new NotASketch('varint out of range');
        return v;
      }
      mul *= 128;
    }
    throw new NotASketch('varint longer than 10 bytes');
  }

  sint32(): number {
    const n = this.varint32();
    return (n >>> 1) ^ -(n & 1);
  }

  double(): number {
    if (this.pos + 8 > this.end) throw new NotASketch('truncated double');
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A length-delimited body as a sub-reader. */
  sub(): Reader {
    const len = this.varint32();
    if (this.pos + len > this.end) throw new NotASketch('truncated field');
    const r = new Reader(this.buf, this.pos, this.pos + len, this.view);
    this.pos += len;
    return r;
  }

  skip(wire: number): void {
    switch (wire) {
      case VARINT: this.varint32OrLonger(); return;
      case I64: this.need(8); return;
      case LEN: this.sub(); return;
      case I32: this.need(4); return;
      default: throw new NotASketch(`wire type ${wire}`);
    }
  }

  private need(n: number): void {
    if (this.pos + n > this.end) throw new NotASketch('truncated field');
    this.pos += n;
  }

  private varint32OrLonger(): void {
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new NotASketch('truncated varint');
      if ((this.buf[this.pos++]! & 0x80) === 0) return;
    }
    throw new NotASketch('varint longer than 10 bytes');
  }
}

interface DecodedStore {
  /** key → count, from either the sparse map or the contiguous form */
  bins: Map<number, number>;
}

/**
 * Reads one store (sparse `binCounts` entries and the `contiguousBinCounts` run) and hands each
 * bin to `sink.bin`: map entries as met, the contiguous counts last (their index offset may
 * follow them in the message). Shared by the decoder and SketchMerger; checks only the wire
 * format, the sink checks the counts.
 */
function readStoreBins(r: Reader, sink: { bin(key: number, count: number): void }): void {
  let offset = 0;
  // [start, end) byte ranges of packed or single contiguous counts
  const ranges: number[] = [];
  while (r.more()) {
    const tag = r.varint32();
    const field = tag >>> 3, wire = tag & 7;
    if (field === 1 && wire === LEN) {
      // binCounts: map<sint32, double>
      const e = r.sub();
      let key = 0, count = 0;
      while (e.more()) {
        const t = e.varint32();
        if (t >>> 3 === 1 && (t & 7) === VARINT) key = e.sint32();
        else if (t >>> 3 === 2 && (t & 7) === I64) count = e.double();
        else e.skip(t & 7);
      }
      sink.bin(key, count);
    } else if (field === 2 && wire === LEN) {
      const p = r.sub();
      if ((p.end - p.pos) % 8 !== 0) throw new NotASketch('truncated double');
      ranges.push(p.pos, p.end);
    } else if (field === 2 && wire === I64) {
      ranges.push(r.pos, r.pos + 8);
      r.double();
    } else if (field === 3 && wire === VARINT) {
      offset = r.sint32();
    } else {
      r.skip(wire);
    }
  }
  let index = offset;
  for (let i = 0; i < ranges.length; i += 2) {
    for (let at = ranges[i]!; at < ranges[i + 1]!; at += 8) sink.bin(index++, r.view.getFloat64(at, true));
  }
}

function readStore(r: Reader): DecodedStore {
  const bins = new Map<number, number>();
  readStoreBins(r, { bin: (key, count) => addBin(bins, key, count) });
  return { bins };
}

function addBin(bins: Map<number, number>, key: number, count: number): void {
  if (!Number.isFinite(count) || count < 0) throw new NotASketch(`bin count ${count}`);
  if (count === 0) return;
  if (key < KEY_MIN || key > KEY_MAX) throw new NotASketch(`bin key ${key} outside the mapping's range`);
  bins.set(key, (bins.get(key) ?? 0) + count);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * A sketch from `encodeSketch` text (or any DDSketch protobuf with the same 1 % logarithmic
 * mapping and no negative values). Throws an Error starting "decodeSketch:" otherwise.
 */
export function decodeSketch(text: string): DDSketch {
  if (typeof text !== 'string' || text.length === 0) throw new Error('decodeSketch: empty input, not a sketch');
  if (!BASE64.test(text)) throw new Error('decodeSketch: not base64, not a sketch');
  const bytes = Buffer.from(text, 'base64');
  try {
    return fromBytes(bytes);
  } catch (e) {
    if (e instanceof NotASketch) throw new Error(`decodeSketch: not a DDSketch protobuf (${e.message})`);
    throw e;
  }
}

/**
 * Walks a DDSketch protobuf message: its mapping must be the 1 % logarithmic one, its zero
 * count finite and ≥ 0, and its negative store empty. Each store goes to `store`, which reads
 * it and returns how many bins hold a count. Returns the zero count; throws NotASketch.
 * Shared by the decoder (which builds the sketch) and the ingest check (which does not).
 */
function walkSketch(bytes: Uint8Array, store: (r: Reader, negative: boolean) => number): number {
  const r = Reader.of(bytes);
  let gamma: number | null = null, index_offset = 0, interpolation = 0;
  let zero = 0, negative_bins = 0;
  while (r.more()) {
    const tag = r.varint32();
    const field = tag >>> 3, wire = tag & 7;
    if (field === 0) throw new NotASketch('field number 0');
    if (field === 1 && wire === LEN) {
      const m = r.sub();
      gamma = null;
      while (m.more()) {
        const t = m.varint32();
        const f = t >>> 3, wt = t & 7;
        if (f === 1 && wt === I64) gamma = m.double();
        else if (f === 2 && wt === I64) index_offset = m.double();
        else if (f === 3 && wt === VARINT) interpolation = m.varint32();
        else m.skip(wt);
      }
    } else if (field === 2 && wire === LEN) store(r.sub(), false);
    else if (field === 3 && wire === LEN) negative_bins += store(r.sub(), true);
    else if (field === 4 && wire === I64) zero = r.double();
    else r.skip(wire);
  }
  if (gamma === null) throw new NotASketch('no index mapping');
  if (!(Math.abs(gamma - SKETCH_GAMMA) <= 1e-12 * SKETCH_GAMMA)) {
    const accuracy = (gamma - 1) / (gamma + 1);
    throw new NotASketch(`mapping gamma ${gamma} (relative accuracy ${accuracy}), expected ${SKETCH_GAMMA} (${RELATIVE_ACCURACY})`);
  }
  if (index_offset !== 0) throw new NotASketch(`mapping index offset ${index_offset}, expected 0`);
  if (interpolation !== 0) throw new NotASketch(`mapping interpolation ${interpolation}, expected 0 (logarithmic)`);
  if (!Number.isFinite(zero) || zero < 0) throw new NotASketch(`zero count ${zero}`);
  if (negative_bins > 0) throw new NotASketch('negative values (wiretime sketches hold none)');
  return zero;
}

function fromBytes(bytes: Uint8Array): DDSketch {
  let positive: DecodedStore | null = null;
  const zero = walkSketch(bytes, (r, negative) => {
    const d = readStore(r);
    if (!negative) positive = d;
    return d.bins.size;
  });

  let lo = Infinity, hi = -Infinity;
  const bins = (positive as DecodedStore | null)?.bins ?? new Map<number, number>();
  for (const key of bins.keys()) {
    if (key < lo) lo = key;
    if (key > hi) hi = key;
  }
  const counts = bins.size === 0 ? [] : new Array<number>(hi - lo + 1).fill(0);
  for (const [key, count] of bins) counts[key - lo] = count;
  // Safe bounds: bucket k holds (γ^(k−1), γ^k]; widened a hair against rounding.
  const min = zero > 0 ? 0 : bins.size > 0 ? Math.pow(SKETCH_GAMMA, lo - 1) * (1 - 1e-9) : Infinity;
  const max = bins.size > 0 ? Math.pow(SKETCH_GAMMA, hi) * (1 + 1e-9) : zero > 0 ? 0 : -Infinity;
  const s = sketchFromBins(bins.size === 0 ? 0 : lo, counts, zero, min, max, NaN);
  return s;
}

// ------------------------------------------------------------------ raw bytes

/**
 * The sketch as the raw bytes of the DDSketch protobuf message: what the wire
 * (Metric.sketch) and the database (summary_sketches.sketch) carry. The same message as
 * `encodeSketch`, without base64. A new array, owned by the caller.
 */
export function encodeSketchBytes(s: DDSketch): Uint8Array {
  return new Uint8Array(Buffer.from(encodeSketch(s), 'base64'));
}

/**
 * A sketch from raw DDSketch protobuf bytes (what `encodeSketchBytes` writes), with the
 * same checks as `decodeSketch`. Throws an Error starting "decodeSketch:" otherwise.
 */
export function decodeSketchBytes(bytes: Uint8Array): DDSketch {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new Error('decodeSketch: empty input, not a sketch');
  try {
    return fromBytes(bytes);
  } catch (e) {
    if (e instanceof NotASketch) throw new Error(`decodeSketch: not a DDSketch protobuf (${e.message})`);
    throw e;
  }
}

/**
 * Checks raw DDSketch protobuf bytes as `decodeSketchBytes` does (wire format, the 1 %
 * logarithmic mapping, finite non-negative counts, keys in range, no negative values) without
 * building the sketch: null when sound, else the reason. For input validation at ingest
 * rates, where building every sketch would cost more than storing it.
 */
export function checkSketchBytes(bytes: Uint8Array): string | null {
  if (bytes.length === 0) return 'empty input, not a sketch';
  try {
    walkSketch(bytes, checkStore);
    return null;
  } catch (e) {
    if (e instanceof NotASketch) return `not a DDSketch protobuf (${e.message})`;
    throw e;
  }
}

/** readStore's checks without the map: returns how many bins hold a count. */
function checkStore(r: Reader): number {
  let offset = 0, n = 0, first = -1, last = -1, contiguous = 0;
  const buf = r.buf, view = r.view, end = r.end;
  while (r.more()) {
    // Fast path (written by hand: it runs for every bin of every sketch a collector receives,
    // ~130 per sketch; through the Reader's methods a bin cost ~25 ns, here a few): a binCounts
    // entry as protobuf encoders write it, 0x0a LEN 0x08 KEY 0x11 DOUBLE with a one-byte length
    // and a key of at most three varint bytes. It accepts only entries the general loop below
    // reads to the same key and count; anything else goes there.
    const p = r.pos;
    if (buf[p] === 0x0a && buf[p + 2] === 0x08) {
      const entry_end = p + 2 + buf[p + 1]!;
      let q = p + 3;
      let b = buf[q++]!;
      let z = b & 0x7f;
      if (b >= 0x80) {
        b = buf[q++]!;
        z |= (b & 0x7f) << 7;
        if (b >= 0x80) {
          b = buf[q++]!;
          z |= (b & 0x7f) << 14;
        }
      }
      if (b < 0x80 && q + 9 === entry_end && entry_end <= end && buf[q] === 0x11) {
        const count = view.getFloat64(q + 1, true);
        if (!(count >= 0 && count < Infinity)) throw new NotASketch(`bin count ${count}`);
        if (count > 0) {
          const key = (z >>> 1) ^ -(z & 1);
          if (key < KEY_MIN || key > KEY_MAX) throw new NotASketch(`bin key ${key} outside the mapping's range`);
          n++;
        }
        r.pos = entry_end;
        continue;
      }
    }
    const tag = r.varint32();
    const field = tag >>> 3, wire = tag & 7;
    if (field === 1 && wire === LEN) {
      // a binCounts map entry, read in place (no sub-reader per entry: a sketch has hundreds)
      const len = r.varint32();
      const entry_end = r.pos + len;
      if (entry_end > r.end) throw new NotASketch('truncated field');
      let key = 0, count = 0;
      while (r.pos < entry_end) {
        const t = r.varint32();
        if (t === ((1 << 3) | VARINT)) key = r.sint32();
        else if (t === ((2 << 3) | I64)) count = r.double();
        else r.skip(t & 7);
      }
      if (r.pos !== entry_end) throw new NotASketch('truncated field');
      if (!(count >= 0 && count < Infinity)) throw new NotASketch(`bin count ${count}`);
      if (count > 0) {
        if (key < KEY_MIN || key > KEY_MAX) throw new NotASketch(`bin key ${key} outside the mapping's range`);
        n++;
      }
    } else if (field === 2 && (wire === LEN || wire === I64)) {
      // contiguousBinCounts, packed (LEN) or one value (I64)
      let at: number, end: number;
      if (wire === LEN) {
        const p = r.sub();
        at = p.pos;
        end = p.end;
        if ((end - at) % 8 !== 0) throw new NotASketch('truncated double');
      } else {
        at = r.pos;
        r.double();
        end = r.pos;
      }
      const view = r.view;
      for (; at < end; at += 8) {
        const count = view.getFloat64(at, true);
        if (!(count >= 0 && count < Infinity)) throw new NotASketch(`bin count ${count}`);
        if (count > 0) {
          if (first < 0) first = contiguous;
          last = contiguous;
          n++;
        }
        contiguous++;
      }
    } else if (field === 3 && wire === VARINT) {
      offset = r.sint32();
    } else {
      r.skip(wire);
    }
  }
  if (first >= 0 && (offset + first < KEY_MIN || offset + last > KEY_MAX)) {
    throw new NotASketch(`bin key ${offset + first < KEY_MIN ? offset + first : offset + last} outside the mapping's range`);
  }
  return n;
}

// ------------------------------------------------------------------ merging many stored sketches

/**
 * Merges many encoded sketches (raw DDSketch protobuf bytes, as stored in the database) into
 * one set of bucket counts without building a DDSketch for each input: a query merges
 * thousands. Each input is checked as `decodeSketchBytes` checks it (an Error starting
 * "decodeSketch:" when it is not a sketch; nothing of it is added then). `toSketch` gives the
 * merged sketch: bucket for bucket what merging the decoded sketches gives.
 */
export class SketchMerger {
  /** key of bins[0] */
  private lo = 0;
  private bins: Float64Array = new Float64Array(0);
  /** values in the zero bucket */
  zero = 0;
  /** values merged */
  count = 0;
  /** where readStoreBins hands the bins of a checked input */
  private readonly sink = { bin: (key: number, count: number): void => { if (count > 0) this.add(key, count); } };

  addBytes(bytes: Uint8Array): void {
    const problem = checkSketchBytes(bytes);
    if (problem !== null) throw new Error(`decodeSketch: ${problem}`);
    const r = Reader.of(bytes);
    while (r.more()) {
      const tag = r.varint32();
      const field = tag >>> 3, wire = tag & 7;
      if (field === 2 && wire === LEN) readStoreBins(r.sub(), this.sink);
      else if (field === 4 && wire === I64) {
        const z = r.double();
        this.zero += z;
        this.count += z;
      } else r.skip(wire);
    }
  }

  /** The merged sketch, with the exact min and max of the values (which the bytes do not carry). */
  toSketch(min: number, max: number): DDSketch {
    return sketchFromBins(this.lo, this.bins, this.zero, min, max, NaN);
  }

  private add(key: number, count: number): void {
    let i = key - this.lo;
    if (i < 0 || i >= this.bins.length) {
      const old = this.bins;
      const lo = old.length === 0 ? key - 64 : Math.min(this.lo, key - 64);
      const hi = old.length === 0 ? key + 64 : Math.max(this.lo + old.length - 1, key + 64);
      const bins = new Float64Array(hi - lo + 1);
      if (old.length > 0) bins.set(old, this.lo - lo);
      this.bins = bins;
      this.lo = lo;
      i = key - lo;
    }
    this.bins[i]! += count;
    this.count += count;
  }
}
