/**
 * The reporter's query latency on a month of data; `npm run bench` runs it last (bench/run.ts,
 * `--no-reporter-queries` skips it), or on its own:
 *
 *   node --import tsx bench/reporter-queries.ts [--days 30] [--signatures 1000] [--runs 20]
 *        [--admin-url postgres://postgres@127.0.0.1:5432/postgres] [--keep] [--database NAME]
 *
 * 1. Creates a fresh PostgreSQL database wiretime_bench_<random> (dropped at the end unless
 *    --keep), runs the collector's migrations. `--database NAME` reuses a database a
 *    previous `--keep` run loaded with the same --days and --signatures (skips 1 and 2).
 * 2. Loads --days days of 5-minute level-1 rows for --signatures signatures on 100 servers
 *    (30 × 288 × 1000 = 8.64 million rows, and as many ttfr_ns sketches) with INSERT … SELECT
 *    over generate_series, one day per statement. Each signature has its own latency: a level
 *    drawn log-uniform over three decades (0.3 ms … 300 ms) in 64 steps of 11.6 %, moved by
 *    −2…+2 steps (−20 %…+25 %) from day to day. The sketches are real ones made by the sensor's
 *    sketch code from seeded log-normal durations around the level (σ = 0.5, and 0.5 % of the
 *    calls 20× slower: retries and timeouts), a pool of 4 per level. Hourly and daily rows are
 *    exactly what the roll-up makes of those level-1 rows: counts, sums, min, max, the merged
 *    sketches (12 and 288 of them), their p50/p90/p95/p99 and their upper percentiles (the
 *    upper_percentiles column of migration 005), and the day blocks of 2, 4, … 64 days
 *    (summaries_blocks, migration 005: every block holding a loaded day, with the merge of its
 *    loaded days' daily rows, blocks reaching past the data included) — all exactly what
 *    collector/src/rollup.ts makes of those rows: the loader takes the percentiles from the same
 *    functions (quantiles, upperPercentiles) and the block lengths from BLOCK_DAYS, and merges
 *    the same daily sketches. rollup_state and rollup_day_blocks say all levels are rolled up
 *    to the end of the data and nothing is deleted (the state a month after PasTmon's --age=32
 *    roll-up would start): level 1 still answers fine-grained windows. Change what the roll-up
 *    stores and this loader must change with it (then load afresh: a kept database holds the
 *    old rows).
 * 3. Starts the reporter on port 0 and times, over gRPC, --runs calls each (after 3 warm-ups):
 *    a 30-day series of one signature's p95 (auto resolution), the top 10 signatures by p95
 *    over 30 days (and by p50, p90 and p99), a compare of the first and second half of the
 *    month by p95, and for reference a 1-day series from level 1 and a top 10 by avg. Prints
 *    p50/p95 per query (target: p95 < 100 ms).
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createChannel, createClient } from 'nice-grpc';
import { GroupBy, ReportService, Statistic } from '../proto/src/gen/wiretime/v1/report_pb.ts';
import { niceService } from '../proto/src/nice-grpc.ts';
import { BLOCK_DAYS, upperPercentiles } from '../collector/src/rollup.ts';
import { migrate } from '../collector/src/store/migrate.ts';
import { PgSql } from '../collector/src/store/pg-sql.ts';
import { encodeSketchBytes, newSketch, quantiles, type Sketch } from '../sensor/src/aggregate/sketch.ts';
import { startReporter } from '../reporter/src/server.ts';
import { ReportStore } from '../reporter/src/store/report-store.ts';
import { Rng } from './prng.ts';

/** How `reporterQueriesBench` runs; every field has the CLI's default. */
export interface ReporterQueriesOptions {
  days?: number;
  signatures?: number;
  /** timed calls per query (after 3 warm-ups) */
  runs?: number;
  /** a PostgreSQL URL allowed to CREATE and DROP DATABASE */
  admin_url?: string;
  /** keep the database (its name goes to stderr) */
  keep?: boolean;
  /** reuse a database a previous `keep` run loaded with the same days and signatures */
  database?: string;
}

/** One query's latencies, ms. */
export interface ReporterQueryResult {
  query: string;
  p50_ms: number;
  p95_ms: number;
  target_p95_ms: number;
  runs_ms: number[];
}

export interface ReporterQueriesResult {
  days: number;
  signatures: number;
  level1_rows: number;
  /** pg_database_size after loading; null when a kept database was reused */
  database_bytes: number | null;
  load_s: number | null;
  queries: ReporterQueryResult[];
}

const SERVERS = 100;
/** latency levels of the signatures: 0.3 ms × STEP^i, i < LEVELS, STEP^(LEVELS−1) = 1000 */
const LEVELS = 64;
const STEP = 1000 ** (1 / (LEVELS - 1));
/** day-to-day moves of a signature's level, in steps (each way) */
const DRIFT = 2;
/** 5-minute sketches per level; interval t of hour h uses kind (h + t) % VARIANTS */
const VARIANTS = 4;
const DAY_S = 86_400;
/** the data ends at this midnight (2026-02-01T00:00:00Z) */
const END_S = 1_769_904_000;
const TARGET_P95_MS = 100;

function progress(text: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`);
}

async function admin(url: string, text: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

/** A metric being merged: exact count/sum/min/max beside the sketch, as the roll-up keeps them. */
interface Merged { count: number; sum: number; min: number; max: number; sketch: Sketch }

function mergeAll(parts: readonly Merged[]): Merged {
  const out: Merged = { count: 0, sum: 0, min: Infinity, max: -Infinity, sketch: newSketch() };
  for (const p of parts) {
    out.count += p.count;
    out.sum += p.sum;
    out.min = Math.min(out.min, p.min);
    out.max = Math.max(out.max, p.max);
    out.sketch.merge(p.sketch);
  }
  return out;
}

/** The metrics jsonb of a row: level-2 rows carry the percentiles of their sketch (collector/src/rollup.ts). */
function metricsJson(m: Merged, level2: boolean): string {
  const base = { count: m.count, sum: m.sum, min: m.min, max: m.max, negative_clamped: 0 };
  return JSON.stringify({ ttfr_ns: level2 ? { ...base, ...quantiles(m.sketch, { min: m.min, max: m.max }) } : base });
}

/** The upper_percentiles jsonb of a level-2 row or day block (migration 005), as collector/src/rollup.ts writes it. */
function upperJson(m: Merged): string {
  return JSON.stringify({ ttfr_ns: upperPercentiles(m.sketch, m.min, m.max) });
}

/** Kind (level, variant): a 5-minute sketch, and the hourly and daily rows its level rolls up to. */
interface Kind { level: number; variant: number; l1: Merged; hourly: Merged; daily: Merged }

function makeKinds(): Kind[] {
  const rng = new Rng(7);
  const kinds: Kind[] = [];
  for (let level = 0; level < LEVELS + 2 * DRIFT; level++) {
    const typical_ns = 0.3e6 * STEP ** (level - DRIFT);
    const l1: Merged[] = [];
    for (let v = 0; v < VARIANTS; v++) {
      const m: Merged = { count: 20 + rng.int(0, 40), sum: 0, min: Infinity, max: -Infinity, sketch: newSketch() };
      for (let i = 0; i < m.count; i++) {
        const x = Math.round(typical_ns * Math.exp(0.5 * rng.normal()) * (rng.chance(0.005) ? 20 : 1));
        m.sketch.accept(x);
        m.sum += x;
        m.min = Math.min(m.min, x);
        m.max = Math.max(m.max, x);
      }
      l1.push(m);
    }
    // the hour starting with variant w holds the 12 intervals (w + t) % VARIANTS, t < 12
    const hourly = l1.map((_, w) => mergeAll(Array.from({ length: 12 }, (_, t) => l1[(w + t) % VARIANTS]!)));
    const daily = mergeAll(Array.from({ length: 24 }, (_, h) => hourly[h % VARIANTS]!));
    for (let v = 0; v < VARIANTS; v++) kinds.push({ level, variant: v, l1: l1[v]!, hourly: hourly[v]!, daily });
  }
  return kinds;
}

async function load(sql: PgSql, days: number, signatures: number): Promise<void> {
  const start_s = END_S - days * DAY_S;
  await migrate(sql);
  const kinds = makeKinds();
  const size = (f: (k: Kind) => Merged) => kinds.map((k) => encodeSketchBytes(f(k).sketch).length).sort((a, b) => a - b)[kinds.length >> 1];
  progress(`${kinds.length} kinds of sketches, median bytes: 5-min ${size((k) => k.l1)}, hourly ${size((k) => k.hourly)}, daily ${size((k) => k.daily)}`);
  await sql.exec(`CREATE TABLE bench_kinds (level int, v int, count int8, metrics jsonb, sketch bytea, h_count int8, h_metrics jsonb, h_sketch bytea,
    d_count int8, d_metrics jsonb, d_sketch bytea, h_upper jsonb, d_upper jsonb, PRIMARY KEY (level, v))`);
  for (const k of kinds) {
    await sql.query('INSERT INTO bench_kinds VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7::jsonb, $8, $9, $10::jsonb, $11, $12::jsonb, $13::jsonb)', [
      k.level, k.variant,
      k.l1.count, metricsJson(k.l1, false), encodeSketchBytes(k.l1.sketch),
      k.hourly.count, metricsJson(k.hourly, true), encodeSketchBytes(k.hourly.sketch),
      k.daily.count, metricsJson(k.daily, true), encodeSketchBytes(k.daily.sketch),
      upperJson(k.hourly), upperJson(k.daily),
    ]);
  }
  // each signature's level per day
  const levels = signatureLevels(days, signatures);
  await sql.exec('CREATE TABLE bench_levels (sig int, day int, level int, PRIMARY KEY (day, sig))');
  for (let d = 0; d < days; d++) {
    await sql.query('INSERT INTO bench_levels SELECT g, $1, l FROM unnest($2::int[]) WITH ORDINALITY AS x (l, g)', [d, levels[d]]);
  }
  await sql.query(`INSERT INTO sensors (sensor_id) VALUES ('bench')`);
  await sql.query(`INSERT INTO servers (server_id, address, port, transport) SELECT i, ('10.9.' || (i / 256) || '.' || (i % 256))::inet, 80, 'tcp' FROM generate_series(1, $1::int) i`, [SERVERS]);
  await sql.query(`INSERT INTO signatures (signature_id, protocol, name) SELECT i, 'http', 'SIG_' || lpad(i::text, 4, '0') FROM generate_series(1, $1::int) i`, [signatures]);
  for (let d = 0; d < days; d++) {
    const day = new Date((start_s + d * DAY_S) * 1000).toISOString();
    await sql.query('SELECT wiretime_ensure_day_partition($1::timestamptz)', [day]);
    const t0 = Date.now();
    const server = `1 + (g - 1) % ${SERVERS}`;
    const l1 = `FROM generate_series(1, $2::int) g CROSS JOIN generate_series(0, 287) t JOIN bench_levels s ON s.day = $3 AND s.sig = g
      JOIN bench_kinds b ON b.level = s.level AND b.v = (t / 12 + t % 12) % ${VARIANTS}`;
    const p = [day, signatures, d];
    await sql.query(
      `INSERT INTO summaries_l1 (server_id, signature_id, interval_start, sensor_id, interval_s, count, partial, outcomes, metrics)
       SELECT ${server}, g, $1::timestamptz + t * interval '300 s', 'bench', 300, b.count, false, jsonb_build_object('ok', b.count), b.metrics ${l1}`, p);
    await sql.query(
      `INSERT INTO summary_sketches (server_id, signature_id, interval_start, sensor_id, interval_s, metric, sketch)
       SELECT ${server}, g, $1::timestamptz + t * interval '300 s', 'bench', 300, 'ttfr_ns', b.sketch ${l1}`, p);
    const hourly = `FROM generate_series(1, $2::int) g CROSS JOIN generate_series(0, 23) h JOIN bench_levels s ON s.day = $3 AND s.sig = g
      JOIN bench_kinds b ON b.level = s.level AND b.v = h % ${VARIANTS}`;
    await sql.query(
      `INSERT INTO summaries_l2 (server_id, signature_id, interval_s, interval_start, count, outcomes, metrics, source_rows, upper_percentiles)
       SELECT ${server}, g, 3600, $1::timestamptz + h * interval '1 hour', b.h_count, jsonb_build_object('ok', b.h_count), b.h_metrics, 12, b.h_upper ${hourly}`, p);
    await sql.query(
      `INSERT INTO summary_sketches_l2 (server_id, signature_id, interval_s, interval_start, metric, sketch)
       SELECT ${server}, g, 3600, $1::timestamptz + h * interval '1 hour', 'ttfr_ns', b.h_sketch ${hourly}`, p);
    const daily = `FROM generate_series(1, $2::int) g JOIN bench_levels s ON s.day = $3 AND s.sig = g JOIN bench_kinds b ON b.level = s.level AND b.v = 0`;
    await sql.query(
      `INSERT INTO summaries_l2 (server_id, signature_id, interval_s, interval_start, count, outcomes, metrics, source_rows, upper_percentiles)
       SELECT ${server}, g, 86400, $1::timestamptz, b.d_count, jsonb_build_object('ok', b.d_count), b.d_metrics, 24, b.d_upper ${daily}`, p);
    await sql.query(
      `INSERT INTO summary_sketches_l2 (server_id, signature_id, interval_s, interval_start, metric, sketch)
       SELECT ${server}, g, 86400, $1::timestamptz, 'ttfr_ns', b.d_sketch ${daily}`, p);
    progress(`day ${d + 1}/${days} loaded (${signatures * 288} level-1 rows) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  await loadBlocks(sql, kinds, levels, start_s);
  const end = new Date(END_S * 1000).toISOString();
  await sql.query('UPDATE rollup_state SET rolled_until = $1::timestamptz, source_deleted_until = NULL', [end]);
  // as the roll-up leaves it on a database migrated before anything was rolled up
  await sql.query(`UPDATE rollup_day_blocks SET valid_from = '-infinity', rolled_until = $1::timestamptz`, [end]);
  await sql.exec('DROP TABLE bench_kinds');
  await sql.exec('DROP TABLE bench_levels');
  progress('VACUUM ANALYZE');
  await sql.exec('VACUUM ANALYZE');
}

/** Each signature's latency level per day (levels[day][signature − 1]), from a seeded PRNG. */
function signatureLevels(days: number, signatures: number): number[][] {
  const rng = new Rng(11);
  const base = Array.from({ length: signatures }, () => DRIFT + rng.int(0, LEVELS - 1));
  return Array.from({ length: days }, () => base.map((b) => b + rng.int(-DRIFT, DRIFT)));
}

/**
 * The day blocks (collector/src/migrations/005_day_blocks.sql) as the roll-up writes them while
 * it rolls the days up one by one: every block of BLOCK_DAYS days that holds a loaded day, with
 * the merge of its loaded days' daily rows (count, sum, min, max, merged sketch and its
 * percentiles, outcomes, source_rows = days merged), blocks reaching past the data included.
 */
async function loadBlocks(sql: PgSql, kinds: readonly Kind[], levels: readonly number[][], start_s: number): Promise<void> {
  const t0 = Date.now();
  const days = levels.length, signatures = levels[0]!.length;
  const first_day = start_s / DAY_S, end_day = first_day + days;
  const daily = (d: number, g: number): Merged => kinds[levels[d]![g]! * VARIANTS]!.daily;
  let rows = 0;
  for (const n of BLOCK_DAYS) {
    const facts: unknown[][] = [], sketches: unknown[][] = [];
    for (let b = Math.floor(first_day / n) * n; b < end_day; b += n) {
      const from = Math.max(b, first_day), to = Math.min(b + n, end_day);
      const start = new Date(b * DAY_S * 1000).toISOString();
      for (let g = 0; g < signatures; g++) {
        const m = mergeAll(Array.from({ length: to - from }, (_, i) => daily(from - first_day + i, g)));
        const server = 1 + (g % SERVERS);
        facts.push([server, g + 1, n * DAY_S, start, m.count, JSON.stringify({ ok: m.count }), metricsJson(m, true), to - from, upperJson(m)]);
        sketches.push([server, g + 1, n * DAY_S, start, 'ttfr_ns', encodeSketchBytes(m.sketch)]);
      }
    }
    for (let i = 0; i < facts.length; i += 1000) {
      const chunk = facts.slice(i, i + 1000);
      await sql.query(
        `INSERT INTO summaries_blocks (server_id, signature_id, interval_s, interval_start, count, outcomes, metrics, source_rows, upper_percentiles)
         SELECT * FROM unnest($1::int8[], $2::int8[], $3::int4[], $4::timestamptz[], $5::int8[], $6::jsonb[], $7::jsonb[], $8::int8[], $9::jsonb[])`,
        Array.from({ length: 9 }, (_, c) => chunk.map((r) => r[c])));
      const sk = sketches.slice(i, i + 1000);
      await sql.query(
        `INSERT INTO summary_sketches_blocks (server_id, signature_id, interval_s, interval_start, metric, sketch)
         SELECT * FROM unnest($1::int8[], $2::int8[], $3::int4[], $4::timestamptz[], $5::text[], $6::bytea[])`,
        Array.from({ length: 6 }, (_, c) => sk.map((r) => r[c])));
    }
    rows += facts.length;
  }
  progress(`day blocks: ${rows} rows of ${BLOCK_DAYS.join(', ')} days in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * Loads (or reuses) a month of data into a new PostgreSQL database, times the reporter's queries
 * over gRPC and drops the database (unless `keep`). Progress goes to stderr; returns the aligned
 * table and the figures.
 */
export async function reporterQueriesBench(options: ReporterQueriesOptions = {}): Promise<{ table: string; results: ReporterQueriesResult }> {
  const days = options.days ?? 30;
  const signatures = options.signatures ?? 1000;
  const runs = options.runs ?? 20;
  const admin_url = options.admin_url ?? process.env.WIRETIME_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  for (const [name, v] of [['days', days], ['signatures', signatures], ['runs', runs]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`reporter queries: ${name} must be a whole number ≥ 1, got ${v}`);
  }
  if (days < 2) throw new RangeError('reporter queries: days must be at least 2 (the compare query halves the window)');
  const start_s = END_S - days * DAY_S;
  const reuse = options.database !== undefined;
  if (reuse && !/^[a-z0-9_]+$/.test(options.database!)) throw new Error(`--database: ${options.database} is not a database name`);
  const name = options.database ?? `wiretime_bench_${randomBytes(5).toString('hex')}`;
  const u = new URL(admin_url);
  u.pathname = `/${name}`;
  const url = u.toString();
  const out: ReporterQueriesResult = { days, signatures, level1_rows: days * 288 * signatures, database_bytes: null, load_s: null, queries: [] };
  if (!reuse) {
    await admin(admin_url, `CREATE DATABASE ${name}`);
    progress(`database ${name}: ${days} days × 288 intervals × ${signatures} signatures = ${out.level1_rows.toLocaleString('en')} level-1 rows`);
    const writer = new PgSql(url);
    try {
      const t0 = Date.now();
      await load(writer, days, signatures);
      out.load_s = Math.round((Date.now() - t0) / 1000);
      progress(`loaded in ${out.load_s} s`);
      const size = await writer.query<{ s: string; b: string }>('SELECT pg_size_pretty(pg_database_size(current_database())) AS s, pg_database_size(current_database())::text AS b');
      out.database_bytes = Number(size[0]!.b);
      progress(`database size ${size[0]!.s}`);
    } catch (err) {
      await writer.close();
      if (!options.keep) await admin(admin_url, `DROP DATABASE ${name} WITH (FORCE)`);
      throw err;
    }
    await writer.close();
  }

  const store = await ReportStore.open(url, null);
  const reporter = await startReporter({ store, listen: '127.0.0.1:0', tokens: null });
  const channel = createChannel(`127.0.0.1:${reporter.port}`);
  const client = createClient(niceService(ReportService), channel);
  const month = { startS: BigInt(start_s), endS: BigInt(END_S) };
  const half = BigInt(start_s + Math.floor(days / 2) * DAY_S);
  const queries: [string, () => Promise<unknown>][] = [
    [`series ${days} d, one signature, p95 (auto resolution)`, () => client.getSeries({ filter: { protocol: 'http', signature: 'SIG_0042' }, metric: 'ttfr_ns', statistic: Statistic.P95, window: month })],
    [`top 10 signatures by p95, ${days} d`, () => client.getTop({ groupBy: GroupBy.SIGNATURE, metric: 'ttfr_ns', statistic: Statistic.P95, window: month, limit: 10 })],
    ...([['p50', Statistic.P50], ['p90', Statistic.P90], ['p99', Statistic.P99]] as const).map(([name, statistic]): [string, () => Promise<unknown>] =>
      [`top 10 signatures by ${name}, ${days} d`, () => client.getTop({ groupBy: GroupBy.SIGNATURE, metric: 'ttfr_ns', statistic, window: month, limit: 10 })]),
    [`compare p95 per signature, ${Math.floor(days / 2)} d vs ${days - Math.floor(days / 2)} d`, () => client.compare({ groupBy: GroupBy.SIGNATURE, metric: 'ttfr_ns', statistic: Statistic.P95, before: { startS: month.startS, endS: half }, after: { startS: half, endS: month.endS } })],
    ['series 1 d, one signature, p95 (level 1, 5 min)', () => client.getSeries({ filter: { signature: 'SIG_0042' }, metric: 'ttfr_ns', statistic: Statistic.P95, window: { startS: BigInt(END_S - DAY_S), endS: BigInt(END_S) } })],
    [`top 10 servers by avg, ${days} d`, () => client.getTop({ groupBy: GroupBy.SERVER, metric: 'ttfr_ns', statistic: Statistic.AVG, window: month, limit: 10 })],
  ];
  try {
    for (const [label, run] of queries) {
      for (let i = 0; i < 3; i++) await run();
      const ms: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t = process.hrtime.bigint();
        await run();
        ms.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      const sorted = [...ms].sort((a, b) => a - b);
      const round = (x: number) => Math.round(x * 10) / 10;
      out.queries.push({ query: label, p50_ms: round(percentile(sorted, 0.5)), p95_ms: round(percentile(sorted, 0.95)), target_p95_ms: TARGET_P95_MS, runs_ms: ms.map(round) });
      progress(`${label}: done`);
    }
  } finally {
    channel.close();
    await reporter.close();
    await store.close();
    if (!options.keep && !reuse) await admin(admin_url, `DROP DATABASE ${name} WITH (FORCE)`);
    else progress(`kept database ${name}`);
  }
  const headers = ['query', 'p50 ms', 'p95 ms', `p95 < ${TARGET_P95_MS} ms`];
  const rows = out.queries.map((q) => [q.query, q.p50_ms.toFixed(1), q.p95_ms.toFixed(1), q.p95_ms < TARGET_P95_MS ? 'yes' : 'NO']);
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const title = `Reporter queries: ${days} days × ${signatures} signatures (${out.level1_rows.toLocaleString('en')} level-1 rows, rolled up), ${runs} calls each`;
  return { table: `${title}\n${line(headers)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${rows.map(line).join('\n')}\n`, results: out };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values: args } = parseArgs({
    options: {
      days: { type: 'string', default: '30' },
      signatures: { type: 'string', default: '1000' },
      runs: { type: 'string', default: '20' },
      'admin-url': { type: 'string' },
      keep: { type: 'boolean', default: false },
      database: { type: 'string' },
    },
  });
  const { table } = await reporterQueriesBench({
    days: Number(args.days), signatures: Number(args.signatures), runs: Number(args.runs),
    ...(args['admin-url'] === undefined ? {} : { admin_url: args['admin-url'] }), keep: args.keep,
    ...(args.database === undefined ? {} : { database: args.database }),
  });
  process.stdout.write(table);
}
