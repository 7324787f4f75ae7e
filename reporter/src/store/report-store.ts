// The reporter's read side of the collector's schema (collector/src/migrations/), on the same
// `Sql` interface as the collector's store: PostgreSQL through `pg` for a URL, PGlite for a data
// directory. Every call runs in its own read-only transaction:
//   SELECT set_config('transaction_read_only', 'on', true),      -- this transaction only
//          set_config('statement_timeout', $1, true),             -- bounded time per statement
//          set_config('role', $2, true)                           -- e.g. wiretime_reader (004)
// and, for a URL, the connection itself starts with default_transaction_read_only=on, so that
// nothing this process sends can write. Every filter value is a bound parameter; the only text
// spliced into statements is table and column names chosen by this file.
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { PgSql } from '../../../collector/src/store/pg-sql.ts';
import { PgliteSql } from '../../../collector/src/store/pglite-sql.ts';
import type { Queryable, Sql } from '../../../collector/src/store/sql.ts';

/**
 * Interval lengths of the stored rows: 0 stands for level 1 (summaries_l1, as the sensors sent
 * it), 3600 and 86 400 for level 2 (summaries_l2), and whole multiples of 2 days for the day
 * blocks (summaries_blocks, migration 005: daily rows pre-merged over 2, 4, … 64 days).
 */
export type Level = number;

/** One stretch of a window and the rows it is read from: those of `level` starting in [start_s, end_s). */
export interface Span { level: Level; start_s: number; end_s: number }

/** What a query selects; unset fields match everything. Values are checked by `checkFilter`. */
export interface StoreFilter {
  protocol?: string;
  signature?: string;
  /** address, or CIDR network "10.1.0.0/16" */
  server?: string;
  server_port?: number;
  transport?: 'tcp' | 'udp';
}

/** How rows are grouped: by time bucket of `step_s` seconds, by signature, or by server. */
export type Grouping = { by: 'bucket'; step_s: number } | { by: 'signature' } | { by: 'server' };

/** One group's count/sum/min/max of a metric, from one level. */
export type AggregateRow = {
  /** bucket start (epoch s) for 'bucket', else signature_id / server_id */
  key: bigint;
  /** transactions (or connections) of the rows, with or without the metric */
  transactions: bigint;
  /** values of the metric */
  count: bigint;
  sum: number;
  min: number;
  max: number;
  /** longest interval_s among the rows with the metric */
  max_interval_s: number;
  /** names of the group ('signature': protocol, signature; 'server': server, server_port, transport) */
  protocol: string;
  signature: string;
  server: string;
  server_port: number;
  transport: string;
  /**
   * Per percentile key asked for (`aggregate`'s `percentiles`, in that order), what the rows'
   * stored percentiles say, null for a key some row with values lacks; null for level-1 rows
   * (which carry none).
   */
  stored_percentiles?: (StoredPercentiles | null)[] | null;
};

/**
 * A percentile key level-2 rows (and day blocks) carry in `metrics -> metric` (collector/src/rollup.ts,
 * docs/sql.md), or with `upper` in `upper_percentiles -> metric` (migration 005: the value at rank
 * min(n−1, ⌈q·n⌉), collector/src/rollup.ts upperPercentiles).
 */
export interface PercentileKey {
  /** 'p50', 'p90', 'p95' or 'p99' */
  key: 'p50' | 'p90' | 'p95' | 'p99';
  /** its level: 0.5, 0.9, 0.95, 0.99 */
  q: number;
  /** read from upper_percentiles */
  upper?: boolean;
}

/** One group's rows' stored values of a percentile key (when every row with values carries it). */
export interface StoredPercentiles {
  /** the largest stored value among the rows */
  max: number;
  /**
   * Σ over the rows of ⌊q·(n−1)⌋ + 1 (n: the row's count): how many of the group's values are at
   * least known to lie in the buckets at or below the largest stored value's.
   */
  rank_sum: number;
}

/** Where each level's data is, from rollup_state (collector/src/migrations/003_rollups.sql). */
export interface LevelState {
  /** level 1 rows before this were deleted (they live in hourly rows); null: none deleted */
  hourly_source_deleted_until_s: number | null;
  /** hourly rows before this were deleted (they live in daily rows); null: none deleted */
  daily_source_deleted_until_s: number | null;
  /** every level-1 row before this has been merged into hourly rows; null: none */
  hourly_rolled_until_s: number | null;
  /** every hourly row before this has been merged into daily rows; null: none */
  daily_rolled_until_s: number | null;
  /**
   * Where day blocks are complete (rollup_day_blocks): a block [s, s + length) holds all its daily
   * rows when valid_from_s <= s and s + length <= rolled_until_s; null: no blocks (schema before 5).
   */
  blocks?: { valid_from_s: number; rolled_until_s: number } | null;
}

export interface ReportStoreOptions {
  /** role taken for each read transaction (e.g. "wiretime_reader", created by migration 004); null: the login's own */
  role?: string | null;
  /** statement_timeout of each read transaction, ms; default 10 000 */
  statement_timeout_ms?: number;
}

export type SensorRow = {
  sensor_id: string;
  first_seen_s: bigint;
  last_seen_s: bigint;
  stats_at_s: bigint | null;
  packets: bigint | null;
  bytes: bigint | null;
  kernel_drops: bigint | null;
  interface_drops: bigint | null;
  flows_active: bigint | null;
  transactions: bigint | null;
  spool_bytes: bigint | null;
  capture_time_s: bigint | null;
};

export type ServerRow = { server: string; server_port: number; transport: string; first_seen_s: bigint };
export type ProtocolRow = { protocol: string; signatures: bigint };
export type SignatureRow = { protocol: string; signature: string; first_seen_s: bigint };

/** The lowest schema version the reporter reads (003 added the level-2 tables and rollup_state). */
export const MIN_SCHEMA_VERSION = 3;

const DAY_S = 86_400;

function tablesOf(level: Level): { facts: string; sketches: string } {
  if (level === 0) return { facts: 'summaries_l1', sketches: 'summary_sketches' };
  if (level === 3600 || level === DAY_S) return { facts: 'summaries_l2', sketches: 'summary_sketches_l2' };
  if (level > DAY_S && level % DAY_S === 0) return { facts: 'summaries_blocks', sketches: 'summary_sketches_blocks' };
  throw new Error(`no stored rows of ${level} s`);
}

/** The spans by table, in the order first seen; level 1 never shares a statement with level 2. */
function byTable(spans: readonly Span[]): { facts: string; sketches: string; spans: Span[] }[] {
  if (spans.length === 0) throw new Error('no spans to read');
  if (spans.some((x) => x.level === 0) && spans.some((x) => x.level !== 0)) throw new Error('level 1 and level 2 are read apart');
  const out: { facts: string; sketches: string; spans: Span[] }[] = [];
  for (const x of spans) {
    const t = tablesOf(x.level);
    const g = out.find((o) => o.facts === t.facts);
    if (g) g.spans.push(x);
    else out.push({ ...t, spans: [x] });
  }
  return out;
}

/** One SELECT per table the spans are in, each made by `select`, as one UNION ALL. */
function unionByTable(spans: readonly Span[], select: (t: { facts: string; sketches: string; spans: Span[] }) => string): string {
  return byTable(spans).map(select).join('\n       UNION ALL\n       ');
}

/** Collects bound parameters and hands out their placeholders. */
class Params {
  readonly values: unknown[] = [];
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

/** `true` when `text` is an address or a CIDR network PostgreSQL's inet accepts. */
export function isAddressOrNetwork(text: string): boolean {
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(text);
  if (!m) return false;
  const family = isIP(m[1]!);
  if (family === 0) return false;
  return m[2] === undefined || Number(m[2]) <= (family === 4 ? 32 : 128);
}

function isoFromSeconds(s: number): string {
  return new Date(s * 1000).toISOString();
}

/**
 * Read-only queries over the collector's tables. Owns nothing but what `open` created
 * (`close` closes that); built on a caller's `Sql` it leaves that one open.
 */
export class ReportStore {
  private readonly role: string | null;
  private readonly timeout_ms: number;
  /** rollup_day_blocks was seen (once there, it stays: migrations only add) */
  private has_blocks = false;

  constructor(readonly sql: Sql, options: ReportStoreOptions = {}, private readonly owned = false) {
    this.role = options.role ?? null;
    this.timeout_ms = options.statement_timeout_ms ?? 10_000;
  }

  /**
   * database_url → PostgreSQL (the connection starts read-only); else PGlite in data_dir. The
   * schema must exist (the collector creates it): refused otherwise, with what to do.
   */
  static async open(database_url: string | null, data_dir: string | null, options: ReportStoreOptions = {}): Promise<ReportStore> {
    let sql: Sql;
    if (database_url !== null) {
      sql = new PgSql(readOnlyUrl(database_url), { onError: (err) => process.stderr.write(`wiretime reporter: idle PostgreSQL client error: ${err.message}\n`) });
    } else {
      if (data_dir === null) throw new Error('a database URL or a data directory is needed');
      if (!existsSync(data_dir)) throw new Error(`${data_dir}: no such directory (the embedded database a 'wiretime collector --data-dir' wrote)`);
      sql = await PgliteSql.open(data_dir);
    }
    const store = new ReportStore(sql, options, true);
    try {
      await store.checkSchema();
    } catch (err) {
      await sql.close().catch(() => {});
      throw err;
    }
    return store;
  }

  /** Refuses a database without the collector's schema (or too old a version of it). */
  async checkSchema(): Promise<number> {
    const version = await this.read(async (q) => {
      const t = await q.query<{ t: string | null }>(`SELECT to_regclass('schema_migrations')::text AS t`);
      if (t[0]?.t == null) return 0;
      const v = await q.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
      return v[0]?.v ?? 0;
    });
    if (version < MIN_SCHEMA_VERSION) {
      throw new Error(version === 0
        ? 'the database has no wiretime schema: start the collector on it once (it creates and upgrades the schema)'
        : `the database's wiretime schema is version ${version}, the reporter needs ${MIN_SCHEMA_VERSION} or later: start the current collector on it once to upgrade it`);
    }
    return version;
  }

  /** Runs fn in one read-only transaction with the statement timeout and role of this store. */
  read<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    return this.sql.transaction(async (tx) => {
      const p = new Params();
      const cols = [`set_config('transaction_read_only', 'on', true)`, `set_config('statement_timeout', ${p.add(String(this.timeout_ms))}, true)`];
      if (this.role !== null) cols.push(`set_config('role', ${p.add(this.role)}, true)`);
      await tx.query(`SELECT ${cols.join(', ')}`, p.values);
      return fn(tx);
    });
  }

  async levelState(q: Queryable): Promise<LevelState> {
    if (!this.has_blocks) {
      const t = await q.query<{ ok: boolean }>(`SELECT to_regclass('rollup_day_blocks') IS NOT NULL AS ok`);
      this.has_blocks = t[0]?.ok === true;
    }
    // rollup_day_blocks (migration 005) comes as interval_s 0: rolled = its rolled_until, deleted = its valid_from
    const rows = await q.query<{ interval_s: number; rolled: number | null; deleted: number | null }>(
      `SELECT interval_s,
              CASE WHEN isfinite(rolled_until) THEN extract(epoch FROM rolled_until)::float8 END AS rolled,
              CASE WHEN isfinite(source_deleted_until) THEN extract(epoch FROM source_deleted_until)::float8 END AS deleted
       FROM rollup_state WHERE interval_s IN (3600, 86400)${this.has_blocks ? `
       UNION ALL
       SELECT 0, extract(epoch FROM rolled_until)::float8, extract(epoch FROM valid_from)::float8 FROM rollup_day_blocks` : ''}`,
    );
    const get = (i: number) => rows.find((r) => r.interval_s === i);
    const b = get(0);
    return {
      hourly_source_deleted_until_s: get(3600)?.deleted ?? null,
      daily_source_deleted_until_s: get(86_400)?.deleted ?? null,
      hourly_rolled_until_s: get(3600)?.rolled ?? null,
      daily_rolled_until_s: get(86_400)?.rolled ?? null,
      // extract(epoch …) of ±infinity is ±Infinity
      blocks: b === undefined ? null : { valid_from_s: b.deleted!, rolled_until_s: b.rolled! },
    };
  }

  /**
   * count/sum/min/max of `metric` per group over the rows of one level whose interval starts in
   * [start_s, end_s). Groups without a value of the metric are left out. With `percentiles`
   * (for a top-N by a percentile), each group also gets `stored_percentiles` from those keys.
   */
  async aggregate(q: Queryable, level: Level, start_s: number, end_s: number, metric: string, filter: StoreFilter, grouping: Grouping,
    percentiles: readonly PercentileKey[] = []): Promise<AggregateRow[]> {
    return this.aggregateSpans(q, [{ level, start_s, end_s }], metric, filter, grouping, percentiles);
  }

  /**
   * `aggregate` over several spans at once (one statement): all of level 1, or all of level 2
   * and day blocks. Each row is counted once however the spans are laid out, so they must not
   * hold the same transactions twice (a block and its days).
   */
  async aggregateSpans(q: Queryable, spans: readonly Span[], metric: string, filter: StoreFilter, grouping: Grouping,
    percentiles: readonly PercentileKey[] = [], keys?: readonly bigint[]): Promise<AggregateRow[]> {
    const p = new Params();
    const m = p.add(metric);
    const key = keySql(grouping, 'f', p);
    const dims = dimensionWhere('f', filter, p) + keysWhere('f', grouping, keys, p);
    const level1 = spans[0]?.level === 0;
    // Level-1 rows carry no stored percentiles: those groups get null without reading the jsonb.
    const pk = level1 ? [] : percentiles;
    const pRows = pk.map((k, i) => `, (f.${k.upper ? 'upper_percentiles' : 'metrics'} -> ${m} ->> ${p.add(k.key)})::float8 AS p${i}`).join('');
    // The rows' subquery ends in OFFSET 0 so that it is not pulled up into the aggregates, where
    // each use of p0 or n would read the jsonb again (measured: a third faster on a month of
    // daily rows). The roll-up writes the keys only with a count > 0; sum() skips the rows without
    // the key (p0 * 0 is NULL there); the rows lacking it are those with values less those with
    // the key.
    const pCols = pk.map((k, i) => `,
              max(p${i}) AS p${i}_max,
              sum(floor(${p.add(k.q)}::float8 * (n - 1)::float8) + 1 + p${i} * 0) AS p${i}_rank_sum,
              count(p${i}) AS p${i}_rows`).join('');
    // Each field of the metric is read from the jsonb once per row (plain -> / ->> in a subquery:
    // measured 3× faster than jsonb_to_record), the rows are grouped by an integer key, and the
    // names are joined to the groups, not to the rows.
    const inner = `SELECT key,
              sum(c)::int8 AS transactions,
              sum(n) FILTER (WHERE n > 0)::int8 AS count,
              sum(total) FILTER (WHERE n > 0) AS sum,
              min(lo) FILTER (WHERE n > 0) AS min,
              max(hi) FILTER (WHERE n > 0) AS max,
              max(interval_s) FILTER (WHERE n > 0) AS max_interval_s${pk.length > 0 ? `,
              count(*) FILTER (WHERE n > 0) AS rows_with_values` : ''}${pCols}
       FROM (${unionByTable(spans, (t) => `SELECT ${key} AS key, f.count AS c, f.interval_s,
                    (f.metrics -> ${m} ->> 'count')::int8 AS n,
                    (f.metrics -> ${m} ->> 'sum')::float8 AS total,
                    (f.metrics -> ${m} ->> 'min')::float8 AS lo,
                    (f.metrics -> ${m} ->> 'max')::float8 AS hi${pRows}
             FROM ${t.facts} f
             WHERE ${timeWhere('f', t.spans, p)}${dims}`)}
             OFFSET 0) x
       GROUP BY key
       HAVING sum(n) FILTER (WHERE n > 0) > 0`;
    const sql = grouping.by === 'signature'
      ? `SELECT a.*, g.protocol, g.name AS signature, '' AS server, 0 AS server_port, '' AS transport FROM (${inner}) a JOIN signatures g ON g.signature_id = a.key`
      : grouping.by === 'server'
        ? `SELECT a.*, '' AS protocol, '' AS signature, host(s.address) AS server, s.port AS server_port, s.transport FROM (${inner}) a JOIN servers s ON s.server_id = a.key`
        : `SELECT a.*, '' AS protocol, '' AS signature, '' AS server, 0 AS server_port, '' AS transport FROM (${inner}) a`;
    const rows = await q.query<AggregateRow & Record<string, unknown>>(sql, p.values);
    if (percentiles.length === 0) return rows;
    // new objects of one shape (deleting the extra columns would leave slow dictionary-mode objects)
    return rows.map((r): AggregateRow => {
      let stored: (StoredPercentiles | null)[] | null = null;
      if (!level1) {
        stored = [];
        for (let i = 0; i < pk.length; i++) {
          const max = r[`p${i}_max`] as number | null, rank_sum = r[`p${i}_rank_sum`] as number | null;
          stored.push(Number(r[`p${i}_rows`]) !== Number(r.rows_with_values) || max === null || rank_sum === null ? null : { max, rank_sum });
        }
      }
      return {
        key: r.key, transactions: r.transactions, count: r.count, sum: r.sum, min: r.min, max: r.max, max_interval_s: r.max_interval_s,
        protocol: r.protocol, signature: r.signature, server: r.server, server_port: r.server_port, transport: r.transport, stored_percentiles: stored,
      };
    });
  }

  /**
   * The sketches (sketches-proto bytes) of `metric` per group, over the same rows as `aggregate`;
   * `keys` narrows to those groups (signature or server ids).
   */
  async sketches(q: Queryable, level: Level, start_s: number, end_s: number, metric: string, filter: StoreFilter, grouping: Grouping,
    keys?: readonly bigint[]): Promise<{ key: bigint; sketch: Uint8Array }[]> {
    return this.sketchesSpans(q, [{ level, start_s, end_s }], metric, filter, grouping, keys);
  }

  /**
   * For a top-N by a percentile: per group, its count of values (as `aggregateSpans` gives it) and
   * what its rows' `upper` key says (rows with values, rows with the key, the highest value): two
   * jsonb reads per row instead of the aggregate's five or more. Level-2 spans and blocks only.
   */
  async upperBounds(q: Queryable, spans: readonly Span[], metric: string, filter: StoreFilter, grouping: Grouping, upper: PercentileKey):
    Promise<{ key: bigint; count: bigint; rows_with_values: number; upper_max: number | null; upper_rows: number }[]> {
    if (!upper.upper || spans.some((x) => x.level === 0)) throw new Error('upperBounds: an upper key over level-2 rows');
    const p = new Params();
    const m = p.add(metric);
    const k = p.add(upper.key);
    const key = keySql(grouping, 'f', p);
    const dims = dimensionWhere('f', filter, p);
    const rows = await q.query<{ key: bigint; count: bigint; rows_with_values: bigint; upper_max: number | null; upper_rows: bigint }>(
      `SELECT key, sum(n) FILTER (WHERE n > 0)::int8 AS count, count(*) FILTER (WHERE n > 0) AS rows_with_values,
              max(u) AS upper_max, count(u) AS upper_rows
       FROM (${unionByTable(spans, (t) => `SELECT ${key} AS key, (f.metrics -> ${m} ->> 'count')::int8 AS n, (f.upper_percentiles -> ${m} ->> ${k})::float8 AS u
             FROM ${t.facts} f
             WHERE ${timeWhere('f', t.spans, p)}${dims}`)}
             OFFSET 0) x
       GROUP BY key
       HAVING sum(n) FILTER (WHERE n > 0) > 0`,
      p.values,
    );
    return rows.map((r) => ({ key: r.key, count: r.count, rows_with_values: Number(r.rows_with_values), upper_max: r.upper_max, upper_rows: Number(r.upper_rows) }));
  }

  /** `sketches` over several spans at once (one statement), as `aggregateSpans` reads them. */
  async sketchesSpans(q: Queryable, spans: readonly Span[], metric: string, filter: StoreFilter, grouping: Grouping,
    keys?: readonly bigint[]): Promise<{ key: bigint; sketch: Uint8Array }[]> {
    const p = new Params();
    const m = p.add(metric);
    const key = keySql(grouping, 'k', p);
    const where = `k.metric = ${m}${dimensionWhere('k', filter, p)}${keysWhere('k', grouping, keys, p)}`;
    return q.query<{ key: bigint; sketch: Uint8Array }>(
      unionByTable(spans, (t) => `SELECT ${key} AS key, k.sketch
       FROM ${t.sketches} k
       WHERE ${timeWhere('k', t.spans, p)} AND ${where}`),
      p.values,
    );
  }

  async listSensors(q: Queryable, prefix: string, after: string | null, limit: number): Promise<SensorRow[]> {
    const p = new Params();
    const where = ['true'];
    if (prefix !== '') where.push(`left(sensor_id, length(${p.add(prefix)})) = $${p.values.length}`);
    if (after !== null) where.push(`sensor_id > ${p.add(after)}`);
    return q.query<SensorRow>(
      `SELECT sensor_id,
              floor(extract(epoch FROM first_seen))::int8 AS first_seen_s,
              floor(extract(epoch FROM last_seen))::int8 AS last_seen_s,
              floor(extract(epoch FROM stats_at))::int8 AS stats_at_s,
              packets, bytes, kernel_drops, interface_drops, flows_active, transactions, spool_bytes,
              floor(extract(epoch FROM capture_time))::int8 AS capture_time_s
       FROM sensors WHERE ${where.join(' AND ')}
       ORDER BY sensor_id LIMIT ${p.add(limit)}`,
      p.values,
    );
  }

  async listServers(q: Queryable, filter: StoreFilter, after: { server: string; server_port: number; transport: string } | null, limit: number): Promise<ServerRow[]> {
    const p = new Params();
    const where = serverWhere('s', filter, p);
    if (after !== null) where.push(`(s.address, s.port, s.transport) > (${p.add(after.server)}::inet, ${p.add(after.server_port)}::int4, ${p.add(after.transport)}::text)`);
    return q.query<ServerRow>(
      `SELECT host(s.address) AS server, s.port AS server_port, s.transport, floor(extract(epoch FROM s.first_seen))::int8 AS first_seen_s
       FROM servers s WHERE ${where.length ? where.join(' AND ') : 'true'}
       ORDER BY s.address, s.port, s.transport LIMIT ${p.add(limit)}`,
      p.values,
    );
  }

  async listProtocols(q: Queryable, after: string | null, limit: number): Promise<ProtocolRow[]> {
    const p = new Params();
    const where = after === null ? 'true' : `protocol > ${p.add(after)}`;
    return q.query<ProtocolRow>(
      `SELECT protocol, count(*)::int8 AS signatures FROM signatures WHERE ${where}
       GROUP BY protocol ORDER BY protocol LIMIT ${p.add(limit)}`,
      p.values,
    );
  }

  async listSignatures(q: Queryable, protocol: string, name_contains: string, after: { protocol: string; signature: string } | null, limit: number): Promise<SignatureRow[]> {
    const p = new Params();
    const where = ['true'];
    if (protocol !== '') where.push(`g.protocol = ${p.add(protocol)}`);
    if (name_contains !== '') where.push(`strpos(lower(g.name), lower(${p.add(name_contains)})) > 0`);
    if (after !== null) where.push(`(g.protocol, g.name) > (${p.add(after.protocol)}::text, ${p.add(after.signature)}::text)`);
    return q.query<SignatureRow>(
      `SELECT g.protocol, g.name AS signature, floor(extract(epoch FROM g.first_seen))::int8 AS first_seen_s
       FROM signatures g WHERE ${where.join(' AND ')}
       ORDER BY g.protocol, g.name LIMIT ${p.add(limit)}`,
      p.values,
    );
  }

  /** Closes the database when this store opened it. */
  async close(): Promise<void> {
    if (this.owned) await this.sql.close();
  }
}

/** The URL with `default_transaction_read_only=on` added to the connection's startup options. */
export function readOnlyUrl(database_url: string): string {
  let u: URL;
  try {
    u = new URL(database_url);
  } catch {
    throw new Error('--database: not a URL (postgres://user@host:port/database)');
  }
  const options = u.searchParams.get('options');
  u.searchParams.set('options', `${options ? `${options} ` : ''}-c default_transaction_read_only=on`);
  return u.toString();
}

function keySql(grouping: Grouping, alias: string, p: Params): string {
  switch (grouping.by) {
    case 'bucket': {
      const step = p.add(grouping.step_s);
      return `(extract(epoch FROM ${alias}.interval_start)::int8 / ${step}::int8) * ${step}::int8`;
    }
    case 'signature': return `${alias}.signature_id`;
    case 'server': return `${alias}.server_id`;
  }
}

function serverWhere(s: string, filter: StoreFilter, p: Params): string[] {
  const where: string[] = [];
  if (filter.server !== undefined) where.push(filter.server.includes('/') ? `${s}.address <<= ${p.add(filter.server)}::inet` : `${s}.address = ${p.add(filter.server)}::inet`);
  if (filter.server_port !== undefined) where.push(`${s}.port = ${p.add(filter.server_port)}::int4`);
  if (filter.transport !== undefined) where.push(`${s}.transport = ${p.add(filter.transport)}`);
  return where;
}

/** ' AND …' narrowing to the groups `keys` (signature or server ids), or '' without keys. */
function keysWhere(alias: string, grouping: Grouping, keys: readonly bigint[] | undefined, p: Params): string {
  if (keys === undefined) return '';
  if (grouping.by === 'bucket') throw new Error('keys apply to signature or server groups');
  return ` AND ${alias}.${grouping.by === 'signature' ? 'signature_id' : 'server_id'} = ANY(${p.add(`{${keys.join(',')}}`)}::int8[])`;
}

/** The rows of the spans (of one table): one range per span, ORed. */
function timeWhere(alias: string, spans: readonly Span[], p: Params): string {
  const one = (x: Span): string => {
    const where = [`${alias}.interval_start >= ${p.add(isoFromSeconds(x.start_s))}::timestamptz`, `${alias}.interval_start < ${p.add(isoFromSeconds(x.end_s))}::timestamptz`];
    if (x.level !== 0) where.push(`${alias}.interval_s = ${p.add(x.level)}::int4`);
    return where.join(' AND ');
  };
  return spans.length === 1 ? one(spans[0]!) : `(${spans.map((x) => `(${one(x)})`).join(' OR ')})`;
}

/** ' AND …' for the filter's dimensions, or ''. */
function dimensionWhere(alias: string, filter: StoreFilter, p: Params): string {
  const where: string[] = [];
  // Dimension filters become id lists (ANY(ARRAY(subquery))), so that the facts' keys
  // (server_id, signature_id, …) are searched in the index: a signature's rows among a month
  // of rows are found by one index descent per server instead of a scan of the window.
  const servers = serverWhere('s', filter, p);
  const signatures: string[] = [];
  if (filter.protocol !== undefined) signatures.push(`g.protocol = ${p.add(filter.protocol)}`);
  if (filter.signature !== undefined) signatures.push(`g.name = ${p.add(filter.signature)}`);
  if (servers.length > 0 || filter.signature !== undefined) {
    where.push(`${alias}.server_id = ANY(ARRAY(SELECT s.server_id FROM servers s${servers.length ? ` WHERE ${servers.join(' AND ')}` : ''}))`);
  }
  if (signatures.length > 0) where.push(`${alias}.signature_id = ANY(ARRAY(SELECT g.signature_id FROM signatures g WHERE ${signatures.join(' AND ')}))`);
  return where.map((w) => ` AND ${w}`).join('');
}
