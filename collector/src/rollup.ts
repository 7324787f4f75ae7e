// Level-2 roll-ups (DESIGN.md, Interval summaries, Level 2; schema in migrations/003_rollups.sql):
// level-1 rows older than an age are merged into hourly rows, hourly rows older than another age
// into daily rows, source rows are optionally deleted after merging, and retention removes what is
// past its age. The successor of PasTmon's `pastmon_summarise_level_2.pl --age=32 --interval=3600
// --delete`.
//
// Units of work. Everything is done in short transactions ("units"), each of which
//   1. takes pg_try_advisory_xact_lock(0x77746d65, 3): when another collector's roll-up holds it,
//      this run stops (report.busy) — one roll-up at a time on one database;
//   2. reads rollup_state, does a bounded piece of work (whole buckets, about `rows_per_unit`
//      source rows, read `page_rows` at a time), and writes the level-2 rows, the new
//      rollup_state and the deletion of the merged source rows in that same transaction.
// A crash or an error anywhere rolls back the unit as a whole: the next run starts again from the
// committed rollup_state and neither loses nor counts twice. Level-2 rows are written by merging
// into what is already stored (read, merge, upsert), never by blind insert.
//
// Late level-1 rows (a sensor replaying its spool after an outage: interval_start < rolled_until
// of the hourly level). A statement trigger on summaries_l1 (migration 003) notes every inserted
// row older than rolled_until in rollup_late_l1, in the ingest transaction itself; it reads
// rolled_until FOR SHARE, and the unit that advances rolled_until holds that row FOR UPDATE from
// before it reads level 1 until it commits. So an ingest either commits before the unit reads
// (its rows are merged by the unit) or reads the advanced rolled_until after the unit commits (its
// rows are noted as late): no row falls between. Late rows are merged into the hourly rows by
// adding (and into the daily row too when its day is already rolled up), their queue entries
// deleted in the same transaction: once each.
//
// Day blocks (migration 005): every contribution to a daily row (the daily roll-up, late rows) is
// added in the same transaction to the blocks of 2, 4, … 64 days holding its day, and
// rollup_day_blocks.rolled_until moves with the daily rolled_until; daily retention deletes the
// blocks that hold a deleted day. So a complete block is always the merge of its daily rows.
//
// Deletion (delete_source) and retention keep rollup_state.source_deleted_until true for the
// reporter: level-1 rows exist only from (3600).source_deleted_until on (but for late rows still
// queued), hourly rows only from (86400).source_deleted_until on.
import type { DDSketch } from '@datadog/sketches-js';
import { decodeSketchBytes, encodeSketchBytes, newSketch, quantiles, type Quantiles } from '../../sensor/src/aggregate/sketch.ts';
import type { Queryable, Row, Sql } from './store/sql.ts';

export const HOUR_S = 3600;
export const DAY_S = 86_400;
const DAY_MS = DAY_S * 1000;

/** (0x77746d65 = 'wtme', 3): the roll-up lock; migrations use (…, 1), partitions (…, 2). */
const ROLLUP_LOCK = 'SELECT pg_try_advisory_xact_lock(2004118885, 3) AS ok';

/** How a roll-up run is configured. Ages are measured back from `now`. */
export interface RollupOptions {
  /** level-1 rows whose hour ended more than this long before `now` are merged into hourly rows */
  hourly_after_s: number;
  /** hourly rows whose day ended more than this long before `now` are merged into daily rows; ≥ hourly_after_s */
  daily_after_s: number;
  /** delete source rows once merged (level 1 after the hourly roll-up, hourly rows after the daily one) */
  delete_source: boolean;
  /** drop level-1 day partitions that ended more than this long ago (only when rolled up); null keeps them */
  retention_l1_s: number | null;
  /** delete hourly rows of days that ended more than this long ago (only when rolled into days); null keeps them */
  retention_hourly_s: number | null;
  /** delete daily rows of days that ended more than this long ago; null keeps them */
  retention_daily_s: number | null;
  /** the time ages are measured from (the control plane passes the wall clock) */
  now: Date;
  /** source rows per unit of work (one transaction), rounded to whole buckets; default 10 000 */
  rows_per_unit?: number;
  /** source rows read per query; default 1000 */
  page_rows?: number;
  /** checked between units: an aborted run stops after the unit in progress (report.stopped) */
  signal?: AbortSignal;
}

/** What one level did in a run. */
export interface LevelReport {
  /** source rows merged into this level (level-1 rows for hourly, hourly rows for daily) */
  source_rows_merged: number;
  /** rows of this level inserted or updated */
  rows_written: number;
  /** source rows deleted after merging */
  source_rows_deleted: number;
  /** rollup_state after the run (ISO 8601; null = nothing rolled yet / nothing deleted) */
  rolled_until: string | null;
  source_deleted_until: string | null;
}

/** The outcome of `runRollup`, printed as one JSON line by `wiretime rollup`. */
export interface RollupReport {
  /** another roll-up held the lock: this run stopped at that point (it did what it reported) */
  busy: boolean;
  /** the abort signal stopped the run between units */
  stopped: boolean;
  /** units of work committed */
  transactions: number;
  /** late level-1 rows merged into rows already rolled up */
  late_rows_merged: number;
  hourly: LevelReport;
  daily: LevelReport;
  retention: {
    /** level-1 day partitions dropped, as YYYYMMDD */
    l1_days_dropped: string[];
    /** level-1 rows deleted from the DEFAULT partition */
    l1_default_rows_deleted: number;
    /** day partitions kept although past their age because late rows of them are still queued */
    l1_days_deferred: number;
    hourly_rows_deleted: number;
    daily_rows_deleted: number;
  };
  /** stored sketches that could not be decoded: the merged metric then has no sketch */
  sketches_undecodable: number;
  elapsed_ms: number;
}

class Busy extends Error {}
class Deferred extends Error {}

// ------------------------------------------------------------------ options

function checkOptions(o: RollupOptions): Required<Omit<RollupOptions, 'signal'>> & { signal?: AbortSignal } {
  const age = (name: string, v: unknown, nullable: boolean): void => {
    if (v === null && nullable) return;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new RangeError(`rollup: ${name} must be a number of seconds ≥ 0${nullable ? ' or null (keep)' : ''}, got ${String(v)}`);
    }
  };
  age('hourly_after_s', o.hourly_after_s, false);
  age('daily_after_s', o.daily_after_s, false);
  age('retention_l1_s', o.retention_l1_s, true);
  age('retention_hourly_s', o.retention_hourly_s, true);
  age('retention_daily_s', o.retention_daily_s, true);
  if (typeof o.delete_source !== 'boolean') throw new TypeError(`rollup: delete_source must be a boolean, got ${String(o.delete_source)}`);
  if (!(o.now instanceof Date) || !Number.isFinite(o.now.getTime())) throw new RangeError('rollup: now must be a valid Date');
  if (o.daily_after_s < o.hourly_after_s) {
    throw new RangeError(`rollup: daily_after_s (${o.daily_after_s}) is less than hourly_after_s (${o.hourly_after_s}): days would be rolled up from hours not rolled up yet`);
  }
  if (o.retention_l1_s !== null && o.retention_l1_s < o.hourly_after_s) {
    throw new RangeError(`rollup: retention_l1_s (${o.retention_l1_s}) is less than hourly_after_s (${o.hourly_after_s}): level-1 rows would expire before they are rolled up`);
  }
  if (o.retention_hourly_s !== null && o.retention_hourly_s < o.daily_after_s) {
    throw new RangeError(`rollup: retention_hourly_s (${o.retention_hourly_s}) is less than daily_after_s (${o.daily_after_s}): hourly rows would expire before they are rolled into days`);
  }
  if (o.retention_daily_s !== null && o.retention_daily_s < o.daily_after_s) {
    throw new RangeError(`rollup: retention_daily_s (${o.retention_daily_s}) is less than daily_after_s (${o.daily_after_s}): daily rows would expire as soon as they are written`);
  }
  const count = (name: string, v: number | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`rollup: ${name} must be an integer ≥ 1, got ${String(v)}`);
    return v;
  };
  return {
    ...o,
    rows_per_unit: count('rows_per_unit', o.rows_per_unit, 10_000),
    page_rows: count('page_rows', o.page_rows, 1000),
  };
}

type Options = ReturnType<typeof checkOptions>;

/** Throws the error `runRollup` would throw for these options (RangeError/TypeError naming the option), or returns. */
export function validateRollupOptions(o: RollupOptions): void {
  checkOptions(o);
}

// ------------------------------------------------------------------ time

/** ms floored to a multiple of bucket_s (UTC); -Infinity stays. */
function floorTo(ms: number, bucket_s: number): number {
  const b = bucket_s * 1000;
  return Math.floor(ms / b) * b;
}

/** A timestamptz parameter: ISO 8601, or '-infinity'. */
function ts(ms: number): string {
  return ms === -Infinity ? '-infinity' : new Date(ms).toISOString();
}

function iso(ms: number | null): string | null {
  return ms === null || ms === -Infinity ? null : new Date(ms).toISOString();
}

// ------------------------------------------------------------------ state

interface LevelState {
  /** ms; -Infinity before anything was rolled up */
  rolled_until: number;
  /** ms; -Infinity when nothing was deleted (NULL in the table) */
  deleted_until: number;
}

/** Both levels' progress; `lock_hourly` holds the hourly row FOR UPDATE (see the file comment). */
async function readState(tx: Queryable, lock_hourly: boolean): Promise<{ hourly: LevelState; daily: LevelState }> {
  if (lock_hourly) await tx.query('SELECT 1 FROM rollup_state WHERE interval_s = 3600 FOR UPDATE');
  const rows = await tx.query<{ interval_s: number; rolled_until: Date | null; source_deleted_until: Date | null }>(
    `SELECT interval_s, NULLIF(rolled_until, '-infinity') AS rolled_until, NULLIF(source_deleted_until, '-infinity') AS source_deleted_until
     FROM rollup_state WHERE interval_s IN (3600, 86400)`,
  );
  const get = (s: number): LevelState => {
    const r = rows.find((x) => x.interval_s === s);
    if (!r) throw new Error(`rollup: rollup_state has no row for interval_s ${s} (is migration 003 applied?)`);
    return { rolled_until: r.rolled_until?.getTime() ?? -Infinity, deleted_until: r.source_deleted_until?.getTime() ?? -Infinity };
  };
  return { hourly: get(HOUR_S), daily: get(DAY_S) };
}

async function writeState(tx: Queryable, interval_s: number, st: LevelState): Promise<void> {
  await tx.query(
    'UPDATE rollup_state SET rolled_until = $2::timestamptz, source_deleted_until = $3::timestamptz, updated_at = now() WHERE interval_s = $1',
    [interval_s, ts(st.rolled_until), st.deleted_until === -Infinity ? null : ts(st.deleted_until)],
  );
}

// ------------------------------------------------------------------ merging

interface MetricJson {
  count?: number;
  sum?: number | null;
  min?: number | null;
  max?: number | null;
  negative_clamped?: number;
}

/** One metric of a row being built. */
interface MetricAcc {
  count: number;
  sum: number;
  min: number;
  max: number;
  negative_clamped: number;
  sketch: DDSketch | null;
  /**
   * Some contribution with values had no (decodable) sketch: the merged sketch would hold fewer
   * values than `count` and answer wrong percentiles, so the merged row carries none.
   */
  sketch_lost: boolean;
}

/** A level-2 row being built: one key and bucket. */
interface Acc {
  server_id: bigint;
  signature_id: bigint;
  /** bucket start, ms */
  start_ms: number;
  count: bigint;
  partial: boolean;
  outcomes: Map<string, number>;
  metrics: Map<string, MetricAcc>;
  source_rows: bigint;
}

/** A stored row of either level, as read. */
interface FactRow extends Row {
  server_id: bigint;
  signature_id: bigint;
  interval_start: Date;
  sensor_id?: string;
  interval_s: number;
  count: bigint;
  partial: boolean;
  outcomes: Record<string, number>;
  metrics: Record<string, MetricJson>;
  source_rows?: bigint;
}

interface SketchRow extends Row {
  server_id: bigint;
  signature_id: bigint;
  interval_start: Date;
  sensor_id?: string;
  interval_s: number;
  metric: string;
  sketch: Uint8Array;
}

function newAcc(server_id: bigint, signature_id: bigint, start_ms: number): Acc {
  return { server_id, signature_id, start_ms, count: 0n, partial: false, outcomes: new Map(), metrics: new Map(), source_rows: 0n };
}

function metricAcc(acc: Acc, name: string): MetricAcc {
  let m = acc.metrics.get(name);
  if (!m) {
    m = { count: 0, sum: 0, min: Infinity, max: -Infinity, negative_clamped: 0, sketch: null, sketch_lost: false };
    acc.metrics.set(name, m);
  }
  return m;
}

/** Adds one contribution's sketch to a metric (see MetricAcc.sketch_lost). `s` is taken over. */
function addSketch(m: MetricAcc, values: number, s: DDSketch | null, lost: boolean): void {
  if (m.sketch_lost) return;
  if (lost || (s === null && values > 0)) {
    m.sketch_lost = true;
    m.sketch = null;
    return;
  }
  if (s === null) return;
  if (m.sketch === null) m.sketch = s;
  else m.sketch.merge(s);
}

interface Counters {
  sketches_undecodable: number;
}

/** Adds a stored row (and its sketches by metric) to an accumulator. */
function addRow(acc: Acc, row: FactRow, sketches: Map<string, Uint8Array> | undefined, source_rows: bigint, counters: Counters): void {
  acc.count += row.count;
  acc.partial ||= row.partial;
  acc.source_rows += source_rows;
  for (const [k, n] of Object.entries(row.outcomes ?? {})) acc.outcomes.set(k, (acc.outcomes.get(k) ?? 0) + Number(n));
  for (const [name, j] of Object.entries(row.metrics ?? {})) {
    const m = metricAcc(acc, name);
    const count = Number(j.count ?? 0);
    m.count += count;
    m.sum += j.sum ?? NaN; // null: the sensor's sum was not finite
    if (j.min !== null && j.min !== undefined && j.min < m.min) m.min = j.min;
    if (j.max !== null && j.max !== undefined && j.max > m.max) m.max = j.max;
    m.negative_clamped += Number(j.negative_clamped ?? 0);
    const bytes = sketches?.get(name);
    let s: DDSketch | null = null, lost = false;
    if (bytes !== undefined) {
      try {
        s = decodeSketchBytes(bytes);
      } catch {
        counters.sketches_undecodable++;
        lost = true;
      }
    }
    addSketch(m, count, s, lost);
  }
}

/** Adds one accumulator into another (hour into day); `from` is left as it was. */
function addAcc(into: Acc, from: Acc): void {
  into.count += from.count;
  into.partial ||= from.partial;
  for (const [k, n] of from.outcomes) into.outcomes.set(k, (into.outcomes.get(k) ?? 0) + n);
  for (const [name, f] of from.metrics) {
    const m = metricAcc(into, name);
    m.count += f.count;
    m.sum += f.sum;
    if (f.min < m.min) m.min = f.min;
    if (f.max > m.max) m.max = f.max;
    m.negative_clamped += f.negative_clamped;
    let copy: DDSketch | null = null;
    if (f.sketch !== null) {
      copy = newSketch();
      copy.merge(f.sketch);
    }
    addSketch(m, f.count, copy, f.sketch_lost);
  }
}

/** A JSON number as summaries_l1 stores it: non-finite values as null. */
function jsonNumber(x: number): string {
  return Number.isFinite(x) ? JSON.stringify(x) : 'null';
}

/**
 * p50/p90/p95/p99 of a metric's merged sketch, clamped to the row's exact min/max (as
 * sensor/src/aggregate/merge.ts does), as JSON members; '' when the row has no whole sketch.
 * The reporter bounds a top-N by a percentile with them (docs/sql.md): it counts the sketch's
 * values as the metric's count, so a sketch holding another number of values gets none.
 */
function percentilesJson(m: MetricAcc): string {
  if (!wholeSketch(m)) return '';
  const q = quantiles(m.sketch!, { min: m.min, max: m.max });
  return `,"p50":${q.p50},"p90":${q.p90},"p95":${q.p95},"p99":${q.p99}`;
}

function wholeSketch(m: MetricAcc): boolean {
  return !(m.sketch === null || m.sketch_lost || m.count <= 0 || m.sketch.count !== m.count || !Number.isFinite(m.min) || !Number.isFinite(m.max));
}

/**
 * The "upper" percentiles of a sketch (migration 005, column upper_percentiles of level-2 rows
 * and day blocks): for q in 0.5, 0.9, 0.95, 0.99 the value at rank k = min(n−1, ⌈q·n⌉) (0-based)
 * instead of ⌊q·(n−1)⌋, clamped to [min, max] and rounded. Its bucket and those below hold at
 * least k + 1 > q·n of the row's values, so over any set of rows the buckets up to the highest
 * of their upper values hold more than q·Σn ≥ q·(N−1) values: the merged sketch's q-percentile
 * lies at or below that bucket however many rows are merged, which lets the reporter bound a
 * top-N by a percentile tightly (reporter/src/query-service.ts, storedPercentileBound). The
 * percentiles' own ranks add up only for one or two rows. An upper value is about one rank above
 * the percentile. The bench (bench/reporter-queries.ts) stores the same.
 */
export function upperPercentiles(s: DDSketch, min: number, max: number): Quantiles {
  const n = s.count;
  if (!(n > 0)) throw new Error('upperPercentiles: the sketch is empty');
  const upper = (f: number): number => {
    const k = Math.min(n - 1, Math.ceil(f * n));
    // getValueAtQuantile(x) takes the first bucket whose running count exceeds x·(n−1): ask for
    // rank k + ½, so that float rounding of k/(n−1)·(n−1) cannot land on rank k − 1
    let v = s.getValueAtQuantile(k >= n - 1 ? 1 : (k + 0.5) / (n - 1));
    if (v < min) v = min;
    if (v > max) v = max;
    return Math.round(v);
  };
  return { p50: upper(0.5), p90: upper(0.9), p95: upper(0.95), p99: upper(0.99) };
}

/** The upper_percentiles jsonb of a row: upperPercentiles per metric with a whole sketch. */
function upperJson(acc: Acc): string {
  const parts: string[] = [];
  for (const [name, m] of acc.metrics) {
    if (!wholeSketch(m)) continue;
    const u = upperPercentiles(m.sketch!, m.min, m.max);
    parts.push(`${JSON.stringify(name)}:{"p50":${u.p50},"p90":${u.p90},"p95":${u.p95},"p99":${u.p99}}`);
  }
  return `{${parts.join(',')}}`;
}

function metricsJson(acc: Acc): string {
  const parts: string[] = [];
  for (const [name, m] of acc.metrics) {
    parts.push(`${JSON.stringify(name)}:{"count":${m.count},"sum":${jsonNumber(m.sum)},"min":${jsonNumber(m.min)},` +
      `"max":${jsonNumber(m.max)},"negative_clamped":${m.negative_clamped}${percentilesJson(m)}}`);
  }
  return `{${parts.join(',')}}`;
}

function outcomesJson(acc: Acc): string {
  return JSON.stringify(Object.fromEntries(acc.outcomes));
}

function accKey(server_id: bigint, signature_id: bigint, start_ms: number): string {
  return `${server_id}|${signature_id}|${start_ms}`;
}

/** "($1::t1,…),(…)" for rows × casts.length parameters starting at $first. */
function valuesList(rows: number, casts: readonly string[], first = 1): string {
  const out: string[] = [];
  let n = first;
  for (let r = 0; r < rows; r++) out.push(`(${casts.map((c) => `$${n++}::${c}`).join(',')})`);
  return out.join(',');
}

/** Rows per statement for a given number of columns, below PostgreSQL's 65 535 parameters. */
function perStatement(columns: number, max = 1000): number {
  return Math.max(1, Math.min(max, Math.floor(60_000 / columns)));
}

function chunks<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

const L2_KEY_CASTS = ['int8', 'int8', 'timestamptz'] as const;

/** The tables a level-2 row and its sketches go to: the level-2 tables, or the day blocks' (migration 005). */
interface L2Tables {
  facts: string;
  sketches: string;
  /** the facts table has upper_percentiles (migration 005); default true */
  upper?: boolean;
}
const L2: L2Tables = { facts: 'summaries_l2', sketches: 'summary_sketches_l2' };
/** The level-2 tables before migration 005 (no upper_percentiles) */
const L2_V4: L2Tables = { ...L2, upper: false };
const BLOCKS: L2Tables = { facts: 'summaries_blocks', sketches: 'summary_sketches_blocks' };

/**
 * Merges accumulators into the stored rows of level `interval_s` (adding to what is there) and
 * writes them. Returns the keys (accKey) that already had a row.
 */
async function upsertL2(tx: Queryable, interval_s: number, accs: readonly Acc[], counters: Counters, report: LevelReport,
  tables: L2Tables = L2): Promise<Set<string>> {
  const { facts, sketches } = tables;
  const existed = new Set<string>();
  if (accs.length === 0) return existed;
  const byKey = new Map(accs.map((a) => [accKey(a.server_id, a.signature_id, a.start_ms), a]));
  for (const chunk of chunks(accs, perStatement(3, 500))) {
    const params: unknown[] = [interval_s];
    for (const a of chunk) params.push(a.server_id, a.signature_id, ts(a.start_ms));
    const list = valuesList(chunk.length, L2_KEY_CASTS, 2);
    const rows = await tx.query<FactRow>(
      `SELECT server_id, signature_id, interval_start, interval_s, count, partial, outcomes, metrics, source_rows
       FROM ${facts} WHERE interval_s = $1 AND (server_id, signature_id, interval_start) IN (VALUES ${list})`,
      params,
    );
    if (rows.length === 0) continue;
    const sks = await tx.query<SketchRow>(
      `SELECT server_id, signature_id, interval_start, metric, sketch
       FROM ${sketches} WHERE interval_s = $1 AND (server_id, signature_id, interval_start) IN (VALUES ${list})`,
      params,
    );
    const sketchesOf = new Map<string, Map<string, Uint8Array>>();
    for (const k of sks) {
      const key = accKey(k.server_id, k.signature_id, k.interval_start.getTime());
      let m = sketchesOf.get(key);
      if (!m) sketchesOf.set(key, (m = new Map()));
      m.set(k.metric, k.sketch);
    }
    for (const r of rows) {
      const key = accKey(r.server_id, r.signature_id, r.interval_start.getTime());
      addRow(byKey.get(key)!, r, sketchesOf.get(key), r.source_rows ?? 0n, counters);
      existed.add(key);
    }
  }

  // upper_percentiles: migration 005 (a run on an older schema writes the others only)
  const upper = tables.upper ?? true;
  const columns = upper ? 10 : 9;
  for (const chunk of chunks(accs, perStatement(columns))) {
    const params: unknown[] = [];
    for (const a of chunk) {
      params.push(a.server_id, a.signature_id, interval_s, ts(a.start_ms), a.count, a.partial, outcomesJson(a), metricsJson(a), a.source_rows);
      if (upper) params.push(upperJson(a));
    }
    await tx.query(
      `INSERT INTO ${facts} (server_id, signature_id, interval_s, interval_start, count, partial, outcomes, metrics, source_rows${upper ? ', upper_percentiles' : ''})
       VALUES ${valuesList(chunk.length, ['int8', 'int8', 'int4', 'timestamptz', 'int8', 'bool', 'jsonb', 'jsonb', 'int8', ...(upper ? ['jsonb'] : [])])}
       ON CONFLICT (server_id, signature_id, interval_s, interval_start) DO UPDATE SET
         count = EXCLUDED.count, partial = EXCLUDED.partial, outcomes = EXCLUDED.outcomes,
         metrics = EXCLUDED.metrics, source_rows = EXCLUDED.source_rows${upper ? ', upper_percentiles = EXCLUDED.upper_percentiles' : ''}`,
      params,
    );
  }
  report.rows_written += accs.length;

  // A row that existed may have had a sketch for a metric whose merged sketch is now lost.
  const old = accs.filter((a) => existed.has(accKey(a.server_id, a.signature_id, a.start_ms)));
  for (const chunk of chunks(old, perStatement(3, 500))) {
    const params: unknown[] = [interval_s];
    for (const a of chunk) params.push(a.server_id, a.signature_id, ts(a.start_ms));
    await tx.query(
      `DELETE FROM ${sketches} WHERE interval_s = $1 AND (server_id, signature_id, interval_start) IN (VALUES ${valuesList(chunk.length, L2_KEY_CASTS, 2)})`,
      params,
    );
  }
  const sketchRows: unknown[][] = [];
  for (const a of accs) {
    for (const [name, m] of a.metrics) {
      if (m.sketch !== null && !m.sketch_lost) sketchRows.push([a.server_id, a.signature_id, interval_s, ts(a.start_ms), name, encodeSketchBytes(m.sketch)]);
    }
  }
  for (const chunk of chunks(sketchRows, perStatement(6))) {
    await tx.query(
      `INSERT INTO ${sketches} (server_id, signature_id, interval_s, interval_start, metric, sketch)
       VALUES ${valuesList(chunk.length, ['int8', 'int8', 'int4', 'timestamptz', 'text', 'bytea'])}
       ON CONFLICT (server_id, signature_id, interval_s, interval_start, metric) DO UPDATE SET sketch = EXCLUDED.sketch`,
      chunk.flat(),
    );
  }
  return existed;
}

// ------------------------------------------------------------------ day blocks

/**
 * Lengths of the day blocks (migration 005), in days: each block starts on a day number (days
 * since 1970-01-01) divisible by its length, so that any whole-day window splits into a few
 * blocks and single days (reporter/src/query-service.ts, `splitIntoBlocks`).
 */
export const BLOCK_DAYS: readonly number[] = [2, 4, 8, 16, 32, 64];

/** rollup_day_blocks, ms (-Infinity for '-infinity'). */
interface BlocksState {
  /** blocks starting before this are missing or lack days */
  valid_from: number;
  /** every daily row before this has been added to its blocks */
  rolled_until: number;
}

async function readBlocks(tx: Queryable): Promise<BlocksState> {
  const rows = await tx.query<{ valid_from: Date | null; rolled_until: Date | null }>(
    `SELECT NULLIF(valid_from, '-infinity') AS valid_from, NULLIF(rolled_until, '-infinity') AS rolled_until FROM rollup_day_blocks`,
  );
  if (rows.length !== 1) throw new Error(`rollup: rollup_day_blocks has ${rows.length} rows, expected 1 (migration 005)`);
  return { valid_from: rows[0]!.valid_from?.getTime() ?? -Infinity, rolled_until: rows[0]!.rolled_until?.getTime() ?? -Infinity };
}

async function writeBlocks(tx: Queryable, st: BlocksState): Promise<void> {
  await tx.query('UPDATE rollup_day_blocks SET valid_from = $1::timestamptz, rolled_until = $2::timestamptz, updated_at = now()',
    [ts(st.valid_from), ts(st.rolled_until)]);
}

/** Block rows being built from days, per block length: each with the accKeys of the days it holds. */
type BlockAccs = { interval_s: number; accs: Map<string, { acc: Acc; days: string[] }> }[];

/**
 * The blocks that daily contributions go into (the blocks starting at or after `valid_from`). Call
 * it before upsertL2 merges the stored daily rows into `days`: the blocks take the contributions
 * only (the stored rows are in the blocks already). `days` are left as they were.
 */
function blockAccs(days: readonly Acc[], valid_from: number): BlockAccs {
  const out: BlockAccs = [];
  for (const n of BLOCK_DAYS) {
    const interval_s = n * DAY_S;
    const accs = new Map<string, { acc: Acc; days: string[] }>();
    for (const d of days) {
      const start = floorTo(d.start_ms, interval_s);
      if (start < valid_from) continue;
      const key = accKey(d.server_id, d.signature_id, start);
      let b = accs.get(key);
      if (!b) accs.set(key, (b = { acc: newAcc(d.server_id, d.signature_id, start), days: [] }));
      addAcc(b.acc, d);
      b.days.push(accKey(d.server_id, d.signature_id, d.start_ms));
    }
    if (accs.size > 0) out.push({ interval_s, accs });
  }
  return out;
}

/**
 * Merges block accumulators into the stored blocks. `days_existed`: the days (accKey) whose daily
 * row existed before (upsertL2's answer): a block counts as source rows the daily rows it gained.
 */
async function upsertBlocks(tx: Queryable, blocks: BlockAccs, days_existed: ReadonlySet<string>, counters: Counters): Promise<void> {
  const scratch: LevelReport = { source_rows_merged: 0, rows_written: 0, source_rows_deleted: 0, rolled_until: null, source_deleted_until: null };
  for (const { interval_s, accs } of blocks) {
    for (const b of accs.values()) b.acc.source_rows = BigInt(b.days.filter((k) => !days_existed.has(k)).length);
    await upsertL2(tx, interval_s, [...accs.values()].map((b) => b.acc), counters, scratch, BLOCKS);
  }
}

// ------------------------------------------------------------------ sources

/** Where a level's rows come from. */
interface Source {
  /** the level fed (3600 or 86400) */
  target_s: number;
  table: string;
  sketch_table: string;
  /** pagination key, in primary-key order, with the casts of its parameters */
  key: readonly string[];
  key_casts: readonly string[];
  /** extra condition ('' or 'AND interval_s = 3600') */
  filter: string;
}

const L1: Source = {
  target_s: HOUR_S,
  table: 'summaries_l1',
  sketch_table: 'summary_sketches',
  key: ['server_id', 'signature_id', 'interval_start', 'sensor_id', 'interval_s'],
  key_casts: ['int8', 'int8', 'timestamptz', 'text', 'int4'],
  filter: '',
};

const HOURLY: Source = {
  target_s: DAY_S,
  table: 'summaries_l2',
  sketch_table: 'summary_sketches_l2',
  key: ['server_id', 'signature_id', 'interval_start'],
  key_casts: ['int8', 'int8', 'timestamptz'],
  filter: 'AND interval_s = 3600',
};

function keyValues(src: Source, r: FactRow): unknown[] {
  return src.key.map((c) => (c === 'interval_start' ? r.interval_start.toISOString() : r[c]));
}

function rowKey(r: { server_id: bigint; signature_id: bigint; interval_start: Date; sensor_id?: string; interval_s: number }): string {
  return `${r.server_id}|${r.signature_id}|${r.interval_start.getTime()}|${r.sensor_id ?? ''}|${r.interval_s}`;
}

function groupSketches(rows: readonly SketchRow[]): Map<string, Map<string, Uint8Array>> {
  const out = new Map<string, Map<string, Uint8Array>>();
  for (const k of rows) {
    const key = rowKey(k);
    let m = out.get(key);
    if (!m) out.set(key, (m = new Map()));
    m.set(k.metric, k.sketch);
  }
  return out;
}

/** interval_start (ms) of the source row at position `offset` in time order within [from, to), or null. */
async function sourceTimeAt(tx: Queryable, src: Source, from_ms: number, to_ms: number, offset: number): Promise<number | null> {
  const rows = await tx.query<{ interval_start: Date }>(
    `SELECT interval_start FROM ${src.table} WHERE interval_start >= $1::timestamptz AND interval_start < $2::timestamptz ${src.filter}
     ORDER BY interval_start LIMIT 1 OFFSET $3`,
    [ts(from_ms), ts(to_ms), offset],
  );
  return rows[0]?.interval_start.getTime() ?? null;
}

/**
 * Plans one unit over [from, to): the first bucket holding rows, and the end of the unit after
 * about `rows_per_unit` rows in whole buckets (at least one). null when the range is empty.
 */
async function planUnit(tx: Queryable, src: Source, from_ms: number, to_ms: number, bucket_s: number, rows_per_unit: number): Promise<{ a: number; b: number } | null> {
  const first = await sourceTimeAt(tx, src, from_ms, to_ms, 0);
  if (first === null) return null;
  const a = floorTo(first, bucket_s);
  const at = await sourceTimeAt(tx, src, a, to_ms, rows_per_unit);
  const b = at === null ? to_ms : Math.min(to_ms, Math.max(floorTo(at, bucket_s), a + bucket_s * 1000));
  return { a, b };
}

/**
 * Merges every source row in [a, b) into the target level, streaming in key order `page_rows`
 * at a time so that memory holds one page and the buckets being built. Returns the rows read.
 */
async function mergeRange(tx: Queryable, src: Source, a: number, b: number, o: Options, counters: Counters, report: LevelReport,
  tables: L2Tables, blocks_from: number | null): Promise<number> {
  const cols = `${src.key.join(', ')}${src === L1 ? '' : ', interval_s'}`;
  const keyTuple = `(${src.key.join(', ')})`;
  let after: unknown[] | null = null;
  let merged = 0;
  let cur: Acc | null = null;
  let done: Acc[] = [];
  const flush = async (): Promise<void> => {
    // days (from hourly rows) also go into their day blocks, from the contributions alone
    const blocks = blocks_from === null ? null : blockAccs(done, blocks_from);
    const existed = await upsertL2(tx, src.target_s, done, counters, report, tables);
    if (blocks !== null) await upsertBlocks(tx, blocks, existed, counters);
    done = [];
  };
  for (;;) {
    const params: unknown[] = [ts(a), ts(b), o.page_rows];
    let cond = '';
    if (after !== null) {
      cond = `AND ${keyTuple} > (${src.key_casts.map((c, i) => `$${4 + i}::${c}`).join(', ')})`;
      params.push(...after);
    }
    const rows = await tx.query<FactRow>(
      `SELECT ${cols}, count, partial, outcomes, metrics${src === L1 ? '' : ', source_rows'}
       FROM ${src.table} WHERE interval_start >= $1::timestamptz AND interval_start < $2::timestamptz ${src.filter} ${cond}
       ORDER BY ${src.key.join(', ')} LIMIT $3`,
      params,
    );
    if (rows.length === 0) break;
    const last = keyValues(src, rows[rows.length - 1]!);
    const sparams: unknown[] = [ts(a), ts(b), ...last];
    const n = src.key.length;
    let scond = `AND ${keyTuple} <= (${src.key_casts.map((c, i) => `$${3 + i}::${c}`).join(', ')})`;
    if (after !== null) {
      scond += ` AND ${keyTuple} > (${src.key_casts.map((c, i) => `$${3 + n + i}::${c}`).join(', ')})`;
      sparams.push(...after);
    }
    const sketches = groupSketches(await tx.query<SketchRow>(
      `SELECT ${cols}, metric, sketch FROM ${src.sketch_table}
       WHERE interval_start >= $1::timestamptz AND interval_start < $2::timestamptz ${src.filter} ${scond}`,
      sparams,
    ));
    for (const r of rows) {
      const start = floorTo(r.interval_start.getTime(), src.target_s);
      if (cur === null || cur.server_id !== r.server_id || cur.signature_id !== r.signature_id || cur.start_ms !== start) {
        if (cur !== null) done.push(cur);
        if (done.length >= 500) await flush();
        cur = newAcc(r.server_id, r.signature_id, start);
      }
      addRow(cur, r, sketches.get(rowKey(r)), 1n, counters);
    }
    merged += rows.length;
    after = last;
    if (rows.length < o.page_rows) break;
  }
  if (cur !== null) done.push(cur);
  await flush();
  report.source_rows_merged += merged;
  return merged;
}

/**
 * Deletes the source rows in [from, to) (and their sketches); level-1 rows still queued as late
 * are kept (they are not merged yet). Returns the rows deleted.
 */
async function deleteRange(tx: Queryable, src: Source, from_ms: number, to_ms: number): Promise<number> {
  const keep = src === L1
    ? 'AND NOT EXISTS (SELECT 1 FROM rollup_late_l1 q WHERE q.server_id = s.server_id AND q.signature_id = s.signature_id AND q.interval_start = s.interval_start AND q.sensor_id = s.sensor_id AND q.interval_s = s.interval_s)'
    : '';
  const on = [...src.key, 'interval_s'].filter((c, i, all) => all.indexOf(c) === i).map((c) => `k.${c} = d.${c}`).join(' AND ');
  const rows = await tx.query<{ n: bigint }>(
    `WITH d AS (
       DELETE FROM ${src.table} s WHERE s.interval_start >= $1::timestamptz AND s.interval_start < $2::timestamptz ${src.filter} ${keep}
       RETURNING ${[...src.key, 'interval_s'].filter((c, i, all) => all.indexOf(c) === i).map((c) => `s.${c}`).join(', ')}
     ), k AS (
       DELETE FROM ${src.sketch_table} k USING d WHERE ${on} RETURNING 1
     )
     SELECT (SELECT count(*) FROM d) AS n, (SELECT count(*) FROM k) AS k`,
    [ts(from_ms), ts(to_ms)],
  );
  return Number(rows[0]!.n);
}

// ------------------------------------------------------------------ units

interface Run {
  o: Options;
  report: RollupReport;
  counters: Counters;
  /** the schema has day blocks and upper_percentiles (migration 005) */
  blocks: boolean;
  l2: L2Tables;
}

/** Merges up to one page of queued late level-1 rows. Returns true when there may be more. */
async function lateUnit(tx: Queryable, run: Run): Promise<boolean> {
  const { o, report } = run;
  const st = await readState(tx, false);
  const entries = await tx.query<FactRow>(
    `SELECT server_id, signature_id, interval_start, sensor_id, interval_s FROM rollup_late_l1
     ORDER BY server_id, signature_id, interval_start, sensor_id, interval_s LIMIT $1`,
    [o.page_rows],
  );
  if (entries.length === 0) return false;
  const params: unknown[] = [];
  for (const e of entries) params.push(...keyValues(L1, e));
  const list = valuesList(entries.length, L1.key_casts);
  const on = (t: string) => L1.key.map((c) => `${t}.${c} = v.${c}`).join(' AND ');
  const rows = await tx.query<FactRow>(
    `SELECT l.server_id, l.signature_id, l.interval_start, l.sensor_id, l.interval_s, l.count, l.partial, l.outcomes, l.metrics
     FROM summaries_l1 l JOIN (VALUES ${list}) AS v (${L1.key.join(', ')}) ON ${on('l')}
     ORDER BY l.server_id, l.signature_id, l.interval_start, l.sensor_id, l.interval_s`,
    params,
  );
  const sketches = groupSketches(await tx.query<SketchRow>(
    `SELECT k.server_id, k.signature_id, k.interval_start, k.sensor_id, k.interval_s, k.metric, k.sketch
     FROM summary_sketches k JOIN (VALUES ${list}) AS v (${L1.key.join(', ')}) ON ${on('k')}`,
    params,
  ));

  // Rows at or after rolled_until are not late (rollup_state was moved back by hand): the
  // forward roll-up merges them; here only their queue entries go.
  const late = rows.filter((r) => r.interval_start.getTime() < st.hourly.rolled_until);
  const hours = new Map<string, Acc>();
  for (const r of late) {
    const start = floorTo(r.interval_start.getTime(), HOUR_S);
    const key = accKey(r.server_id, r.signature_id, start);
    let acc = hours.get(key);
    if (!acc) hours.set(key, (acc = newAcc(r.server_id, r.signature_id, start)));
    addRow(acc, r, sketches.get(rowKey(r)), 1n, run.counters);
  }
  // Hours whose hourly rows were deleted (rolled into days) get no hourly row; their day does.
  const hourly = [...hours.values()].filter((h) => h.start_ms >= st.daily.deleted_until);
  const days = new Map<string, Acc>();
  for (const h of hours.values()) {
    const start = floorTo(h.start_ms, DAY_S);
    if (!(start < st.daily.rolled_until)) continue; // the day is not rolled up yet: its hours feed it later
    const key = accKey(h.server_id, h.signature_id, start);
    let acc = days.get(key);
    if (!acc) days.set(key, (acc = newAcc(h.server_id, h.signature_id, start)));
    addAcc(acc, h);
  }
  // addAcc must see the hours before upsertL2 merges the stored rows into them.
  const existed = await upsertL2(tx, HOUR_S, hourly, run.counters, report.hourly, run.l2);
  for (const h of hours.values()) {
    // a daily row counts the hourly rows it covers: one more for each hour that had none
    const d = days.get(accKey(h.server_id, h.signature_id, floorTo(h.start_ms, DAY_S)));
    if (d && !existed.has(accKey(h.server_id, h.signature_id, h.start_ms))) d.source_rows += 1n;
  }
  // Days before the blocks' rolled_until are in their blocks: the late rows go there too.
  const bst = run.blocks ? await readBlocks(tx) : null;
  const blocks = bst === null ? null : blockAccs([...days.values()].filter((d) => d.start_ms < bst.rolled_until), bst.valid_from);
  const days_existed = await upsertL2(tx, DAY_S, [...days.values()], run.counters, report.daily, run.l2);
  if (blocks !== null) await upsertBlocks(tx, blocks, days_existed, run.counters);
  report.hourly.source_rows_merged += late.length;
  report.late_rows_merged += late.length;

  // Merged level-1 rows below source_deleted_until go (the reporter reads hourly rows there, and
  // level 1 is to be empty); the others stay, since the reporter reads level 1 from there on.
  // With delete_source, deleteUnit then removes them with the rest of the rolled-up range.
  const gone = late.filter((r) => r.interval_start.getTime() < st.hourly.deleted_until);
  for (const chunk of chunks(gone, perStatement(5))) {
    const p: unknown[] = [];
    for (const r of chunk) p.push(...keyValues(L1, r));
    const l = valuesList(chunk.length, L1.key_casts);
    await tx.query(`DELETE FROM summary_sketches k USING (VALUES ${l}) AS v (${L1.key.join(', ')}) WHERE ${on('k')}`, p);
    await tx.query(`DELETE FROM summaries_l1 l USING (VALUES ${l}) AS v (${L1.key.join(', ')}) WHERE ${on('l')}`, p);
  }
  report.hourly.source_rows_deleted += gone.length;
  await tx.query(`DELETE FROM rollup_late_l1 q USING (VALUES ${list}) AS v (${L1.key.join(', ')}) WHERE ${on('q')}`, params);
  return entries.length === o.page_rows;
}

/** Rolls up one unit of source rows past `rolled_until` into the target level. Returns true when there is more to do. */
async function forwardUnit(tx: Queryable, src: Source, run: Run): Promise<boolean> {
  const { o, report } = run;
  const st = await readState(tx, src === L1);
  const level = src === L1 ? st.hourly : st.daily;
  const lr = src === L1 ? report.hourly : report.daily;
  const now = o.now.getTime();
  let cutoff = floorTo(now - (src === L1 ? o.hourly_after_s : o.daily_after_s) * 1000, src.target_s);
  // a day is rolled up only from complete hours
  if (src === HOURLY) cutoff = Math.min(cutoff, floorTo(st.hourly.rolled_until, DAY_S));
  const from = level.rolled_until;
  if (!(from < cutoff)) return false;
  const plan = await planUnit(tx, src, from, cutoff, src.target_s, o.rows_per_unit);
  const b = plan?.b ?? cutoff;
  // The daily roll-up adds each day to its blocks too. Blocks that lack days rolled up before
  // (blocks.rolled_until behind: rollup_state was moved by hand) are not used from then on.
  let blocks: BlocksState | null = null;
  if (src === HOURLY && run.blocks) {
    blocks = await readBlocks(tx);
    if (blocks.rolled_until !== from) blocks.valid_from = Math.max(blocks.valid_from, from);
  }
  let merged = 0;
  if (plan) merged = await mergeRange(tx, src, plan.a, plan.b, o, run.counters, lr, run.l2, blocks?.valid_from ?? null);
  // Queue entries in the range are not late any more (only if rollup_state was moved back).
  if (src === L1) await tx.query('DELETE FROM rollup_late_l1 WHERE interval_start >= $1::timestamptz AND interval_start < $2::timestamptz', [ts(from), ts(b)]);
  const next: LevelState = { rolled_until: b, deleted_until: level.deleted_until };
  // Deleting as we go keeps source_deleted_until = rolled_until; when rows before `from` were
  // kept by earlier runs, the catch-up step (deleteUnit) ran first and made it so.
  if (o.delete_source && level.deleted_until >= from) {
    if (plan) {
      const deleted = await deleteRange(tx, src, plan.a, plan.b);
      if (deleted !== merged) {
        throw new Error(`rollup: merged ${merged} ${src.table} rows of ${ts(plan.a)}…${ts(plan.b)} but would delete ${deleted}; the rows changed underneath, nothing was committed`);
      }
      lr.source_rows_deleted += deleted;
    }
    next.deleted_until = b;
  }
  await writeState(tx, src.target_s, next);
  if (blocks !== null) await writeBlocks(tx, { valid_from: blocks.valid_from, rolled_until: b });
  return b < cutoff;
}

/** Deletes source rows already merged but kept by earlier runs (delete_source). Returns true when there is more. */
async function deleteUnit(tx: Queryable, src: Source, run: Run): Promise<boolean> {
  const { o, report } = run;
  const st = await readState(tx, false);
  const level = src === L1 ? st.hourly : st.daily;
  const from = level.deleted_until, to = level.rolled_until;
  if (!(from < to)) return false;
  const plan = await planUnit(tx, src, from, to, src.target_s, o.rows_per_unit);
  const b = plan?.b ?? to;
  if (plan) (src === L1 ? report.hourly : report.daily).source_rows_deleted += await deleteRange(tx, src, from, b);
  await writeState(tx, src.target_s, { rolled_until: level.rolled_until, deleted_until: b });
  return b < to;
}

/** Level-1 retention, first step: rows of expired days that sit in the DEFAULT partitions. */
async function retainL1DefaultUnit(tx: Queryable, run: Run, cut: number): Promise<void> {
  const rows = await tx.query<{ n: bigint }>(
    `WITH d AS (
       DELETE FROM summaries_l1_default s WHERE s.interval_start < $1::timestamptz
         AND NOT EXISTS (SELECT 1 FROM rollup_late_l1 q WHERE q.server_id = s.server_id AND q.signature_id = s.signature_id
                         AND q.interval_start = s.interval_start AND q.sensor_id = s.sensor_id AND q.interval_s = s.interval_s)
       RETURNING s.server_id, s.signature_id, s.interval_start, s.sensor_id, s.interval_s
     ), k AS (
       DELETE FROM summary_sketches_default k USING d
       WHERE k.server_id = d.server_id AND k.signature_id = d.signature_id AND k.interval_start = d.interval_start
         AND k.sensor_id = d.sensor_id AND k.interval_s = d.interval_s
       RETURNING 1
     )
     SELECT (SELECT count(*) FROM d) AS n, (SELECT count(*) FROM k) AS k`,
    [ts(cut)],
  );
  run.report.retention.l1_default_rows_deleted += Number(rows[0]!.n);
}

/** Level-1 day partitions (YYYYMMDD → UTC midnight ms) that end at or before `cut`, oldest first. */
async function expiredL1Days(sql: Queryable, cut: number): Promise<{ name: string; start_ms: number }[]> {
  const rows = await sql.query<{ relname: string }>(
    `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'summaries_l1'::regclass`,
  );
  const out: { name: string; start_ms: number }[] = [];
  for (const { relname } of rows) {
    const m = /^summaries_l1_(\d{4})(\d{2})(\d{2})$/.exec(relname);
    if (!m) continue;
    const start = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
    if (start + DAY_MS <= cut) out.push({ name: `${m[1]}${m[2]}${m[3]}`, start_ms: start });
  }
  return out.sort((x, y) => x.start_ms - y.start_ms);
}

/**
 * Drops one expired level-1 day (both tables). The DROP comes first: it waits until no ingest
 * touches summaries_l1 and keeps it so; a late row of that day still queued then rolls the
 * drop back (the row is merged by the next run, the day dropped after).
 */
async function dropL1DayUnit(tx: Queryable, run: Run, day: { name: string; start_ms: number }): Promise<void> {
  // Waiting for the partition's lock makes ingest queue behind this transaction: bound the wait.
  await tx.query(`SELECT set_config('lock_timeout', '10s', true)`);
  await tx.query(`DROP TABLE IF EXISTS summaries_l1_${day.name}`);
  await tx.query(`DROP TABLE IF EXISTS summary_sketches_${day.name}`);
  const q = await tx.query<{ n: bigint }>(
    'SELECT count(*) AS n FROM rollup_late_l1 WHERE interval_start >= $1::timestamptz AND interval_start < $2::timestamptz',
    [ts(day.start_ms), ts(day.start_ms + DAY_MS)],
  );
  if (q[0]!.n > 0n) throw new Deferred(`day ${day.name} has ${q[0]!.n} late rows queued`);
  const st = await readState(tx, false);
  if (st.hourly.deleted_until < day.start_ms + DAY_MS) {
    await writeState(tx, HOUR_S, { rolled_until: st.hourly.rolled_until, deleted_until: day.start_ms + DAY_MS });
  }
  run.report.retention.l1_days_dropped.push(day.name);
}

/**
 * Deletes level-2 rows of `interval_s` before `cut`, one unit at a time (whole days, about
 * rows_per_unit rows). For hourly rows, moves (86400).source_deleted_until along. Returns true
 * when there is more.
 */
async function retainL2Unit(tx: Queryable, run: Run, interval_s: number, cut: number): Promise<boolean> {
  const src: Source = { ...HOURLY, filter: `AND interval_s = ${interval_s}` };
  const plan = await planUnit(tx, src, -Infinity, cut, DAY_S, run.o.rows_per_unit);
  const b = plan?.b ?? cut;
  if (plan) {
    const rows = await tx.query<{ n: bigint }>(
      `WITH d AS (
         DELETE FROM summaries_l2 WHERE interval_s = $1 AND interval_start < $2::timestamptz
         RETURNING server_id, signature_id, interval_s, interval_start
       ), k AS (
         DELETE FROM summary_sketches_l2 k USING d
         WHERE k.server_id = d.server_id AND k.signature_id = d.signature_id AND k.interval_s = d.interval_s AND k.interval_start = d.interval_start
         RETURNING 1
       )
       SELECT (SELECT count(*) FROM d) AS n, (SELECT count(*) FROM k) AS k`,
      [interval_s, ts(b)],
    );
    const n = Number(rows[0]!.n);
    if (interval_s === HOUR_S) run.report.retention.hourly_rows_deleted += n;
    else run.report.retention.daily_rows_deleted += n;
  }
  if (interval_s === HOUR_S) {
    const st = await readState(tx, false);
    if (st.daily.deleted_until < b) await writeState(tx, DAY_S, { rolled_until: st.daily.rolled_until, deleted_until: b });
  }
  if (interval_s === DAY_S && run.blocks) {
    // blocks holding a deleted day go with it, and no block starting before b is used again
    await tx.query('DELETE FROM summary_sketches_blocks WHERE interval_start < $1::timestamptz', [ts(b)]);
    await tx.query('DELETE FROM summaries_blocks WHERE interval_start < $1::timestamptz', [ts(b)]);
    const bst = await readBlocks(tx);
    if (bst.valid_from < b) await writeBlocks(tx, { valid_from: b, rolled_until: bst.rolled_until });
  }
  return b < cut;
}

// ------------------------------------------------------------------ the run

function emptyLevel(): LevelReport {
  return { source_rows_merged: 0, rows_written: 0, source_rows_deleted: 0, rolled_until: null, source_deleted_until: null };
}

/**
 * One roll-up run: late level-1 rows, then (with delete_source) the deletion of rows merged by
 * earlier runs, the hourly roll-up, the daily roll-up, and retention. Idempotent: a second run
 * with the same `now` does nothing. Safe to interrupt anywhere (see the file comment). Throws on
 * bad options (RangeError) and on database errors (after rolling back the unit in progress).
 */
export async function runRollup(sql: Sql, options: RollupOptions): Promise<RollupReport> {
  const o = checkOptions(options);
  const t0 = performance.now();
  const report: RollupReport = {
    busy: false, stopped: false, transactions: 0, late_rows_merged: 0,
    hourly: emptyLevel(), daily: emptyLevel(),
    retention: { l1_days_dropped: [], l1_default_rows_deleted: 0, l1_days_deferred: 0, hourly_rows_deleted: 0, daily_rows_deleted: 0 },
    sketches_undecodable: 0, elapsed_ms: 0,
  };
  const has = await sql.query<{ ok: boolean }>(`SELECT to_regclass('rollup_day_blocks') IS NOT NULL AS ok`);
  const v5 = has[0]?.ok === true;
  const run: Run = { o, report, counters: report, blocks: v5, l2: v5 ? L2 : L2_V4 };

  /** One unit of work in one transaction, after the roll-up lock. */
  const unit = async <T>(fn: (tx: Queryable) => Promise<T>): Promise<T> => {
    if (o.signal?.aborted) throw new Busy('stopped');
    const out = await sql.transaction(async (tx) => {
      const got = await tx.query<{ ok: boolean }>(ROLLUP_LOCK);
      if (got[0]?.ok !== true) throw new Busy('busy');
      return fn(tx);
    });
    report.transactions++;
    return out;
  };
  const loop = async (fn: (tx: Queryable) => Promise<boolean>): Promise<void> => {
    while (await unit(fn));
  };

  try {
    await loop((tx) => lateUnit(tx, run));
    if (o.delete_source) await loop((tx) => deleteUnit(tx, L1, run));
    await loop((tx) => forwardUnit(tx, L1, run));
    if (o.delete_source) await loop((tx) => deleteUnit(tx, HOURLY, run));
    await loop((tx) => forwardUnit(tx, HOURLY, run));

    const now = o.now.getTime();
    if (o.retention_l1_s !== null) {
      const st = await readState(sql, false);
      const cut = Math.min(floorTo(now - o.retention_l1_s * 1000, DAY_S), floorTo(st.hourly.rolled_until, DAY_S));
      if (cut > -Infinity) {
        await unit((tx) => retainL1DefaultUnit(tx, run, cut));
        for (const day of await expiredL1Days(sql, cut)) {
          try {
            await unit((tx) => dropL1DayUnit(tx, run, day));
          } catch (err) {
            if (!(err instanceof Deferred)) throw err;
            report.retention.l1_days_deferred++;
            break; // later days wait too, so that source_deleted_until stays true
          }
        }
        if (report.retention.l1_days_deferred === 0) {
          await unit(async (tx) => {
            const s = await readState(tx, false);
            if (s.hourly.deleted_until < cut) await writeState(tx, HOUR_S, { rolled_until: s.hourly.rolled_until, deleted_until: cut });
          });
        }
      }
    }
    if (o.retention_hourly_s !== null) {
      const st = await readState(sql, false);
      const cut = Math.min(floorTo(now - o.retention_hourly_s * 1000, DAY_S), st.daily.rolled_until);
      if (cut > -Infinity) await loop((tx) => retainL2Unit(tx, run, HOUR_S, cut));
    }
    if (o.retention_daily_s !== null) {
      const cut = floorTo(now - o.retention_daily_s * 1000, DAY_S);
      await loop((tx) => retainL2Unit(tx, run, DAY_S, cut));
    }
  } catch (err) {
    if (!(err instanceof Busy)) throw err;
    if (err.message === 'stopped') report.stopped = true;
    else report.busy = true;
  }

  const st = await readState(sql, false);
  report.hourly.rolled_until = iso(st.hourly.rolled_until);
  report.hourly.source_deleted_until = iso(st.hourly.deleted_until);
  report.daily.rolled_until = iso(st.daily.rolled_until);
  report.daily.source_deleted_until = iso(st.daily.deleted_until);
  report.elapsed_ms = Math.round(performance.now() - t0);
  return report;
}
