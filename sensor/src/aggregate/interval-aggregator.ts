import { hostname } from 'node:os';
import type { ConnectionRecord, SummaryMetric, SummaryRecord, TransactionRecord } from '../output/records.ts';
import { CONNECTION_KIND, TRANSACTION_KIND, type RecordKind } from './metrics.ts';
import { BucketCounts, bucketKey, SKETCH_MIN_POSITIVE, widenedRange } from './sketch.ts';

export interface AggregatorOptions {
  /** the `sensor` of every summary (default: the host name) */
  sensor_id: string;
  /** interval length, whole seconds; intervals start at multiples of it (default 300) */
  interval_s: number;
  /** an interval closes when capture time passes its end + grace, so late-finishing transactions still land in it (default 60) */
  grace_s: number;
  /** distinct keys per interval; beyond it a new key's records go to an overflow key of the same server (default 100 000) */
  max_keys_per_interval: number;
}

export const DEFAULT_AGGREGATOR_OPTIONS: Omit<AggregatorOptions, 'sensor_id'> = {
  interval_s: 300,
  grace_s: 60,
  max_keys_per_interval: 100_000,
};

/**
 * Timing values kept raw per metric before a key counts them into sketch buckets. Bucket
 * counts cost 4 bytes per bucket of the range the values span (~1.4 KB for three decades;
 * a library DDSketch ~2.2 KB for one value, ~5 KB for a few) and a transaction key has 8
 * timing metrics, while most keys of a busy sensor see a handful of transactions per
 * interval: up to this many values live in the key's typed array instead, and go into the
 * buckets on the next value. At close either becomes the same DDSketch, bucket for bucket.
 */
export const SAMPLES_BEFORE_SKETCH = 8;

/** Capture seconds over which the summaries of a closed interval are handed out (see drain). */
export const SPREAD_S = 30;
/** Fewest pending summaries handed out at a time: a small close goes out in one go. */
export const DRAIN_MIN = 500;

/** A closed interval whose summaries are being handed out: its keys in order, the next one's index. */
interface Closing {
  readonly iv: IntervalState;
  readonly states: KeyState[];
  next: number;
  readonly partial: boolean;
}

/**
 * A timing metric's block in a key's array: count, sum, min, max, then where its buckets
 * are in the key's one bucket array (the key of the first bucket, its index there, how many
 * buckets; 0 before the metric has any) and its zero bucket.
 */
const TIMING_BLOCK = 8;
const BIN_LO = 4;
const BIN_START = 5;
const BIN_LEN = 6;
const BIN_ZERO = 7;

/**
 * Where a kind's numbers live in a key's single Float64Array:
 * `[count, outcome counts…, TIMING_BLOCK per timing metric…, (count, sum, min, max) per other metric…,
 *   negative_clamped per timing metric…, SAMPLES_BEFORE_SKETCH buffered values per timing metric…]`.
 */
class Layout {
  readonly outcome_index: Map<string, number>;
  /** first outcome slot */
  readonly O = 1;
  /** first metric block (metric i's: `block(i)`) */
  readonly S: number;
  /** first negative_clamped slot */
  readonly N: number;
  /** first buffered sample */
  readonly B: number;
  readonly size: number;
  readonly M: number;
  readonly T: number;
  constructor(readonly kind: RecordKind) {
    this.outcome_index = new Map(kind.outcomes.map((o, i) => [o, i]));
    this.M = kind.metrics.length;
    this.T = kind.timing;
    this.S = this.O + kind.outcomes.length;
    this.N = this.S + TIMING_BLOCK * this.T + 4 * (this.M - this.T);
    this.B = this.N + this.T;
    this.size = this.B + this.T * SAMPLES_BEFORE_SKETCH;
  }

  block(i: number): number {
    return i < this.T ? this.S + TIMING_BLOCK * i : this.S + (TIMING_BLOCK - 4) * this.T + 4 * i;
  }
}

const TRANSACTION = new Layout(TRANSACTION_KIND);
const CONNECTION = new Layout(CONNECTION_KIND);
const NO_BINS = new Uint32Array(0);

/**
 * One key of one interval: every number in one typed array, and the bucket counts of all
 * its timing metrics (those past the sample buffer) in one other, each metric's range in
 * turn. A transaction adds to up to 8 sketches; with the buckets of each in an object and
 * an array of its own, that was ~3 more cache lines per sketch, and with the 200 bench
 * rules' 44 keys instead of the default names' 15 those lines no longer stayed in cache:
 * counting into the buckets cost ~44 ms over the bench capture that way, ~20 ms this way
 * (against not counting at all, 8 alternating runs each; nothing measurable with 15 keys).
 */
class KeyState {
  readonly v: Float64Array;
  /** bucket counts of the timing metrics that have left the sample buffer (ranges in `v`) */
  bins: Uint32Array = NO_BINS;
  /** outcomes outside the kind's list (none today; kept rather than lost) */
  extra_outcomes: Record<string, number> | null = null;
  constructor(
    readonly layout: Layout,
    readonly server: string,
    readonly server_port: number,
    readonly transport: 'tcp' | 'udp',
    readonly protocol: string,
    readonly signature: string,
    /** the key that takes a server's records once the interval has max_keys_per_interval keys */
    readonly overflow: boolean,
  ) {
    this.v = new Float64Array(layout.size);
  }
}

/**
 * The keys of one interval. Looked up field by field (server, then port, then signature,
 * then a handful told apart by kind, transport and protocol) rather than by one string
 * made of them: the strings a transaction brings (the conversation's server address, the
 * signature) already carry their hash from earlier lookups, while a joined key would be
 * built, flattened, hashed and compared character by character for every transaction
 * (replaying the bench capture's transactions: ~210 ns each with the default names, ~300–450 ns
 * with 200 rules' names; about as much as the metrics themselves).
 */
class IntervalState {
  /** server → server port → signature → keys */
  private readonly index = new Map<string, Map<number, Map<string, KeyState[]>>>();
  /** every key, in order of creation */
  readonly states: KeyState[] = [];
  /** keys other than overflow keys, bounded by max_keys_per_interval */
  regular_keys = 0;
  constructor(readonly start_s: number) {}

  find(layout: Layout, server: string, server_port: number, transport: 'tcp' | 'udp', protocol: string, signature: string,
    overflow: boolean): KeyState | undefined {
    const list = this.index.get(server)?.get(server_port)?.get(signature);
    if (list === undefined) return undefined;
    for (let i = 0; i < list.length; i++) {
      const ks = list[i]!;
      if (ks.layout === layout && ks.transport === transport && ks.protocol === protocol && ks.overflow === overflow) return ks;
    }
    return undefined;
  }

  insert(ks: KeyState): void {
    let ports = this.index.get(ks.server);
    if (ports === undefined) this.index.set(ks.server, (ports = new Map()));
    let sigs = ports.get(ks.server_port);
    if (sigs === undefined) ports.set(ks.server_port, (sigs = new Map()));
    const list = sigs.get(ks.signature);
    if (list === undefined) sigs.set(ks.signature, [ks]);
    else list.push(ks);
    this.states.push(ks);
  }
}

/**
 * Folds transaction and connection records into per-interval summaries keyed by sensor,
 * interval start, server, server port, transport, protocol and signature (DESIGN.md,
 * Interval summaries). Driven by capture time only: `add` files a record under the
 * interval of its own capture time, `advanceTo` closes intervals whose end + grace has
 * passed, `flush` closes the rest.
 */
export class IntervalAggregator {
  readonly options: AggregatorOptions;
  private readonly on_summary: (s: SummaryRecord) => void;
  /** open intervals, oldest first (rarely more than two) */
  private readonly open: IntervalState[] = [];
  private last: IntervalState | null = null;
  /** latest capture time given to advanceTo */
  private clock_s = -Infinity;
  private readonly scratch = new Float64Array(TRANSACTION.M);
  private keys = 0;
  /** closed intervals whose summaries are still to be handed out, oldest first (see drain) */
  private readonly closing: Closing[] = [];
  private summaries_pending = 0;
  /** capture time of the last drain */
  private drained_s = -Infinity;
  /** pending summaries to hand out per capture second (see drain) */
  private drain_per_s = 0;
  private summaries_emitted = 0;
  private late_records = 0;
  private overflowed_records = 0;

  constructor(options: Partial<AggregatorOptions>, on_summary: (s: SummaryRecord) => void) {
    const o: AggregatorOptions = { sensor_id: options.sensor_id ?? hostname(), ...DEFAULT_AGGREGATOR_OPTIONS, ...stripUndefined(options) };
    if (!Number.isInteger(o.interval_s) || o.interval_s < 1) throw new RangeError(`interval_s must be a whole number of seconds ≥ 1, not ${o.interval_s}`);
    if (!Number.isFinite(o.grace_s) || o.grace_s < 0) throw new RangeError(`grace_s must be ≥ 0, not ${o.grace_s}`);
    if (!Number.isInteger(o.max_keys_per_interval) || o.max_keys_per_interval < 1) throw new RangeError(`max_keys_per_interval must be an integer ≥ 1, not ${o.max_keys_per_interval}`);
    if (typeof o.sensor_id !== 'string' || o.sensor_id === '') throw new RangeError('sensor_id must be a non-empty string');
    this.options = o;
    this.on_summary = on_summary;
  }

  /**
   * A transaction or connection record; `time_s`: whole capture seconds of its req_first
   * (transactions) or start (connections), which decide its interval. A record whose
   * interval has already closed goes to the oldest open interval (counted as late).
   */
  add(record: TransactionRecord | ConnectionRecord, time_s: number): void {
    const connection = record.type === 'connection';
    const x = this.scratch;
    (connection ? CONNECTION : TRANSACTION).kind.read(record, x);
    this.addMetrics(connection ? 'connection' : 'transaction', record.server, record.server_port, record.transport,
      record.protocol, record.signature, record.outcome, x, time_s);
  }

  /**
   * The same as `add`, from the metrics themselves: `values` in the order of
   * TRANSACTION_METRICS or CONNECTION_METRICS (metrics.ts), NaN where not measured. The
   * pipeline calls this directly when only summaries are wanted, so that no record object
   * is built per transaction. `values` is read during the call only.
   */
  addMetrics(kind: 'transaction' | 'connection', server: string, server_port: number, transport: 'tcp' | 'udp', protocol: string,
    signature: string, outcome: string, values: Float64Array, time_s: number): void {
    // ±8.64e12 s is the range of a JavaScript Date (interval_start must be printable)
    if (!(Math.abs(time_s) <= 8.64e12)) throw new RangeError(`add: time_s must be a capture time in seconds, not ${time_s}`);
    const iv = this.intervalFor(time_s);
    const layout = kind === 'connection' ? CONNECTION : TRANSACTION;
    let ks = iv.find(layout, server, server_port, transport, protocol, signature, false);
    if (ks === undefined) {
      if (iv.regular_keys < this.options.max_keys_per_interval) {
        ks = new KeyState(layout, server, server_port, transport, protocol, signature, false);
        iv.insert(ks);
        iv.regular_keys++;
        this.keys++;
      } else {
        ks = this.overflowKey(iv, layout, server, server_port, transport, protocol);
        this.overflowed_records++;
      }
    }
    this.accumulate(ks, outcome, values);
  }

  /**
   * Capture time advanced to `now_s` (seconds since the epoch, fractional): closes every
   * interval whose end + grace <= now_s, and hands out the closed intervals' summaries, up
   * to a share of them (see drain).
   */
  advanceTo(now_s: number): void {
    if (!(now_s > this.clock_s)) return;
    this.clock_s = now_s;
    const span = this.options.interval_s + this.options.grace_s;
    const open = this.open;
    while (open.length > 0 && open[0]!.start_s + span <= now_s) this.close(open.shift()!);
    if (this.summaries_pending > 0) this.drain(now_s);
  }

  /**
   * End of input or SIGINT/SIGTERM: closes every open interval (those whose end capture time
   * has not reached are marked partial) and hands out every summary still pending.
   */
  flush(): void {
    while (this.open.length > 0) this.close(this.open.shift()!);
    this.emit(this.summaries_pending);
  }

  /**
   * `summaries_pending`: summaries of closed intervals not yet handed out (see drain); 0
   * after `flush`.
   */
  stats(): {
    open_intervals: number; keys: number; summaries_emitted: number; summaries_pending: number; late_records: number; overflowed_records: number;
  } {
    return {
      open_intervals: this.open.length,
      keys: this.keys,
      summaries_emitted: this.summaries_emitted,
      summaries_pending: this.summaries_pending,
      late_records: this.late_records,
      overflowed_records: this.overflowed_records,
    };
  }

  // ------------------------------------------------------------------ intervals

  private intervalFor(time_s: number): IntervalState {
    const I = this.options.interval_s;
    const start = Math.floor(time_s / I) * I;
    const last = this.last;
    if (last !== null && last.start_s === start) return last;
    if (start + I + this.options.grace_s <= this.clock_s) {
      // Its interval is closed: the oldest open one takes it, or the one capture time is in.
      this.late_records++;
      return this.open[0] ?? this.openInterval(Math.floor(this.clock_s / I) * I);
    }
    for (const iv of this.open) {
      if (iv.start_s === start) return (this.last = iv);
    }
    return this.openInterval(start);
  }

  private openInterval(start: number): IntervalState {
    const iv = new IntervalState(start);
    let i = this.open.length;
    while (i > 0 && this.open[i - 1]!.start_s > start) i--;
    this.open.splice(i, 0, iv);
    this.last = iv;
    return iv;
  }

  private overflowKey(iv: IntervalState, layout: Layout, server: string, server_port: number, transport: 'tcp' | 'udp', protocol: string): KeyState {
    const signature = layout.kind.overflow_signature;
    let ks = iv.find(layout, server, server_port, transport, protocol, signature, true);
    if (ks === undefined) {
      ks = new KeyState(layout, server, server_port, transport, protocol, signature, true);
      iv.insert(ks);
      this.keys++;
    }
    return ks;
  }

  /** Takes an interval out of the open ones; its summaries wait in `closing` for drain or flush. */
  private close(iv: IntervalState): void {
    if (this.last === iv) this.last = null;
    this.keys -= iv.states.length;
    const partial = this.clock_s < iv.start_s + this.options.interval_s;
    const states = iv.states.sort(compareKeys);
    if (states.length === 0) return;
    this.closing.push({ iv, states, next: 0, partial });
    if (this.summaries_pending === 0) this.drained_s = this.clock_s;
    this.summaries_pending += states.length;
    this.drain_per_s = Math.ceil(this.summaries_pending / Math.min(SPREAD_S, this.options.interval_s / 2));
  }

  /**
   * Hands out the pending summaries spread over SPREAD_S seconds of capture time (half the
   * interval when that is shorter), at least DRAIN_MIN at a time. Building a summary
   * (quantiles, sketch bytes) takes tens of µs a key, and the close of a large interval
   * (up to max_keys_per_interval keys) would otherwise hold the packets for seconds in one
   * go: with live capture the kernel buffer then fills and drops. Spread, each call (once
   * per capture second, from the pipeline) takes a slice.
   */
  private drain(now_s: number): void {
    const n = Math.max(DRAIN_MIN, Math.ceil(this.drain_per_s * (now_s - this.drained_s)));
    this.drained_s = now_s;
    this.emit(n);
  }

  /** Hands out up to `n` pending summaries, oldest interval first, each interval's in key order. */
  private emit(n: number): void {
    const closing = this.closing;
    while (n > 0 && closing.length > 0) {
      const c = closing[0]!;
      // taken before the callback runs: a callback that throws loses that summary, not the order
      const ks = c.states[c.next++]!;
      if (c.next === c.states.length) closing.shift();
      this.summaries_pending--;
      n--;
      const summary = this.summary(c.iv, ks, c.partial);
      this.summaries_emitted++;
      this.on_summary(summary);
    }
  }

  // ------------------------------------------------------------------ per key

  private accumulate(ks: KeyState, outcome: string, x: Float64Array): void {
    const L = ks.layout;
    const v = ks.v;
    v[0]!++;
    const oi = L.outcome_index.get(outcome);
    if (oi !== undefined) v[L.O + oi]!++;
    else {
      const extra = (ks.extra_outcomes ??= {});
      extra[outcome] = (extra[outcome] ?? 0) + 1;
    }
    const T = L.T, M = L.M, S = L.S;
    const S4 = S + (TIMING_BLOCK - 4) * T;
    for (let i = 0; i < M; i++) {
      let value = x[i]!;
      if (value !== value) continue; // null (NaN)
      if (i < T && value < 0) {
        value = 0;
        v[L.N + i]!++;
      }
      const b = i < T ? S + TIMING_BLOCK * i : S4 + 4 * i;
      const c = v[b]!;
      if (c === 0) {
        v[b + 1] = value;
        v[b + 2] = value;
        v[b + 3] = value;
      } else {
        v[b + 1]! += value;
        if (value < v[b + 2]!) v[b + 2] = value;
        if (value > v[b + 3]!) v[b + 3] = value;
      }
      v[b] = c + 1;
      if (i < T) {
        if (c < SAMPLES_BEFORE_SKETCH) v[L.B + i * SAMPLES_BEFORE_SKETCH + c] = value;
        else {
          if (c === SAMPLES_BEFORE_SKETCH) {
            // The buffered values go into buckets sized for their range (and this value's).
            this.reserveBins(ks, b);
            const from = L.B + i * SAMPLES_BEFORE_SKETCH;
            for (let j = 0; j < SAMPLES_BEFORE_SKETCH; j++) this.addToBins(ks, b, v[from + j]!);
          }
          this.addToBins(ks, b, value);
        }
      }
    }
  }

  /** Counts a timing value into the buckets of the metric whose block is at `b` (`DDSketch.accept`'s buckets). */
  private addToBins(ks: KeyState, b: number, value: number): void {
    const v = ks.v;
    // the library's test: at or below minPossible (~1e-308) is zero
    if (!(value > SKETCH_MIN_POSITIVE)) {
      v[b + BIN_ZERO]!++;
      return;
    }
    const key = bucketKey(value);
    let j = key - v[b + BIN_LO]!;
    if (j < 0 || j >= v[b + BIN_LEN]!) j = this.growBins(ks, b, key);
    ks.bins[v[b + BIN_START]! + j]!++;
  }

  /**
   * Sizes a metric's (empty) buckets for the values from its min to its max, with room on
   * both sides: a key's first values usually span most of what its interval will see, and
   * each growth copies the key's buckets (the bench capture's transactions spread over 143
   * keys: 5 233 growths without it, 1 056 with it).
   */
  private reserveBins(ks: KeyState, b: number): void {
    const v = ks.v;
    const max = v[b + 3]!;
    if (!(max > SKETCH_MIN_POSITIVE)) return;
    const min = v[b + 2]!;
    const hi = bucketKey(max);
    const lo = min > SKETCH_MIN_POSITIVE ? bucketKey(min) : hi;
    const pad = Math.max(8, (hi - lo) >> 1);
    this.resizeBins(ks, b, lo - pad, hi - lo + 1 + 2 * pad);
  }

  /** Widens a metric's range to hold `key` (with some room on the side it grew); returns its index in the range. */
  private growBins(ks: KeyState, b: number, key: number): number {
    const r = widenedRange(ks.v[b + BIN_LO]!, ks.v[b + BIN_LEN]!, key);
    this.resizeBins(ks, b, r.lo, r.len);
    return key - r.lo;
  }

  /** Gives the metric at `b` the range [lo, lo + len) (holding its counts), in a new bucket array for the key. */
  private resizeBins(ks: KeyState, b: number, lo: number, len: number): void {
    const v = ks.v;
    const L = ks.layout;
    let total = 0;
    for (let t = 0; t < L.T; t++) {
      const bt = L.S + TIMING_BLOCK * t;
      total += bt === b ? len : v[bt + BIN_LEN]!;
    }
    const old = ks.bins;
    const bins = new Uint32Array(total);
    let at = 0;
    for (let t = 0; t < L.T; t++) {
      const bt = L.S + TIMING_BLOCK * t;
      const n = v[bt + BIN_LEN]!;
      const from = v[bt + BIN_START]!;
      if (bt === b) {
        if (n > 0) bins.set(old.subarray(from, from + n), at + (v[bt + BIN_LO]! - lo));
        v[bt + BIN_LO] = lo;
        v[bt + BIN_LEN] = len;
        v[bt + BIN_START] = at;
        at += len;
      } else {
        if (n > 0) bins.set(old.subarray(from, from + n), at);
        v[bt + BIN_START] = at;
        at += n;
      }
    }
    ks.bins = bins;
  }

  private summary(iv: IntervalState, ks: KeyState, partial: boolean): SummaryRecord {
    const L = ks.layout;
    const v = ks.v;
    const names = L.kind.outcomes;
    const outcomes: Record<string, number> = {};
    for (let k = 0; k < names.length; k++) if (v[L.O + k]! > 0) outcomes[names[k]!] = v[L.O + k]!;
    if (ks.extra_outcomes !== null) Object.assign(outcomes, ks.extra_outcomes);
    const metrics: Record<string, SummaryMetric> = {};
    for (let i = 0; i < L.M; i++) {
      const b = L.block(i);
      const count = v[b]!;
      if (count === 0) continue;
      const m: SummaryMetric = { count, sum: v[b + 1]!, min: v[b + 2]!, max: v[b + 3]! };
      if (i < L.T) {
        // Straight from bucket counts: the same numbers and bytes as through a library sketch,
        // without building one (closing the bench capture's transactions spread over 143 keys
        // took ~25 ms that way, ~15 ms this way: the close runs in code not yet compiled). A
        // metric still holding its few values raw has them counted into buckets here: through
        // a library sketch instead, a close of 20 000 keys of 3 transactions took 1.7x as long
        // as one of 20 000 keys of 20 (one run each).
        let bc: BucketCounts;
        if (count <= SAMPLES_BEFORE_SKETCH) {
          bc = new BucketCounts();
          const from = L.B + i * SAMPLES_BEFORE_SKETCH;
          for (let j = 0; j < count; j++) bc.add(v[from + j]!);
        } else {
          const from = v[b + BIN_START]!;
          bc = BucketCounts.over(ks.bins.subarray(from, from + v[b + BIN_LEN]!), v[b + BIN_LO]!, v[b + BIN_ZERO]!, count);
        }
        Object.assign(m, bc.quantiles(m));
        if (v[L.N + i]! > 0) m.negative_clamped = v[L.N + i]!;
        m.sketch = bc.encode();
      }
      metrics[L.kind.metrics[i]!] = m;
    }
    const s: SummaryRecord = {
      type: 'summary',
      interval_start: rfc3339Seconds(iv.start_s),
      interval_s: this.options.interval_s,
      sensor: this.options.sensor_id,
      server: ks.server,
      server_port: ks.server_port,
      transport: ks.transport,
      protocol: ks.protocol,
      signature: ks.signature,
      count: v[0]!,
      outcomes,
      metrics,
    };
    if (partial) s.partial = true;
    return s;
  }
}

/** Summaries of an interval come out sorted by server, server port, transport, protocol, signature. */
function compareKeys(a: KeyState, b: KeyState): number {
  return cmp(a.server, b.server) || a.server_port - b.server_port || cmp(a.transport, b.transport) ||
    cmp(a.protocol, b.protocol) || cmp(a.signature, b.signature);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `2026-01-01T00:05:00Z` */
export function rfc3339Seconds(epoch_s: number): string {
  return `${new Date(epoch_s * 1000).toISOString().slice(0, 19)}Z`;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, val] of Object.entries(o)) if (val !== undefined) (out as Record<string, unknown>)[k] = val;
  return out;
}
