/**
 * Summaries per second from a sensor's spool to rows in PostgreSQL, next to a plain COPY of
 * the same rows, in the same run and the same PostgreSQL (the target: ≥ 75% of COPY).
 *
 *   node --import tsx bench/ingest.ts [--summaries 50000] [--runs 3] [--json FILE]
 *   (npm run bench runs it at the end, with its defaults)
 *
 * The summaries have the shape the sensor ships for HTTP: 29 metrics, of which 8 timing
 * metrics with a DDSketch built by the sensor's own sketch code from log-normal durations;
 * in batches of about MAX_BATCH_BYTES (4 MiB), as the sensor cuts them (sensor/src/ship/batches.ts). Distinct keys: 500 servers × 100
 * signatures × 5-minute intervals.
 *
 * 1. sensor → rows: a fresh database; `wiretime collector --database URL` as a child process
 *    (migrations done before the clock starts); the sensor's Spool (fsync per append) and
 *    Shipper in this process. The clock runs from the first append to the last ack; then
 *    the rows are counted (they must equal the summaries, and 8 sketch rows each).
 * 2. plain COPY: the same rows, read back from that database as COPY text, copied with
 *    COPY FROM STDIN into the two fact tables of a second fresh database with the same schema
 *    and dimension rows (those are loaded before the clock starts). The clock covers both
 *    COPYs inside one transaction.
 * Each run uses new databases. Needs PostgreSQL on 127.0.0.1:5432 (trust), as the tests do;
 * without it the rows say so.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { create } from '@bufbuild/protobuf';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { SummarySchema, type Summary } from '../proto/src/gen/wiretime/v1/summary_pb.ts';
import { TRANSACTION_METRICS } from '../sensor/src/aggregate/metrics.ts';
import { encodeSketch, newSketch } from '../sensor/src/aggregate/sketch.ts';
import { Shipper } from '../sensor/src/ship/collector-client.ts';
import { Spool } from '../sensor/src/ship/spool.ts';
import { MAX_BATCH_BYTES, splitIntoBatches } from '../sensor/src/ship/batches.ts';
import { migrate } from '../collector/src/store/migrate.ts';
import { PgSql } from '../collector/src/store/pg-sql.ts';
import { Rng } from './prng.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ADMIN = process.env['WIRETIME_BENCH_PG'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TARGET_RATIO = 0.75;
const TIMING = 8;

export interface IngestBenchResult {
  available: boolean;
  message?: string;
  summaries: number;
  runs: { shipped_s: number; copy_s: number; rows: number; sketch_rows: number; cpu_us_per_summary: { sensor: number; collector: number; postgres: number } }[];
  shipped_per_s?: number;
  copy_per_s?: number;
  ratio?: number;
  target_ratio: number;
  verdict?: 'ok' | 'MISSED';
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** n summaries with distinct keys and realistic metric content. */
export function makeSummaries(n: number, seed = 1): Summary[] {
  return [...summaryStream(n, seed)];
}

/**
 * The same, made one at a time: the shipping run makes them as it goes, as a sensor does, so
 * that its process does not carry every summary of the run in its heap (which would make each
 * major garbage collection of the sensor side cost what no sensor pays).
 */
export function summaryStream(n: number, seed = 1): Generator<Summary> {
  const rng = new Rng(seed);
  const rnd = () => rng.next();
  // a pool of sketches (building one per summary would dominate the set-up, not the measurement)
  const sketches: Uint8Array[] = [];
  for (let k = 0; k < 64; k++) {
    const s = newSketch();
    const mu = 13 + rnd() * 5; // e^13 ns ≈ 0.4 ms … e^18 ≈ 66 ms
    for (let i = 0; i < 200; i++) {
      const u = Math.max(rnd(), 1e-12), v = rnd();
      s.accept(Math.exp(mu + 0.8 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)));
    }
    sketches.push(new Uint8Array(Buffer.from(encodeSketch(s), 'base64')));
  }
  // and a pool of metric sets, made before the first summary is asked for: making each set
  // per summary (29 metrics of random values) is the aggregator's work, not shipping's, and
  // cost ~40 µs of CPU per summary inside the clock, competing with the collector and
  // PostgreSQL for the same cores. The pool's size (a prime) does not divide the key cycle, so
  // neighbouring rows hold different values; each row is compressed on its own either way.
  const SETS = 1021;
  const sets: Pick<Summary, 'count' | 'outcomes' | 'metrics'>[] = [];
  for (let k = 0; k < SETS; k++) {
    const count = 3 + Math.floor(rnd() * 500);
    sets.push(create(SummarySchema, {
      count: BigInt(count),
      outcomes: [{ outcome: 'ok', count: BigInt(count - (k % 3)) }, { outcome: 'error', count: BigInt(k % 3) }],
      metrics: TRANSACTION_METRICS.map((name, m) => {
        const min = 1000 + rnd() * 1e5;
        return {
          name,
          count: BigInt(count),
          sum: (min + rnd() * 1e7) * count,
          min,
          max: min + rnd() * 5e7,
          sketch: m < TIMING ? sketches[(k * 7 + m) % sketches.length]! : new Uint8Array(0),
        };
      }),
    }));
  }
  return keyed(n, sets);
}

/** n summaries over the pool of metric sets, one per key. */
function* keyed(n: number, sets: readonly Pick<Summary, 'count' | 'outcomes' | 'metrics'>[]): Generator<Summary> {
  const base_s = 1_767_225_600n; // 2026-01-01T00:00:00Z
  for (let i = 0; i < n; i++) {
    const server = i % 500, signature = Math.floor(i / 500) % 100, interval = Math.floor(i / 50_000);
    const set = sets[i % sets.length]!;
    yield create(SummarySchema, {
      intervalStartS: base_s + BigInt(300 * interval),
      intervalS: 300,
      server: `10.1.${server >> 8}.${server & 0xff}`,
      serverPort: 80,
      transport: 'tcp',
      protocol: 'http',
      signature: `GET_/app/page${signature}.php`,
      count: set.count,
      outcomes: set.outcomes,
      metrics: set.metrics,
    });
  }
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: ADMIN });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function freshDatabase(tag: string): Promise<string> {
  const name = `wiretime_bench_${tag}_${process.pid}_${Date.now()}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const u = new URL(ADMIN);
  u.pathname = `/${name}`;
  return u.toString();
}

async function dropDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

function startCollector(url: string): Promise<{ child: ChildProcess; port: number }> {
  // WIRETIME_BENCH_COLLECTOR_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" profiles the collector
  const node_args = (process.env['WIRETIME_BENCH_COLLECTOR_NODE_ARGS'] ?? '').split(' ').filter((x) => x !== '');
  const child = spawn(process.execPath, [...node_args, join(ROOT, 'bin/wiretime.js'), 'collector', '--listen', '127.0.0.1:0', '--database', url, '--rollup-every', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  // WIRETIME_BENCH_COLLECTOR_LOG=FILE keeps the collector's output (e.g. with --trace-gc in the node args)
  const log_file = process.env['WIRETIME_BENCH_COLLECTOR_LOG'];
  if (log_file !== undefined) {
    child.stdout!.on('data', (d: Buffer) => appendFileSync(log_file, d));
    child.stderr!.on('data', (d: Buffer) => appendFileSync(log_file, d));
  }
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"listening":"[^"]*:(\d+)"/.exec(out);
      if (m !== null) resolve({ child, port: Number(m[1]) });
    });
    child.on('exit', (code) => reject(new Error(`collector exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`)));
  });
}

/**
 * Both timed parts start right after a checkpoint: otherwise the one the previous part's WAL
 * (about 1 GB per 50 000 summaries) brings on lands in either of them at random.
 */
async function checkpoint(): Promise<void> {
  try {
    await admin((c) => c.query('CHECKPOINT'));
  } catch (err) {
    // CHECKPOINT needs a superuser or pg_checkpoint: without it the runs are only noisier
    if (!checkpoint_warned) process.stderr.write(`  no CHECKPOINT before the timed parts (${(err as Error).message}): their times may include one\n`);
    checkpoint_warned = true;
  }
}
let checkpoint_warned = false;

async function count(url: string, table: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return Number((await c.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
  } finally {
    await c.end();
  }
}

/** CPU seconds (user + system) of a process, with those of its exited children (Linux /proc). */
function cpuSeconds(pid: number, children = false): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').slice(readFileSync(`/proc/${pid}/stat`, 'utf8').lastIndexOf(')') + 2).split(' ');
    // fields after the command: state is [0]; utime [11], stime [12], cutime [13], cstime [14]
    const t = Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0);
    return t / 100; // USER_HZ is 100 on Linux
  } catch {
    return 0;
  }
}

/** CPU seconds of every PostgreSQL process, exited backends included (through the postmaster). */
function postgresCpuSeconds(): number {
  let total = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let comm = '';
    try {
      comm = readFileSync(`/proc/${name}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (comm !== 'postgres') continue;
    const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    total += cpuSeconds(Number(name), ppid === 1); // the postmaster carries its exited children
  }
  return total;
}

export interface CpuSplit {
  sensor_s: number; collector_s: number; postgres_s: number;
  /** when the last batch was in the spool (the rest of the run is the collector catching up) */
  appended_s?: number;
}

/** sensor spool → Shipper → collector → PostgreSQL; seconds from first append to last ack. */
async function shipOnce(n: number, url: string, cpu: CpuSplit): Promise<number> {
  const sql = new PgSql(url, { max: 1 });
  await migrate(sql); // schema ready before the clock starts
  await sql.close();
  const { child, port } = await startCollector(url);
  const dir = mkdtempSync(join(tmpdir(), 'wiretime-bench-spool-'));
  const spool = await Spool.open({ dir });
  const shipper = new Shipper(spool, { address: `127.0.0.1:${port}`, sensor_id: 'bench', backoff_initial_ms: 20, backoff_max_ms: 200 });
  try {
    shipper.start();
    let batches = 0;
    const summaries = summaryStream(n); // its pools are made here, before the clock
    await checkpoint();
    const cpu0 = { sensor: process.cpuUsage(), collector: cpuSeconds(child.pid!), postgres: postgresCpuSeconds() };
    const t0 = process.hrtime.bigint();
    // summaries made and appended the way the sensor does (sensor-command.ts): an interval's
    // worth, cut into batches whose appends are chained on the spool while the next interval is
    // made (its capture does not wait for the fsyncs); at most one interval waits to be appended,
    // which bounds the heap as a sensor's is bounded by its interval
    let pending: Summary[] = [];
    let appending: Promise<void> = Promise.resolve();
    const flush = async () => {
      const interval = pending;
      pending = [];
      await appending;
      appending = (async () => {
        for (const b of splitIntoBatches(interval)) {
          await spool.append(b);
          batches++;
        }
      })();
    };
    for (const summary of summaries) {
      pending.push(summary);
      if (pending.length === 1000) await flush();
    }
    await flush();
    await appending;
    cpu.appended_s = Number(process.hrtime.bigint() - t0) / 1e9;
    while (spool.stats().acked_sequence < BigInt(batches)) await new Promise((r) => setTimeout(r, 2));
    const elapsed_s = Number(process.hrtime.bigint() - t0) / 1e9;
    const own = process.cpuUsage(cpu0.sensor);
    cpu.sensor_s = (own.user + own.system) / 1e6;
    cpu.collector_s = cpuSeconds(child.pid!) - cpu0.collector;
    cpu.postgres_s = postgresCpuSeconds() - cpu0.postgres;
    return elapsed_s;
  } finally {
    await shipper.stop();
    await spool.close();
    rmSync(dir, { recursive: true, force: true });
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

/** The fact rows of `from` copied by plain COPY into a fresh database with the same schema and dimensions; seconds of the two COPYs. */
async function copyOnce(from: string, to: string): Promise<number> {
  const dst_sql = new PgSql(to, { max: 1 });
  await migrate(dst_sql);
  await dst_sql.close();
  const src = new pg.Client({ connectionString: from });
  const dst = new pg.Client({ connectionString: to });
  await src.connect();
  await dst.connect();
  try {
    const dump = async (query: string): Promise<Buffer> => {
      const chunks: Buffer[] = [];
      await pipeline(src.query(copyTo(`COPY (${query}) TO STDOUT WITH (FORMAT binary)`)), new Writable({ write(c: Buffer, _e, cb) { chunks.push(c); cb(); } }));
      return Buffer.concat(chunks);
    };
    const load = (table: string, data: Buffer) => pipeline(Readable.from([data]), dst.query(copyFrom(`COPY ${table} FROM STDIN WITH (FORMAT binary)`)));
    // dimensions and the sensor first, not timed
    for (const t of ['sensors', 'servers', 'signatures']) await load(t, await dump(`SELECT * FROM ${t}`));
    // partitions exist in the source; create the same days here
    for (const r of (await src.query(`SELECT DISTINCT date_trunc('day', interval_start, 'UTC') AS d FROM summaries_l1`)).rows as { d: Date }[]) {
      await dst.query('SELECT wiretime_ensure_day_partition($1)', [r.d]);
    }
    const facts = await dump('SELECT * FROM summaries_l1');
    const sketches = await dump('SELECT * FROM summary_sketches');
    await checkpoint();
    const t0 = process.hrtime.bigint();
    await dst.query('BEGIN');
    await load('summaries_l1', facts);
    await load('summary_sketches', sketches);
    await dst.query('COMMIT');
    return Number(process.hrtime.bigint() - t0) / 1e9;
  } finally {
    await src.end();
    await dst.end();
  }
}

export async function ingestBench(n: number, runs: number): Promise<IngestBenchResult> {
  const result: IngestBenchResult = { available: true, summaries: n, runs: [], target_ratio: TARGET_RATIO };
  try {
    await admin((c) => c.query('SELECT 1'));
  } catch (err) {
    return { ...result, available: false, message: `PostgreSQL not reachable at ${ADMIN} (${(err as Error).message})` };
  }
  for (let r = 0; r < runs; r++) {
    const a = await freshDatabase('ship');
    const b = await freshDatabase('copy');
    try {
      const cpu: CpuSplit = { sensor_s: 0, collector_s: 0, postgres_s: 0 };
      const shipped_s = await shipOnce(n, a, cpu);
      const rows = await count(a, 'summaries_l1');
      const sketch_rows = await count(a, 'summary_sketches');
      if (rows !== n || sketch_rows !== n * TIMING) throw new Error(`stored ${rows} rows and ${sketch_rows} sketches for ${n} summaries`);
      const copy_s = await copyOnce(a, b);
      if ((await count(b, 'summaries_l1')) !== n) throw new Error('the COPY did not load every row');
      result.runs.push({ shipped_s, copy_s, rows, sketch_rows, cpu_us_per_summary: { sensor: cpu.sensor_s * 1e6 / n, collector: cpu.collector_s * 1e6 / n, postgres: cpu.postgres_s * 1e6 / n } });
      process.stderr.write(`  run ${r + 1}: shipped ${(n / shipped_s).toFixed(0)}/s, COPY ${(n / copy_s).toFixed(0)}/s; CPU µs per summary while shipping: ` +
        `sensor ${(cpu.sensor_s * 1e6 / n).toFixed(0)}, collector ${(cpu.collector_s * 1e6 / n).toFixed(0)}, PostgreSQL ${(cpu.postgres_s * 1e6 / n).toFixed(0)}; ` +
        `all in the spool after ${cpu.appended_s!.toFixed(1)} of ${shipped_s.toFixed(1)} s\n`);
    } finally {
      await dropDatabase(a);
      await dropDatabase(b);
    }
  }
  result.shipped_per_s = median(result.runs.map((x) => n / x.shipped_s));
  result.copy_per_s = median(result.runs.map((x) => n / x.copy_s));
  result.ratio = median(result.runs.map((x) => x.copy_s / x.shipped_s));
  result.verdict = result.ratio >= TARGET_RATIO ? 'ok' : 'MISSED';
  return result;
}

/** Table lines for the bench report. */
export function ingestTable(r: IngestBenchResult): string {
  if (!r.available) return `storage: ${r.message}`;
  const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
  const rows = [
    ['row', 'input', 'runs', 'median summaries/s', 'measured', 'target', 'verdict'],
    ['sensor spool -> gRPC -> collector -> PostgreSQL', `${fmt(r.summaries)} summaries`, String(r.runs.length), fmt(r.shipped_per_s!), `${(r.ratio! * 100).toFixed(0)}% of COPY`, `>= ${TARGET_RATIO * 100}% of COPY`, r.verdict!],
    ['plain COPY of the same rows (both fact tables)', `${fmt(r.summaries)} rows + ${fmt(r.summaries * TIMING)} sketches`, String(r.runs.length), fmt(r.copy_per_s!), '', '', ''],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((c, i) => (i >= 2 && i <= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line),
    `- storage: ${fmt(r.summaries)} HTTP summaries (29 metrics, 8 sketches each) in batches of about ${MAX_BATCH_BYTES / 2 ** 20} MiB as the sensor cuts them; ratio = median of per-run COPY time / shipping time; PostgreSQL on 127.0.0.1`].join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const argv = process.argv.slice(2);
  const opt = (name: string, def: number) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : def;
  };
  const jsonAt = argv.indexOf('--json');
  const r = await ingestBench(opt('--summaries', 50_000), opt('--runs', 3));
  console.log(ingestTable(r));
  if (jsonAt >= 0) writeFileSync(argv[jsonAt + 1]!, JSON.stringify(r, null, 2) + '\n');
  if (jsonAt < 0) console.log(JSON.stringify(r));
}
