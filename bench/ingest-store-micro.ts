// Micro-benchmark (not part of npm run bench): PostgreSQL's CPU per summary for the collector's
// storage of the ingest bench's batches (SummaryStore.storeRows, or storeBatch with `batch`), K
// batches at a time, measured on the database's own backends (/proc), then for a plain COPY of
// the same rows into a second database; other users of the server do not count.
//   node --import tsx bench/ingest-store-micro.ts [summaries] [K] [rows|batch]   (BATCH_BYTES=… to cut batches otherwise)
import { readFileSync } from 'node:fs';
import { create, toBinary } from '@bufbuild/protobuf';
import pg from 'pg';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { IngestRequestSchema } from '../proto/src/gen/wiretime/v1/ingest_pb.ts';
import { splitIntoBatches } from '../sensor/src/ship/batches.ts';
import { IngestRowsDecoder } from '../collector/src/store/ingest-rows.ts';
import { SummaryStore } from '../collector/src/store/summary-store.ts';
import { migrate } from '../collector/src/store/migrate.ts';
import { PgSql } from '../collector/src/store/pg-sql.ts';
import { summaryStream } from './ingest.ts';

const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';
const n = Number(process.argv[2] ?? 10000), K = Number(process.argv[3] ?? 2), variant = process.argv[4] ?? 'rows';
const name = `wiretime_exp_${process.pid}`;
const admin = new pg.Client({ connectionString: ADMIN }); await admin.connect();
await admin.query(`CREATE DATABASE ${name}`);
const url = `postgres://postgres@127.0.0.1:5432/${name}`;
try {
  const sql = new PgSql(url, { max: K + 1 });
  await migrate(sql);
  const store = new SummaryStore(sql);
  const batches = splitIntoBatches([...summaryStream(n)], 10_000, Number(process.env["BATCH_BYTES"] ?? 1 << 20)).map((summaries, i) =>
    Buffer.from(toBinary(IngestRequestSchema, create(IngestRequestSchema, { sensorId: 'bench', streamId: 'stream-1', sequence: BigInt(i + 1), summaries }))));
  // warm the pool's connections
  await Promise.all(Array.from({ length: K }, () => sql.query('SELECT 1')));
  const pids = (await admin.query(`SELECT pid FROM pg_stat_activity WHERE datname = $1`, [name])).rows.map((r) => r.pid as number);
  process.stderr.write(`backend pids ${pids.join(" ")}\n`);
  const cpu = () => pids.reduce((s, p) => { try { const f = readFileSync(`/proc/${p}/stat`, 'utf8'); const x = f.slice(f.lastIndexOf(')') + 2).split(' '); return s + Number(x[11]) + Number(x[12]); } catch { return s; } }, 0) / 100;
  const decoder = new IngestRowsDecoder();
  const c0 = cpu(), t0 = process.hrtime.bigint(); const p0 = process.cpuUsage();
  let next = 0;
  await Promise.all(Array.from({ length: K }, async () => {
    while (next < batches.length) {
      const b = batches[next++]!;
      const rows = decoder.decode(decoder.readHead(b)!)!;
      if (variant === 'batch') await store.storeBatch(rows.request()); else await store.storeRows(rows);
    }
  }));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9, pgcpu = cpu() - c0; const own = process.cpuUsage(p0);
  console.log(`${variant} K=${K}: ${(n / wall).toFixed(0)}/s wall, PG backends ${(pgcpu * 1e6 / n).toFixed(0)} µs/summary, client ${((own.user + own.system) / n).toFixed(0)} µs/summary, backends ${pids.length}`);
  await sql.close();
  // the plain COPY of the same rows into a second database, its backend's CPU
  const name2 = `${name}_copy`;
  await admin.query(`CREATE DATABASE ${name2}`);
  try {
    const url2 = `postgres://postgres@127.0.0.1:5432/${name2}`;
    const sql2 = new PgSql(url2, { max: 1 });
    await migrate(sql2);
    await sql2.close();
    const src = new pg.Client({ connectionString: url }), dst = new pg.Client({ connectionString: url2 });
    await src.connect();
    await dst.connect();
    const dump = async (q: string) => { const chunks: Buffer[] = []; await pipeline(src.query(copyTo(`COPY (${q}) TO STDOUT WITH (FORMAT binary)`)), new Writable({ write(c: Buffer, _e, cb) { chunks.push(c); cb(); } })); return Buffer.concat(chunks); };
    const load = (t: string, d: Buffer) => pipeline(Readable.from([d]), dst.query(copyFrom(`COPY ${t} FROM STDIN WITH (FORMAT binary)`)));
    for (const t of ['sensors', 'servers', 'signatures']) await load(t, await dump(`SELECT * FROM ${t}`));
    for (const r of (await src.query(`SELECT DISTINCT date_trunc('day', interval_start, 'UTC') AS d FROM summaries_l1`)).rows) await dst.query('SELECT wiretime_ensure_day_partition($1)', [r.d]);
    const facts = await dump('SELECT * FROM summaries_l1'), sk = await dump('SELECT * FROM summary_sketches');
    const pid = (await dst.query('SELECT pg_backend_pid() AS p')).rows[0].p as number;
    const one = () => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8'); const x = f.slice(f.lastIndexOf(')') + 2).split(' '); return (Number(x[11]) + Number(x[12])) / 100; };
    const c1 = one(), t1 = process.hrtime.bigint();
    await dst.query('BEGIN');
    await load('summaries_l1', facts);
    await load('summary_sketches', sk);
    await dst.query('COMMIT');
    const w1 = Number(process.hrtime.bigint() - t1) / 1e9;
    console.log(`plain COPY: ${(n / w1).toFixed(0)}/s wall, PG backend ${((one() - c1) * 1e6 / n).toFixed(0)} µs/summary`);
    await src.end();
    await dst.end();
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name2} WITH (FORCE)`);
  }
} finally {
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
}
