/**
 * The reporter's query latency on a month of data (not part of `npm run bench`):
 *
 *   node --import tsx bench/reporter-queries.ts [--days 30] [--signatures 1000] [--runs 20]
 *        [--admin-url postgres://postgres@127.0.0.1:5432/postgres] [--keep] [--database NAME]
 *
 * 1. Creates a fresh PostgreSQL database wiretime_bench_<random> (dropped at the end unless
 *    --keep), runs the collector's migrations. `--database NAME` reuses a database a
 *    previous `--keep` run loaded with the same --days and --signatures (skips 1 and 2).
 * 2. Loads --days days of 5-minute level-1 rows for --signatures signatures on 100 servers
 *    (30 × 288 × 1000 = 8.64 million rows, and as many ttfr_ns sketches) with INSERT … SELECT
 *    over generate_series, one day per statement. The sketches are real ones made by the
 *    sensor's sketch code from seeded log-normal durations (64 distinct ones, reused); hourly and
 *    daily level-2 rows are filled from level 1 with SQL (counts, sums, min, max) and carry
 *    sketches merged from 12 and 288 of those, so their sizes are realistic. rollup_state says
 *    both levels are rolled up to the end of the data and nothing is deleted (the state a month
 *    after PasTmon's --age=32 roll-up would start): level 1 still answers fine-grained windows.
 * 3. Starts the reporter on port 0 and times, over gRPC, --runs calls each (after 3 warm-ups):
 *    a 30-day series of one signature's p95 (auto resolution), the top 10 signatures by p95
 *    over 30 days, a compare of the first and second half of the month by p95, and for
 *    reference a 1-day series from level 1. Prints p50/p95 per query (target: p95 < 100 ms).
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createChannel, createClient } from 'nice-grpc';
import { GroupBy, ReportService, Statistic } from '../proto/src/gen/wiretime/v1/report_pb.ts';
import { niceService } from '../proto/src/nice-grpc.ts';
import { migrate } from '../collector/src/store/migrate.ts';
import { PgSql } from '../collector/src/store/pg-sql.ts';
import { encodeSketchBytes, mergeSketches, newSketch, type Sketch } from '../sensor/src/aggregate/sketch.ts';
import { startReporter } from '../reporter/src/server.ts';
import { ReportStore } from '../reporter/src/store/report-store.ts';
import { Rng } from './prng.ts';

const { values: args } = parseArgs({
  options: {
    days: { type: 'string', default: '30' },
    signatures: { type: 'string', default: '1000' },
    runs: { type: 'string', default: '20' },
    'admin-url': { type: 'string', default: process.env.WIRETIME_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    keep: { type: 'boolean', default: false },
    database: { type: 'string' },
  },
});
const DAYS = Number(args.days);
const SIGNATURES = Number(args.signatures);
const RUNS = Number(args.runs);
const SERVERS = 100;
const KINDS = 64;
const DAY_S = 86_400;
/** the data ends at this midnight (2026-02-01T00:00:00Z) */
const END_S = 1_769_904_000;
const START_S = END_S - DAYS * DAY_S;

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

/** 64 kinds of 5-minute sketches (20–60 log-normal durations around 1–9 ms), their stats, and merged hourly/daily ones. */
function makeSketches(): { l1: { sketch: Uint8Array; metrics: string; count: number }[]; hourly: Uint8Array[]; daily: Uint8Array[] } {
  const rng = new Rng(7);
  const base: Sketch[] = [];
  const l1 = [];
  for (let k = 0; k < KINDS; k++) {
    const s = newSketch();
    const n = 20 + Math.floor(rng.next() * 40);
    const scale = 1e6 * (1 + (k % 16) / 2);
    let sum = 0, min = Infinity, max = 0;
    for (let i = 0; i < n; i++) {
      const v = Math.round(scale * Math.exp(rng.next() * 2.5));
      s.accept(v);
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    base.push(s);
    l1.push({ sketch: encodeSketchBytes(s), count: n, metrics: JSON.stringify({ ttfr_ns: { count: n, sum, min, max, negative_clamped: 0 } }) });
  }
  const hourlySk: Sketch[] = [];
  for (let k = 0; k < KINDS; k++) {
    let m = newSketch();
    for (let i = 0; i < 12; i++) m = mergeSketches(m, base[(k + i) % KINDS]!);
    hourlySk.push(m);
  }
  const daily: Uint8Array[] = [];
  for (let k = 0; k < KINDS; k++) {
    let m = newSketch();
    for (let i = 0; i < 24; i++) m = mergeSketches(m, hourlySk[(k + i) % KINDS]!);
    daily.push(encodeSketchBytes(m));
  }
  return { l1, hourly: hourlySk.map(encodeSketchBytes), daily };
}

async function load(sql: PgSql): Promise<void> {
  await migrate(sql);
  const kinds = makeSketches();
  progress(`sketch bytes: 5-min ${kinds.l1[0]!.sketch.length}–${Math.max(...kinds.l1.map((k) => k.sketch.length))}, hourly ~${kinds.hourly[0]!.length}, daily ~${kinds.daily[0]!.length}`);
  await sql.exec(`CREATE TABLE bench_kinds (k int PRIMARY KEY, count int8, metrics jsonb, sketch bytea, hourly bytea, daily bytea)`);
  for (let k = 0; k < KINDS; k++) {
    await sql.query('INSERT INTO bench_kinds VALUES ($1, $2, $3::jsonb, $4, $5, $6)', [k, kinds.l1[k]!.count, kinds.l1[k]!.metrics, kinds.l1[k]!.sketch, kinds.hourly[k]!, kinds.daily[k]!]);
  }
  await sql.query(`INSERT INTO sensors (sensor_id) VALUES ('bench')`);
  await sql.query(`INSERT INTO servers (server_id, address, port, transport) SELECT i, ('10.9.' || (i / 256) || '.' || (i % 256))::inet, 80, 'tcp' FROM generate_series(1, $1::int) i`, [SERVERS]);
  await sql.query(`INSERT INTO signatures (signature_id, protocol, name) SELECT i, 'http', 'SIG_' || lpad(i::text, 4, '0') FROM generate_series(1, $1::int) i`, [SIGNATURES]);
  for (let d = 0; d < DAYS; d++) {
    const day = new Date((START_S + d * DAY_S) * 1000).toISOString();
    await sql.query('SELECT wiretime_ensure_day_partition($1::timestamptz)', [day]);
    const t0 = Date.now();
    // kind of a row: a per-signature base (its typical latency) plus a little variation over time
    const rows = `FROM generate_series(1, ${SIGNATURES}) g CROSS JOIN generate_series(0, 287) t JOIN bench_kinds b ON b.k = (g + t % 3) % ${KINDS}`;
    await sql.query(
      `INSERT INTO summaries_l1 (server_id, signature_id, interval_start, sensor_id, interval_s, count, partial, outcomes, metrics)
       SELECT 1 + (g - 1) % ${SERVERS}, g, $1::timestamptz + t * interval '300 s', 'bench', 300, b.count, false, jsonb_build_object('ok', b.count), b.metrics ${rows}`, [day]);
    await sql.query(
      `INSERT INTO summary_sketches (server_id, signature_id, interval_start, sensor_id, interval_s, metric, sketch)
       SELECT 1 + (g - 1) % ${SERVERS}, g, $1::timestamptz + t * interval '300 s', 'bench', 300, 'ttfr_ns', b.sketch ${rows}`, [day]);
    const m = (f: string, agg: string) => `'${f}', ${agg}((f.metrics -> 'ttfr_ns' ->> '${f}')::${f === 'count' ? 'int8' : 'float8'})`;
    await sql.query(
      `INSERT INTO summaries_l2 (server_id, signature_id, interval_s, interval_start, count, outcomes, metrics, source_rows)
       SELECT f.server_id, f.signature_id, 3600, date_trunc('hour', f.interval_start), sum(f.count), jsonb_build_object('ok', sum(f.count)),
              jsonb_build_object('ttfr_ns', jsonb_build_object(${m('count', 'sum')}, ${m('sum', 'sum')}, ${m('min', 'min')}, ${m('max', 'max')}, 'negative_clamped', 0)), count(*)
       FROM summaries_l1 f WHERE f.interval_start >= $1::timestamptz AND f.interval_start < $1::timestamptz + interval '1 day'
       GROUP BY 1, 2, 4`, [day]);
    await sql.query(
      `INSERT INTO summary_sketches_l2 (server_id, signature_id, interval_s, interval_start, metric, sketch)
       SELECT l.server_id, l.signature_id, 3600, l.interval_start, 'ttfr_ns', b.hourly
       FROM summaries_l2 l JOIN bench_kinds b ON b.k = (l.signature_id + extract(hour FROM l.interval_start AT TIME ZONE 'UTC')::int) % ${KINDS}
       WHERE l.interval_s = 3600 AND l.interval_start >= $1::timestamptz AND l.interval_start < $1::timestamptz + interval '1 day'`, [day]);
    const mm = (f: string, agg: string) => `'${f}', ${agg}((h.metrics -> 'ttfr_ns' ->> '${f}')::${f === 'count' ? 'int8' : 'float8'})`;
    await sql.query(
      `INSERT INTO summaries_l2 (server_id, signature_id, interval_s, interval_start, count, outcomes, metrics, source_rows)
       SELECT h.server_id, h.signature_id, 86400, $1::timestamptz, sum(h.count), jsonb_build_object('ok', sum(h.count)),
              jsonb_build_object('ttfr_ns', jsonb_build_object(${mm('count', 'sum')}, ${mm('sum', 'sum')}, ${mm('min', 'min')}, ${mm('max', 'max')}, 'negative_clamped', 0)), count(*)
       FROM summaries_l2 h WHERE h.interval_s = 3600 AND h.interval_start >= $1::timestamptz AND h.interval_start < $1::timestamptz + interval '1 day'
       GROUP BY 1, 2`, [day]);
    await sql.query(
      `INSERT INTO summary_sketches_l2 (server_id, signature_id, interval_s, interval_start, metric, sketch)
       SELECT l.server_id, l.signature_id, 86400, l.interval_start, 'ttfr_ns', b.daily
       FROM summaries_l2 l JOIN bench_kinds b ON b.k = l.signature_id % ${KINDS}
       WHERE l.interval_s = 86400 AND l.interval_start = $1::timestamptz`, [day]);
    progress(`day ${d + 1}/${DAYS} loaded (${SIGNATURES * 288} level-1 rows) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const end = new Date(END_S * 1000).toISOString();
  await sql.query('UPDATE rollup_state SET rolled_until = $1::timestamptz, source_deleted_until = NULL', [end]);
  await sql.exec('DROP TABLE bench_kinds');
  progress('VACUUM ANALYZE');
  await sql.exec('VACUUM ANALYZE');
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function main(): Promise<void> {
  const reuse = args.database !== undefined;
  if (reuse && !/^[a-z0-9_]+$/.test(args.database!)) throw new Error(`--database: ${args.database} is not a database name`);
  const name = args.database ?? `wiretime_bench_${randomBytes(5).toString('hex')}`;
  const u = new URL(args['admin-url']!);
  u.pathname = `/${name}`;
  const url = u.toString();
  if (!reuse) {
    await admin(args['admin-url']!, `CREATE DATABASE ${name}`);
    progress(`database ${name}: ${DAYS} days × 288 intervals × ${SIGNATURES} signatures = ${(DAYS * 288 * SIGNATURES).toLocaleString('en')} level-1 rows`);
    const writer = new PgSql(url);
    try {
      const t0 = Date.now();
      await load(writer);
      progress(`loaded in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      const size = await writer.query<{ s: string }>('SELECT pg_size_pretty(pg_database_size(current_database())) AS s');
      progress(`database size ${size[0]!.s}`);
    } finally {
      await writer.close();
    }
  }

  const store = await ReportStore.open(url, null);
  const reporter = await startReporter({ store, listen: '127.0.0.1:0', tokens: null });
  const channel = createChannel(`127.0.0.1:${reporter.port}`);
  const client = createClient(niceService(ReportService), channel);
  const month = { startS: BigInt(START_S), endS: BigInt(END_S) };
  const half = BigInt(START_S + Math.floor(DAYS / 2) * DAY_S);
  const queries: [string, () => Promise<unknown>][] = [
    [`series ${DAYS} d, one signature, p95 (auto resolution)`, () => client.getSeries({ filter: { protocol: 'http', signature: 'SIG_0042' }, metric: 'ttfr_ns', statistic: Statistic.P95, window: month })],
    [`top 10 signatures by p95, ${DAYS} d`, () => client.getTop({ groupBy: GroupBy.SIGNATURE, metric: 'ttfr_ns', statistic: Statistic.P95, window: month, limit: 10 })],
    [`compare p95 per signature, ${DAYS / 2} d vs ${DAYS / 2} d`, () => client.compare({ groupBy: GroupBy.SIGNATURE, metric: 'ttfr_ns', statistic: Statistic.P95, before: { startS: month.startS, endS: half }, after: { startS: half, endS: month.endS } })],
    ['series 1 d, one signature, p95 (level 1, 5 min)', () => client.getSeries({ filter: { signature: 'SIG_0042' }, metric: 'ttfr_ns', statistic: Statistic.P95, window: { startS: BigInt(END_S - DAY_S), endS: BigInt(END_S) } })],
    [`top 10 servers by avg, ${DAYS} d`, () => client.getTop({ groupBy: GroupBy.SERVER, metric: 'ttfr_ns', statistic: Statistic.AVG, window: month, limit: 10 })],
  ];
  const results: string[][] = [];
  try {
    for (const [label, run] of queries) {
      for (let i = 0; i < 3; i++) await run();
      const ms: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const t = process.hrtime.bigint();
        await run();
        ms.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      ms.sort((a, b) => a - b);
      results.push([label, percentile(ms, 0.5).toFixed(1), percentile(ms, 0.95).toFixed(1), percentile(ms, 0.95) < 100 ? 'yes' : 'NO']);
      progress(`${label}: done`);
    }
  } finally {
    channel.close();
    await reporter.close();
    await store.close();
    if (!args.keep && !reuse) await admin(args['admin-url']!, `DROP DATABASE ${name} WITH (FORCE)`);
    else progress(`kept database ${name}`);
  }
  const headers = ['query', 'p50 ms', 'p95 ms', 'p95 < 100 ms'];
  const widths = headers.map((h, i) => Math.max(h.length, ...results.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  process.stdout.write(`${line(headers)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${results.map(line).join('\n')}\n`);
}

await main();
