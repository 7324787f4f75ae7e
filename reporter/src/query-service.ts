// The reporter's answers (proto wiretime.v1.ReportService), independent of gRPC: each method
// checks its request (ServerError INVALID_ARGUMENT naming the field), plans which stored levels
// to read, reads them in one read-only transaction through ReportStore, and combines the rows in
// JavaScript: counts and sums add, min/max combine, and DDSketches merge (bucket counts add) so
// that percentiles over many intervals and sensors are those of all their transactions, within
// the sketches' 1% relative error, clamped to the exact min/max (as sensor/src/aggregate/merge.ts
// does).
//
// Levels (collector/src/migrations/003_rollups.sql): level 1 holds the window from
// rollup_state(3600).source_deleted_until on (everything when NULL), hourly rows the time before
// that, daily rows the time before rollup_state(86400).source_deleted_until. A window that reaches
// an older level is answered at that level's resolution or coarser. Where a coarse answer is
// asked for anyway (a series with 1-day buckets, a top-N over whole days), rows already merged
// into a coarser level (before its rolled_until) are read from there: the same numbers from far
// fewer rows. Top-N and compare read the whole days of a window from day blocks where they can
// (splitIntoBlocks; collector/src/migrations/005_day_blocks.sql): daily rows pre-merged over 2,
// 4, … 64 days, a 30-day window in about 5 rows per group instead of 30.
//
// A top-N by a percentile merges the sketches of as few groups as it can: groups are read in
// order of an upper bound of their answer (storedPercentileBound: from the rows' stored upper
// percentiles, whose ranks add up over any number of rows), and reading stops once the N-th best
// answer found beats every bound left. The answers are those of the merged sketches, as without
// the bounds.
import { create } from '@bufbuild/protobuf';
import { ServerError, Status } from 'nice-grpc';
import type { MessageInitShape } from '@bufbuild/protobuf';
import {
  CompareRequestSchema, CompareResponseSchema, GetSeriesRequestSchema, GetSeriesResponseSchema, GetTopRequestSchema,
  GetTopResponseSchema, GroupBy, ListProtocolsRequestSchema, ListProtocolsResponseSchema, ListSensorsRequestSchema,
  ListSensorsResponseSchema, ListServersRequestSchema, ListServersResponseSchema, ListSignaturesRequestSchema,
  ListSignaturesResponseSchema, Statistic,
  type CompareResponse, type CompareRowSchema, type Filter, type GetSeriesResponse, type GetTopResponse, type GroupKeySchema,
  type ListProtocolsResponse, type ListSensorsResponse, type ListServersResponse, type ListSignaturesResponse,
  type PointSchema, type TopRowSchema, type Window,
} from '../../proto/src/gen/wiretime/v1/report_pb.ts';
import { CONNECTION_METRICS, TRANSACTION_METRICS } from '../../sensor/src/aggregate/metrics.ts';
import { RELATIVE_ACCURACY, SKETCH_GAMMA, SketchMerger } from '../../sensor/src/aggregate/sketch.ts';
import { BLOCK_DAYS } from '../../collector/src/rollup.ts';
import type { Queryable } from '../../collector/src/store/sql.ts';
import {
  isAddressOrNetwork, type AggregateRow, type Grouping, type Level, type LevelState, type PercentileKey, type ReportStore, type StoreFilter,
  type StoredPercentiles,
} from './store/report-store.ts';

/** Bounds on what one call may ask for. */
export interface QueryLimits {
  /** longest window, seconds; default 400 days */
  max_window_s: number;
  /** most points of a series; default 2000 */
  max_points: number;
  /** points of a series when the request does not say; default 500 */
  default_points: number;
  /** most rows of a list page, top-N or compare; default 1000 */
  max_rows: number;
}

export const DEFAULT_QUERY_LIMITS: QueryLimits = {
  max_window_s: 400 * 86_400,
  max_points: 2000,
  default_points: 500,
  max_rows: 1000,
};

/** Metric names the sensors write (sensor/src/aggregate/metrics.ts). */
export const KNOWN_METRICS: readonly string[] = [...new Set<string>([...TRANSACTION_METRICS, ...CONNECTION_METRICS])].sort();

/** Bucket widths a series picks from (seconds), finest first. */
export const RESOLUTIONS_S: readonly number[] = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800];

/** The sensors' default interval: level 1's interval in `levels_s` when the window holds no level-1 rows. */
const DEFAULT_LEVEL1_INTERVAL_S = 300;
/** Finest bucket of level-1 data considered before its rows' interval lengths are known. */
const LEVEL1_FLOOR_S = 60;
const HOUR_S = 3600;
const DAY_S = 86_400;
/** 2000-01-01 and 2100-01-01, as the collector accepts */
const MIN_TIME_S = 946_684_800;
const MAX_TIME_S = 4_102_444_800;
/**
 * Groups whose sketches are read at once while looking for the top N by a percentile: first the
 * N with the highest bounds and this many more, then three times as many each time, up to the
 * most (one or two statements when the bounds are tight, few wasted reads when they are not).
 */
const SKETCH_BATCH_FIRST = 20;
const SKETCH_BATCH_MAX = 500;
/** The highest percentile whose top-N bounds groups from their upper percentiles alone (see getTop). */
const LEAN_MAX_LEVEL = 0.95;
/** The day blocks' lengths in days, as the roll-up writes them, longest first. */
const BLOCKS_LONGEST_FIRST = [...BLOCK_DAYS].sort((a, b) => b - a);

const PERCENTILE: Partial<Record<Statistic, number>> = {
  [Statistic.P50]: 0.5, [Statistic.P90]: 0.9, [Statistic.P95]: 0.95, [Statistic.P99]: 0.99,
};

/** The percentiles level-2 rows carry per timing metric (collector/src/rollup.ts), lowest first. */
const STORED_PERCENTILES: readonly PercentileKey[] = [
  { key: 'p50', q: 0.5 }, { key: 'p90', q: 0.9 }, { key: 'p95', q: 0.95 }, { key: 'p99', q: 0.99 },
];
/** Their upper variants (migration 005, upper_percentiles), whose ranks add up over any rows. */
const UPPER_PERCENTILES: readonly PercentileKey[] = STORED_PERCENTILES.map((k) => ({ ...k, upper: true }));

const STATISTIC_NAMES = 'STATISTIC_COUNT, STATISTIC_AVG, STATISTIC_MIN, STATISTIC_MAX, STATISTIC_P50, STATISTIC_P90, STATISTIC_P95, STATISTIC_P99';

/** One part of a window, read from one level. */
export interface Segment { level: Level; start_s: number; end_s: number }

/** Running totals of one group (bucket, signature or server). */
interface Accum {
  row: AggregateRow;
  transactions: bigint;
  count: bigint;
  sum: number;
  min: number;
  max: number;
  sketch: SketchMerger | null;
  /**
   * The rows' stored percentiles at and above the asked one (as `aggregate` was asked), combined
   * over the segments, null for a key some row lacks; null when none were asked for (or level-1
   * rows are among them).
   */
  stored: (StoredPercentiles | null)[] | null;
}

function invalid(message: string): never {
  throw new ServerError(Status.INVALID_ARGUMENT, message);
}

function floorTo(x: number, unit: number): number {
  return Math.floor(x / unit) * unit;
}

function ceilTo(x: number, unit: number): number {
  return Math.ceil(x / unit) * unit;
}

function iso(s: number): string {
  return new Date(s * 1000).toISOString().replace('.000Z', 'Z');
}

/**
 * The segments of [start_s, end_s) and the level each is read from. Mandatory: daily rows before
 * the daily source_deleted_until, hourly rows before the hourly one. Optional (when allowed and
 * the segment starts and ends on that level's boundaries): rows already rolled into a coarser
 * level are read from it.
 */
export function planSegments(start_s: number, end_s: number, st: LevelState, allow: { hour: boolean; day: boolean }): Segment[] {
  const clamp = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);
  let dayCut = clamp(st.daily_source_deleted_until_s ?? -Infinity, start_s, end_s);
  if (allow.day && start_s % DAY_S === 0 && st.daily_rolled_until_s !== null) {
    dayCut = Math.max(dayCut, clamp(Math.min(floorTo(st.daily_rolled_until_s, DAY_S), floorTo(end_s, DAY_S)), start_s, end_s));
  }
  let hourCut = clamp(st.hourly_source_deleted_until_s ?? -Infinity, dayCut, end_s);
  if (allow.hour && dayCut % HOUR_S === 0 && st.hourly_rolled_until_s !== null) {
    hourCut = Math.max(hourCut, clamp(Math.min(floorTo(st.hourly_rolled_until_s, HOUR_S), floorTo(end_s, HOUR_S)), dayCut, end_s));
  }
  const out: Segment[] = [];
  if (dayCut > start_s) out.push({ level: DAY_S, start_s, end_s: dayCut });
  if (hourCut > dayCut) out.push({ level: HOUR_S, start_s: dayCut, end_s: hourCut });
  if (end_s > hourCut) out.push({ level: 0, start_s: hourCut, end_s });
  return out;
}

/**
 * The segments with each daily segment split into complete day blocks (LevelState.blocks) and
 * single days: from its start, the longest block that starts there (blocks start on a day
 * number divisible by their length in days), lies within the segment and is complete, else one
 * day. Runs of single days stay one daily segment. A block holds exactly its days' daily rows
 * (the roll-up writes both in one transaction), so the answers do not change, only the rows read:
 * a 30-day window reads about 4 to 8 rows per key instead of 30.
 */
export function splitIntoBlocks(segments: readonly Segment[], st: LevelState): Segment[] {
  const b = st.blocks;
  if (!b) return [...segments];
  const out: Segment[] = [];
  for (const seg of segments) {
    if (seg.level !== DAY_S) {
      out.push(seg);
      continue;
    }
    let t = seg.start_s;
    while (t < seg.end_s) {
      const n = BLOCKS_LONGEST_FIRST.find((d) => {
        const len = d * DAY_S;
        return t % len === 0 && t + len <= seg.end_s && t >= b.valid_from_s && t + len <= b.rolled_until_s;
      });
      const len = n === undefined ? DAY_S : n * DAY_S;
      const last = out[out.length - 1];
      if (n === undefined && last !== undefined && last.level === DAY_S && last.end_s === t) last.end_s = t + len;
      else out.push({ level: n === undefined ? DAY_S : len, start_s: t, end_s: t + len });
      t += len;
    }
  }
  return out;
}

/** The coarsest level a window starting at start_s must read (its finest possible resolution). */
function floorResolution(start_s: number, st: LevelState): number {
  if (start_s < (st.daily_source_deleted_until_s ?? -Infinity)) return DAY_S;
  if (start_s < (st.hourly_source_deleted_until_s ?? -Infinity)) return HOUR_S;
  return LEVEL1_FLOOR_S;
}

/** A window widened so that it covers whole rows of the levels it reaches. */
function widenToLevels(start_s: number, end_s: number, st: LevelState): { start_s: number; end_s: number } {
  const d2 = st.daily_source_deleted_until_s ?? -Infinity;
  const d1 = st.hourly_source_deleted_until_s ?? -Infinity;
  const start = start_s < d2 ? floorTo(start_s, DAY_S) : start_s < d1 ? floorTo(start_s, HOUR_S) : start_s;
  const end = end_s <= d2 ? ceilTo(end_s, DAY_S) : end_s <= d1 ? ceilTo(end_s, HOUR_S) : end_s;
  return { start_s: start, end_s: end };
}

/** The levels read, as levels_s reports them: day blocks are daily rows (pre-merged). */
function levelsOf(segments: Segment[], level1_interval_s: number): number[] {
  const out = new Set<number>();
  for (const s of segments) out.add(s.level === 0 ? level1_interval_s : Math.min(s.level, DAY_S));
  return [...out].sort((a, b) => a - b);
}

/** Checks a filter; returns it in the store's form. */
export function checkFilter(f: Filter | undefined, at = 'filter'): StoreFilter {
  const out: StoreFilter = {};
  if (f === undefined) return out;
  if (f.protocol !== '') {
    if (f.protocol.length > 32) invalid(`${at}.protocol: longer than 32 characters`);
    out.protocol = f.protocol;
  }
  if (f.signature !== '') {
    if (f.signature.length > 200) invalid(`${at}.signature: longer than 200 characters`);
    out.signature = f.signature;
  }
  if (f.server !== '') {
    if (!isAddressOrNetwork(f.server)) invalid(`${at}.server: ${JSON.stringify(f.server.slice(0, 60))} is not an IP address or a CIDR network (10.1.0.0/16)`);
    out.server = f.server;
  }
  if (f.serverPort !== undefined) {
    if (f.serverPort > 65_535) invalid(`${at}.server_port: ${f.serverPort} is not a port`);
    out.server_port = f.serverPort;
  }
  if (f.transport !== '') {
    if (f.transport !== 'tcp' && f.transport !== 'udp') invalid(`${at}.transport: ${JSON.stringify(f.transport.slice(0, 20))} is not tcp or udp`);
    out.transport = f.transport;
  }
  return out;
}

function checkMetric(metric: string, statistic: Statistic): void {
  if (metric === '') invalid(`metric: required, one of ${KNOWN_METRICS.join(', ')}`);
  if (!KNOWN_METRICS.includes(metric)) invalid(`metric: ${JSON.stringify(metric.slice(0, 60))} is not a metric; known: ${KNOWN_METRICS.join(', ')}`);
  if (statistic === Statistic.UNSPECIFIED) invalid(`statistic: required, one of ${STATISTIC_NAMES}`);
  if (!(statistic in Statistic) || statistic < 0) invalid(`statistic: ${statistic} is not one of ${STATISTIC_NAMES}`);
  if (PERCENTILE[statistic] !== undefined && !metric.endsWith('_ns')) {
    invalid(`statistic: percentiles exist for timing metrics (ending in _ns) only, not ${metric}; use COUNT, AVG, MIN or MAX`);
  }
}

function checkWindow(w: Window | undefined, at: string, limits: QueryLimits): { start_s: number; end_s: number } {
  if (w === undefined) invalid(`${at}: required (start_s and end_s, seconds since the Unix epoch)`);
  const start = Number(w.startS), end = Number(w.endS);
  if (start < MIN_TIME_S || start > MAX_TIME_S) invalid(`${at}.start_s: ${w.startS} is outside 2000–2100 (seconds since the Unix epoch)`);
  if (end < MIN_TIME_S || end > MAX_TIME_S) invalid(`${at}.end_s: ${w.endS} is outside 2000–2100 (seconds since the Unix epoch)`);
  if (end <= start) invalid(`${at}: end_s ${w.endS} is not after start_s ${w.startS}`);
  if (end - start > limits.max_window_s) {
    invalid(`${at}: ${((end - start) / DAY_S).toFixed(1)} days is longer than the ${limits.max_window_s / DAY_S} days allowed`);
  }
  return { start_s: start, end_s: end };
}

function checkCount(value: number, field: string, dflt: number, max: number): number {
  if (value === 0) return dflt;
  if (value > max) invalid(`${field}: ${value} is more than ${max}`);
  return value;
}

function grouping(g: GroupBy): Grouping {
  switch (g) {
    case GroupBy.UNSPECIFIED:
    case GroupBy.SIGNATURE: return { by: 'signature' };
    case GroupBy.SERVER: return { by: 'server' };
    default: return invalid(`group_by: ${g} is not GROUP_BY_SIGNATURE or GROUP_BY_SERVER`);
  }
}

/** Page tokens: the last key of the page, base64url JSON; refused when not of the expected shape. */
function encodeToken(key: unknown[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

function decodeToken(token: string, types: ('string' | 'number')[]): unknown[] | null {
  if (token === '') return null;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    return invalid('page_token: not a next_page_token of this call');
  }
  if (!Array.isArray(v) || v.length !== types.length || v.some((x, i) => typeof x !== types[i])) invalid('page_token: not a next_page_token of this call');
  return v as unknown[];
}

function statisticValue(stat: Statistic, a: Accum): number | null {
  if (a.count === 0n) return null;
  switch (stat) {
    case Statistic.COUNT: return Number(a.count);
    case Statistic.AVG: return a.sum / Number(a.count);
    case Statistic.MIN: return a.min;
    case Statistic.MAX: return a.max;
    default: {
      const q = PERCENTILE[stat]!;
      if (a.sketch === null || a.sketch.count <= 0) return null;
      let v = a.sketch.toSketch(a.min, a.max).getValueAtQuantile(q);
      // the true quantile lies within the exact bounds: clamping only removes error
      if (v < a.min) v = a.min;
      if (v > a.max) v = a.max;
      return Math.round(v);
    }
  }
}

/**
 * An upper bound of the percentile `statisticValue` can answer for a group, from its exact
 * count, sum, min and max. The true value p at rank r = ⌊q·(n−1)⌋ is at most the max, and
 * at most (sum − r·min) / (n − r): the n − r values from rank r up are each ≥ p and the r below
 * are each ≥ min. The answer is within the sketch's relative error of p, clamped to the max,
 * and rounded.
 */
export function percentileBound(a: { count: bigint; sum: number; min: number; max: number }, q: number): number {
  const n = Number(a.count);
  const r = Math.floor(q * (n - 1));
  const bySum = (a.sum - r * a.min) / (n - r);
  return Math.min(a.max, bySum * (1 + RELATIVE_ACCURACY) * (1 + 1e-9)) + 1;
}

/**
 * An upper bound of the percentile at level q that `statisticValue` can answer for a group, from
 * its rows' stored percentiles (`stored[j]` at level `keys[j]`, each ≥ q; null where some row
 * lacks it); Infinity when they cannot give one.
 *
 * A row's stored value at level q' comes from its sketch's bucket k_r, the first whose running
 * count exceeds the rank q'·(n_r−1), so that bucket and the ones below hold at least
 * ⌊q'·(n_r−1)⌋ + 1 of the row's values. With K the largest k_r, the buckets up to K of the merged
 * sketch hold at least `rank_sum` values; when that exceeds the group's rank q·(N−1), the merged
 * answer's bucket is at most K. (Comparing ranks matters: three rows of {1, 100} each have p95 1,
 * their union has p95 100.) An upper key (migration 005) comes from rank min(n_r−1, ⌈q'·n_r⌉):
 * its buckets hold more than q'·n_r ≥ q·n_r of the row's values, so over all rows more than
 * q·N > q·(N−1), with no rank to compare. Bucket K's representative is below γ × the stored value
 * of the row that has it (clamping to the row's max keeps the value within bucket K or one below);
 * +2 covers the rounding of both values.
 */
export function storedPercentileBound(stored: readonly (StoredPercentiles | null)[] | null, keys: readonly PercentileKey[], q: number, count: bigint): number {
  if (stored === null) return Infinity;
  const rank = q * (Number(count) - 1);
  let best = Infinity;
  for (let j = 0; j < stored.length; j++) {
    const s = stored[j];
    if (s === null || s === undefined || keys[j]!.q < q) continue;
    if (keys[j]!.upper === true || s.rank_sum > rank) best = Math.min(best, s.max * SKETCH_GAMMA * (1 + 1e-9) + 2);
  }
  return best;
}

function relativeError(stat: Statistic): number {
  return PERCENTILE[stat] !== undefined ? RELATIVE_ACCURACY : 0;
}

/**
 * Whether two estimates differ by more than their error: exact statistics whenever they differ;
 * percentiles (each within α of the truth) when the ranges [v/(1+α), v/(1−α)] do not overlap.
 */
export function significantChange(before: number, after: number, relative_error: number): boolean {
  if (relative_error === 0) return before !== after;
  const lo = Math.min(before, after), hi = Math.max(before, after);
  return hi / (1 + relative_error) > lo / (1 - relative_error);
}

/** Segments grouped into statements: level 1 in one, level 2 and day blocks in another. */
function statements(segments: readonly Segment[]): Segment[][] {
  const l1 = segments.filter((s) => s.level === 0), l2 = segments.filter((s) => s.level !== 0);
  return [l2, l1].filter((x) => x.length > 0);
}

function addRow(groups: Map<bigint, Accum>, r: AggregateRow): void {
  const a = groups.get(r.key);
  if (a === undefined) {
    groups.set(r.key, {
      row: r, transactions: r.transactions, count: r.count ?? 0n, sum: r.sum ?? 0, min: r.min ?? Infinity, max: r.max ?? -Infinity, sketch: null,
      stored: r.stored_percentiles ?? null,
    });
    return;
  }
  const s = r.stored_percentiles ?? null;
  a.stored = a.stored === null || s === null ? null
    : a.stored.map((x, j) => {
      const y = s[j] ?? null;
      return x === null || y === null ? null : { max: Math.max(x.max, y.max), rank_sum: x.rank_sum + y.rank_sum };
    });
  a.transactions += r.transactions;
  a.count += r.count ?? 0n;
  a.sum += r.sum ?? 0;
  if (r.min !== null && r.min < a.min) a.min = r.min;
  if (r.max !== null && r.max > a.max) a.max = r.max;
}

function addSketch(a: Accum | undefined, bytes: Uint8Array): void {
  if (a === undefined) return; // a sketch of a row whose metric has no count: nothing to add to
  if (a.sketch === null) a.sketch = new SketchMerger();
  try {
    a.sketch.addBytes(bytes);
  } catch (err) {
    // the collector validates every sketch it stores: this one was written some other way
    throw new ServerError(Status.DATA_LOSS, `a stored sketch cannot be read (${(err as Error).message}); percentiles over these rows are unavailable, count/avg/min/max are not affected`);
  }
}

function groupKey(by: Grouping['by'], r: AggregateRow): MessageInitShape<typeof GroupKeySchema> {
  return by === 'server'
    ? { server: r.server, serverPort: r.server_port, transport: r.transport }
    : { protocol: r.protocol, signature: r.signature };
}

function keyName(r: AggregateRow): string {
  return `${r.protocol}\u0000${r.signature}\u0000${r.server}\u0000${String(r.server_port).padStart(5, '0')}\u0000${r.transport}`;
}

/**
 * The query service over a ReportStore. Methods take the request messages (or their init
 * shapes) and return the response messages; they throw ServerError (INVALID_ARGUMENT,
 * CANCELLED, DATA_LOSS) and let database errors through (server.ts maps them to a status).
 * Usable in-process, without gRPC, e.g. on the collector's own embedded database:
 *
 *   const service = new QueryService(new ReportStore(summaryStore.sql));
 *   const top = await service.getTop({ metric: 'ttfr_ns', statistic: Statistic.P95, window: { startS, endS } });
 *   process.stdout.write(formatTop(top, 'ttfr_ns', Statistic.P95));   // cli/report-format.ts
 */
export class QueryService {
  readonly limits: QueryLimits;

  constructor(readonly store: ReportStore, limits: Partial<QueryLimits> = {}) {
    this.limits = { ...DEFAULT_QUERY_LIMITS, ...limits };
  }

  async listSensors(request: MessageInitShape<typeof ListSensorsRequestSchema>): Promise<ListSensorsResponse> {
    const req = create(ListSensorsRequestSchema, request);
    const size = checkCount(req.pageSize, 'page_size', 100, this.limits.max_rows);
    if (req.sensorIdPrefix.length > 200) invalid('sensor_id_prefix: longer than 200 characters');
    const after = decodeToken(req.pageToken, ['string']);
    const rows = await this.store.read((q) => this.store.listSensors(q, req.sensorIdPrefix, (after?.[0] as string) ?? null, size + 1));
    const page = rows.slice(0, size);
    return create(ListSensorsResponseSchema, {
      sensors: page.map((r) => ({
        sensorId: r.sensor_id, firstSeenS: r.first_seen_s, lastSeenS: r.last_seen_s, hasStats: r.stats_at_s !== null,
        statsAtS: r.stats_at_s ?? 0n, packets: r.packets ?? 0n, bytes: r.bytes ?? 0n, kernelDrops: r.kernel_drops ?? 0n,
        interfaceDrops: r.interface_drops ?? 0n, flowsActive: r.flows_active ?? 0n, transactions: r.transactions ?? 0n,
        spoolBytes: r.spool_bytes ?? 0n, captureTimeS: r.capture_time_s ?? 0n,
      })),
      nextPageToken: rows.length > size ? encodeToken([page[page.length - 1]!.sensor_id]) : '',
    });
  }

  async listServers(request: MessageInitShape<typeof ListServersRequestSchema>): Promise<ListServersResponse> {
    const req = create(ListServersRequestSchema, request);
    const size = checkCount(req.pageSize, 'page_size', 100, this.limits.max_rows);
    const filter = checkFilter({ server: req.server, serverPort: req.serverPort, transport: req.transport, protocol: '', signature: '' } as Filter, 'request');
    const after = decodeToken(req.pageToken, ['string', 'number', 'string']);
    if (after !== null && !isAddressOrNetwork(after[0] as string)) invalid('page_token: not a next_page_token of this call');
    const rows = await this.store.read((q) => this.store.listServers(q, filter,
      after === null ? null : { server: after[0] as string, server_port: after[1] as number, transport: after[2] as string }, size + 1));
    const page = rows.slice(0, size);
    const last = page[page.length - 1];
    return create(ListServersResponseSchema, {
      servers: page.map((r) => ({ server: r.server, serverPort: r.server_port, transport: r.transport, firstSeenS: r.first_seen_s })),
      nextPageToken: rows.length > size && last ? encodeToken([last.server, last.server_port, last.transport]) : '',
    });
  }

  async listProtocols(request: MessageInitShape<typeof ListProtocolsRequestSchema>): Promise<ListProtocolsResponse> {
    const req = create(ListProtocolsRequestSchema, request);
    const size = checkCount(req.pageSize, 'page_size', 100, this.limits.max_rows);
    const after = decodeToken(req.pageToken, ['string']);
    const rows = await this.store.read((q) => this.store.listProtocols(q, (after?.[0] as string) ?? null, size + 1));
    const page = rows.slice(0, size);
    return create(ListProtocolsResponseSchema, {
      protocols: page.map((r) => ({ protocol: r.protocol, signatures: r.signatures })),
      nextPageToken: rows.length > size ? encodeToken([page[page.length - 1]!.protocol]) : '',
    });
  }

  async listSignatures(request: MessageInitShape<typeof ListSignaturesRequestSchema>): Promise<ListSignaturesResponse> {
    const req = create(ListSignaturesRequestSchema, request);
    const size = checkCount(req.pageSize, 'page_size', 100, this.limits.max_rows);
    if (req.protocol.length > 32) invalid('protocol: longer than 32 characters');
    if (req.nameContains.length > 200) invalid('name_contains: longer than 200 characters');
    const after = decodeToken(req.pageToken, ['string', 'string']);
    const rows = await this.store.read((q) => this.store.listSignatures(q, req.protocol, req.nameContains,
      after === null ? null : { protocol: after[0] as string, signature: after[1] as string }, size + 1));
    const page = rows.slice(0, size);
    const last = page[page.length - 1];
    return create(ListSignaturesResponseSchema, {
      signatures: page.map((r) => ({ protocol: r.protocol, signature: r.signature, firstSeenS: r.first_seen_s })),
      nextPageToken: rows.length > size && last ? encodeToken([last.protocol, last.signature]) : '',
    });
  }

  async getSeries(request: MessageInitShape<typeof GetSeriesRequestSchema>, signal?: AbortSignal): Promise<GetSeriesResponse> {
    const req = create(GetSeriesRequestSchema, request);
    const filter = checkFilter(req.filter);
    checkMetric(req.metric, req.statistic);
    const window = checkWindow(req.window, 'window', this.limits);
    const max_points = checkCount(req.maxPoints, 'max_points', this.limits.default_points, this.limits.max_points);
    const asked = req.resolutionS;
    if (asked !== 0 && (asked < 60 || asked % 60 !== 0)) invalid(`resolution_s: ${asked} is not a whole number of minutes (60, 300, 3600, …)`);
    const pct = PERCENTILE[req.statistic] !== undefined;

    return this.store.read(async (q) => {
      const st = await this.store.levelState(q);
      const floor = floorResolution(window.start_s, st);
      let step: number;
      if (asked !== 0) {
        if (asked < floor || asked % floor !== 0) {
          invalid(`resolution_s: ${asked} is finer than the data of this window (it reaches ${floor === DAY_S ? 'daily' : 'hourly'} ` +
            `rows before ${iso(floor === DAY_S ? st.daily_source_deleted_until_s! : st.hourly_source_deleted_until_s!)}); use ${floor} or a multiple of it`);
        }
        step = asked;
        const points = (ceilTo(window.end_s, step) - floorTo(window.start_s, step)) / step;
        if (points > max_points) invalid(`resolution_s: ${asked} gives ${points} points over this window, more than max_points ${max_points}; ask for a coarser resolution or a shorter window`);
      } else {
        step = this.autoResolution(window, floor, max_points);
      }
      for (;;) {
        const start = floorTo(window.start_s, step), end = ceilTo(window.end_s, step);
        const segments = planSegments(start, end, st, { hour: step % HOUR_S === 0, day: step % DAY_S === 0 });
        const groups = new Map<bigint, Accum>();
        let level1_interval_s = 0;
        for (const seg of segments) {
          this.checkAborted(signal);
          const rows = await this.store.aggregate(q, seg.level, seg.start_s, seg.end_s, req.metric, filter, { by: 'bucket', step_s: step });
          for (const r of rows) {
            addRow(groups, r);
            if (seg.level === 0 && r.max_interval_s > level1_interval_s) level1_interval_s = r.max_interval_s;
          }
        }
        // Level-1 rows longer than a bucket (or not dividing it) cannot be placed in buckets.
        if (level1_interval_s > 0 && step % level1_interval_s !== 0) {
          if (asked !== 0) invalid(`resolution_s: ${asked} is finer than the data of this window (${level1_interval_s}-second intervals); use a multiple of ${level1_interval_s}`);
          const next = RESOLUTIONS_S.find((r) => r > step && r % level1_interval_s === 0 && r % floor === 0);
          step = next ?? ceilTo(step, level1_interval_s);
          continue;
        }
        if ((end - start) / step > this.limits.max_points) {
          invalid(`max_points: this window needs ${(end - start) / step} points of ${step} s (the data's ${level1_interval_s}-second intervals), more than ${this.limits.max_points}; ask for a shorter window`);
        }
        if (pct) {
          for (const seg of segments) {
            this.checkAborted(signal);
            const rows = await this.store.sketches(q, seg.level, seg.start_s, seg.end_s, req.metric, filter, { by: 'bucket', step_s: step });
            for (const r of rows) addSketch(groups.get(r.key), r.sketch);
          }
        }
        const points: MessageInitShape<typeof PointSchema>[] = [];
        for (let t = start; t < end; t += step) {
          const a = groups.get(BigInt(t));
          const value = a === undefined ? null : statisticValue(req.statistic, a);
          points.push(value === null ? { startS: BigInt(t), count: a?.count ?? 0n } : { startS: BigInt(t), count: a!.count, value });
        }
        return create(GetSeriesResponseSchema, {
          window: { startS: BigInt(start), endS: BigInt(end) },
          resolutionS: step,
          points,
          levelsS: levelsOf(segments, level1_interval_s || DEFAULT_LEVEL1_INTERVAL_S),
          relativeError: relativeError(req.statistic),
        });
      }
    });
  }

  async getTop(request: MessageInitShape<typeof GetTopRequestSchema>, signal?: AbortSignal): Promise<GetTopResponse> {
    const req = create(GetTopRequestSchema, request);
    const filter = checkFilter(req.filter);
    checkMetric(req.metric, req.statistic);
    const by = grouping(req.groupBy);
    const asked = checkWindow(req.window, 'window', this.limits);
    const limit = checkCount(req.limit, 'limit', 10, this.limits.max_rows);
    const min_count = req.minCount === 0n ? 1n : req.minCount;

    return this.store.read(async (q) => {
      const st = await this.store.levelState(q);
      const window = widenToLevels(asked.start_s, asked.end_s, st);
      const segments = splitIntoBlocks(planSegments(window.start_s, window.end_s, st, { hour: true, day: true }), st);
      const level = PERCENTILE[req.statistic];
      // The statistic's own upper percentile (migration 005) bounds over any number of rows. Rows
      // rolled up before it lack one: for them, the statistic's own stored percentile, whose ranks
      // add up only for groups of one or two rows (see storedPercentileBound), or the next one up,
      // which covers many rows. Each key costs a jsonb read per row (~16 ms on 30 000 rows): the
      // own one only when it can serve, these only where such rows may be (hourly rows, days before
      // the blocks' valid_from: the roll-up wrote the days from there on after migration 005).
      const rows_per_group = segments.reduce((n, s) => n + (s.level === 0 ? Infinity : Math.ceil((s.end_s - s.start_s) / s.level)), 0);
      const above = level === undefined ? [] : STORED_PERCENTILES.filter((k) => k.q >= level);
      const upper = level === undefined || !st.blocks ? [] : UPPER_PERCENTILES.filter((k) => k.q === level);
      const older = !st.blocks || segments.some((s) => s.level === HOUR_S || (s.level === DAY_S && s.start_s < st.blocks!.valid_from_s));
      const keys = [...upper, ...(!older ? [] : rows_per_group <= 2 || above.length === 1 ? above.slice(0, 2) : above.slice(1, 2))];
      const ordered = (rows: { a: Accum; value: number }[]) =>
        rows.sort((x, y) => y.value - x.value || (keyName(x.a.row) < keyName(y.a.row) ? -1 : keyName(x.a.row) > keyName(y.a.row) ? 1 : 0));
      let best: { a: Accum; value: number }[];
      let groups: Map<bigint, Accum>, level1_interval_s = 0, total_groups: number;
      if (level !== undefined && level <= LEAN_MAX_LEVEL && keys.length === 1 && keys[0]!.upper === true && segments.every((s) => s.level !== 0)) {
        // Every row carries the upper percentile (the days after migration 005, blocks): first
        // only each group's count and bound (two jsonb reads per row instead of five or more),
        // then the whole aggregate of the groups whose sketches are read. This leaves out the
        // bound from count/sum/min/max (percentileBound), which p99 needs where rows hold few
        // values (rank ⌈0.99·n⌉ is then a row's max): p99 takes the whole aggregate.
        const bounds = await this.store.upperBounds(q, segments, req.metric, filter, by, keys[0]!);
        const candidates = bounds.filter((r) => r.count >= min_count).map((r) => ({
          key: r.key,
          bound: r.upper_max === null || r.upper_rows !== r.rows_with_values ? Infinity
            : storedPercentileBound([{ max: r.upper_max, rank_sum: 0 }], keys, level, r.count),
        }));
        groups = new Map();
        total_groups = candidates.length;
        best = await this.topByBound(candidates, limit, req.statistic, ordered, async (batch) => {
          const { groups: read } = await this.aggregateGroups(q, segments, req.metric, filter, by, signal, [], batch);
          for (const [k, a] of read) groups.set(k, a);
          await this.readSketches(q, segments, req.metric, filter, by, groups, batch, signal);
          return batch.map((k) => groups.get(k));
        });
      } else {
        ({ groups, level1_interval_s } = await this.aggregateGroups(q, segments, req.metric, filter, by, signal, keys));
        const eligible = [...groups.values()].filter((a) => a.count >= min_count);
        total_groups = eligible.length;
        if (level === undefined) {
          best = ordered(eligible.map((a) => ({ a, value: statisticValue(req.statistic, a)! }))).slice(0, limit);
        } else {
          const candidates = eligible.map((a) => ({ key: a.row.key, bound: Math.min(percentileBound(a, level), storedPercentileBound(a.stored, keys, level, a.count)) }));
          best = await this.topByBound(candidates, limit, req.statistic, ordered, async (batch) => {
            await this.readSketches(q, segments, req.metric, filter, by, groups, batch, signal);
            return batch.map((k) => groups.get(k));
          });
        }
      }
      return create(GetTopResponseSchema, {
        window: { startS: BigInt(window.start_s), endS: BigInt(window.end_s) },
        rows: best.map(({ a, value }): MessageInitShape<typeof TopRowSchema> => ({
          key: groupKey(by.by, a.row), value, count: a.count, transactions: a.transactions,
        })),
        totalGroups: BigInt(total_groups),
        levelsS: levelsOf(segments, level1_interval_s || DEFAULT_LEVEL1_INTERVAL_S),
        relativeError: relativeError(req.statistic),
      });
    });
  }

  async compare(request: MessageInitShape<typeof CompareRequestSchema>, signal?: AbortSignal): Promise<CompareResponse> {
    const req = create(CompareRequestSchema, request);
    const filter = checkFilter(req.filter);
    checkMetric(req.metric, req.statistic);
    const by = grouping(req.groupBy);
    const before_asked = checkWindow(req.before, 'before', this.limits);
    const after_asked = checkWindow(req.after, 'after', this.limits);
    const limit = checkCount(req.limit, 'limit', 50, this.limits.max_rows);
    const min_count = req.minCount === 0n ? 1n : req.minCount;
    const pct = PERCENTILE[req.statistic] !== undefined;
    const err = relativeError(req.statistic);

    // The two windows are read at the same time, each in its own read-only transaction (on
    // PostgreSQL: two connections, two backends).
    const side = (asked: { start_s: number; end_s: number }) => this.store.read(async (q) => {
      const st = await this.store.levelState(q);
      const window = widenToLevels(asked.start_s, asked.end_s, st);
      const segments = splitIntoBlocks(planSegments(window.start_s, window.end_s, st, { hour: true, day: true }), st);
      const { groups } = await this.aggregateGroups(q, segments, req.metric, filter, by, signal);
      for (const [k, a] of groups) if (a.count < min_count) groups.delete(k);
      if (pct && groups.size > 0) await this.readSketches(q, segments, req.metric, filter, by, groups, [...groups.keys()], signal);
      return { window, groups };
    });
    const [b, a] = await Promise.all([side(before_asked), side(after_asked)]);
    const both = [...b.groups.keys()].filter((k) => a.groups.has(k));
    const rows: { row: MessageInitShape<typeof CompareRowSchema>; name: string; ratio: number; significant: boolean }[] = [];
    for (const k of both) {
      const x = b.groups.get(k)!, y = a.groups.get(k)!;
      const before = statisticValue(req.statistic, x), after = statisticValue(req.statistic, y);
      if (before === null || after === null) continue;
      const change = after - before;
      const ratio = before !== 0 ? after / before - 1 : undefined;
      const significant = significantChange(before, after, err);
      rows.push({
        row: { key: groupKey(by.by, x.row), before, after, beforeCount: x.count, afterCount: y.count, change, ...(ratio === undefined ? {} : { changeRatio: ratio }), significant },
        name: keyName(x.row),
        ratio: ratio === undefined ? (change === 0 ? 0 : Infinity) : Math.abs(ratio),
        significant,
      });
    }
    rows.sort((p, r) => Number(r.significant) - Number(p.significant) || r.ratio - p.ratio || (p.name < r.name ? -1 : p.name > r.name ? 1 : 0));
    return create(CompareResponseSchema, {
      before: { startS: BigInt(b.window.start_s), endS: BigInt(b.window.end_s) },
      after: { startS: BigInt(a.window.start_s), endS: BigInt(a.window.end_s) },
      rows: rows.slice(0, limit).map((r) => r.row),
      totalGroups: BigInt(rows.length),
      onlyBefore: BigInt([...b.groups.keys()].filter((k) => !a.groups.has(k)).length),
      onlyAfter: BigInt([...a.groups.keys()].filter((k) => !b.groups.has(k)).length),
      relativeError: err,
    });
  }

  /**
   * The top `limit` groups by a percentile: reads groups (`read`: their sketches merged, in the
   * order of `keys`) in order of an upper bound of their answer, and stops once the N-th best
   * answer found beats every bound still unread.
   */
  private async topByBound(candidates: { key: bigint; bound: number }[], limit: number, statistic: Statistic,
    ordered: (rows: { a: Accum; value: number }[]) => { a: Accum; value: number }[],
    read: (keys: bigint[]) => Promise<(Accum | undefined)[]>): Promise<{ a: Accum; value: number }[]> {
    candidates.sort((x, y) => y.bound - x.bound);
    let best: { a: Accum; value: number }[] = [];
    let size = limit + SKETCH_BATCH_FIRST;
    for (let i = 0; i < candidates.length; i += size, size = Math.min(3 * size, SKETCH_BATCH_MAX)) {
      const nth = best.length >= limit ? best[limit - 1]!.value : -Infinity;
      if (candidates[i]!.bound < nth) break;
      // only the groups whose bound reaches the N-th answer found so far
      const batch = candidates.slice(i, i + size).filter((c) => c.bound >= nth);
      for (const a of await read(batch.map((c) => c.key))) {
        const value = a === undefined ? null : statisticValue(statistic, a);
        if (value !== null) best.push({ a: a!, value });
      }
      best = ordered(best).slice(0, limit);
    }
    return best;
  }

  /** The auto resolution: the finest bucket the levels allow that keeps the series within max_points. */
  private autoResolution(window: { start_s: number; end_s: number }, floor: number, max_points: number): number {
    for (const r of RESOLUTIONS_S) {
      if (r < floor || r % floor !== 0) continue;
      if ((ceilTo(window.end_s, r) - floorTo(window.start_s, r)) / r <= max_points) return r;
    }
    return invalid(`max_points: ${max_points} points cannot cover this window even at ${RESOLUTIONS_S[RESOLUTIONS_S.length - 1]} s; ask for more points or a shorter window`);
  }

  private async aggregateGroups(q: Queryable, segments: Segment[], metric: string, filter: StoreFilter, by: Grouping, signal?: AbortSignal,
    percentiles: readonly PercentileKey[] = [], keys?: readonly bigint[]): Promise<{ groups: Map<bigint, Accum>; level1_interval_s: number }> {
    const groups = new Map<bigint, Accum>();
    let level1_interval_s = 0;
    for (const spans of statements(segments)) {
      this.checkAborted(signal);
      for (const r of await this.store.aggregateSpans(q, spans, metric, filter, by, percentiles, keys)) {
        addRow(groups, r);
        if (spans[0]!.level === 0 && r.max_interval_s > level1_interval_s) level1_interval_s = r.max_interval_s;
      }
    }
    return { groups, level1_interval_s };
  }

  private async readSketches(q: Queryable, segments: Segment[], metric: string, filter: StoreFilter, by: Grouping,
    groups: Map<bigint, Accum>, keys: bigint[] | undefined, signal?: AbortSignal): Promise<void> {
    for (const spans of statements(segments)) {
      this.checkAborted(signal);
      for (const r of await this.store.sketchesSpans(q, spans, metric, filter, by, keys)) addSketch(groups.get(r.key), r.sketch);
    }
  }

  private checkAborted(signal?: AbortSignal): void {
    if (signal?.aborted) throw new ServerError(Status.CANCELLED, 'the call was cancelled or its deadline passed');
  }
}
