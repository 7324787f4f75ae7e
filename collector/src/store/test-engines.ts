// Test support (not a test file): the two engines every store test runs against, and a
// deterministic batch generator. PostgreSQL: 127.0.0.1:5432, trust auth, user postgres (override
// with WIRETIME_TEST_PG=postgres://…/postgres); each call to `fresh()` creates its own database
// wiretime_test_<random> and `cleanup()` drops it. When PostgreSQL is not reachable the tests
// FAIL with a message that says so: they are never skipped.
import { randomBytes } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import pg from 'pg';
import { IngestRequestSchema, type IngestRequest } from '../../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import { SummarySchema, type Summary } from '../../../proto/src/gen/wiretime/v1/summary_pb.ts';
import { PgSql } from './pg-sql.ts';
import { PgliteSql } from './pglite-sql.ts';
import type { Queryable, Row, Sql } from './sql.ts';

export const PG_ADMIN_URL = process.env.WIRETIME_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface Engine {
  name: 'postgresql' | 'pglite';
  /** A new, empty database on this engine. */
  fresh(): Promise<Sql>;
  /** For PostgreSQL: the URL of a new empty database (SummaryStore.open, concurrent pools). */
  freshUrl?(): Promise<string>;
  /** Closes what fresh() opened and drops the databases it created. */
  cleanup(): Promise<void>;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 5000 });
  try {
    await c.connect();
  } catch (err) {
    throw new Error(`PostgreSQL is not reachable at ${PG_ADMIN_URL} (${(err as Error).message}). ` +
      'The collector store tests need a real PostgreSQL 15 with trust auth for user postgres (CI starts one); ' +
      'start it, or point WIRETIME_TEST_PG at one.');
  }
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export function postgresEngine(): Engine {
  const dbs: string[] = [];
  const open: Sql[] = [];
  const freshUrl = async (): Promise<string> => {
    const name = `wiretime_test_${randomBytes(6).toString('hex')}`;
    await admin((c) => c.query(`CREATE DATABASE ${name}`)); // name is ours: [a-z0-9_]
    dbs.push(name);
    const u = new URL(PG_ADMIN_URL);
    u.pathname = `/${name}`;
    return u.toString();
  };
  return {
    name: 'postgresql',
    freshUrl,
    async fresh() {
      const sql = new PgSql(await freshUrl());
      open.push(sql);
      return sql;
    },
    async cleanup() {
      for (const s of open.splice(0)) await s.close().catch(() => {});
      const names = dbs.splice(0);
      if (names.length) await admin(async (c) => { for (const n of names) await c.query(`DROP DATABASE IF EXISTS ${n} WITH (FORCE)`); });
    },
  };
}

export function pgliteEngine(): Engine {
  const open: Sql[] = [];
  return {
    name: 'pglite',
    async fresh() {
      const sql = await PgliteSql.open(null);
      open.push(sql);
      return sql;
    },
    async cleanup() {
      for (const s of open.splice(0)) await s.close().catch(() => {});
    },
  };
}

/** The shared table that drives every store test on both engines. */
export const ENGINES: (() => Engine)[] = [postgresEngine, pgliteEngine];

/** Records every statement and its parameter count (to check chunking). */
export interface Recorded { text: string; params: number }
export function recording(sql: Sql, log: Recorded[]): Sql {
  const wrap = (q: Queryable): Queryable => ({
    query<R extends Row = Row>(text: string, params: readonly unknown[] = []) {
      log.push({ text, params: params.length });
      return q.query<R>(text, params);
    },
    exec(text: string) {
      log.push({ text, params: 0 });
      return q.exec(text);
    },
  });
  const outer = wrap(sql);
  return {
    engine: sql.engine,
    query: outer.query,
    exec: outer.exec,
    transaction: (fn) => sql.transaction((tx) => fn(wrap(tx))),
    close: () => sql.close(),
  };
}

export const TIMING = ['ttfr_ns', 'ttlr_ns', 'rtt_ns'] as const;

/** Summary number i of a batch: deterministic, distinct keys for distinct i. */
export function makeSummary(i: number, startS: bigint = 1_714_521_600n /* 2024-05-01T00:00:00Z */): Summary {
  const sketch = (salt: number) => Uint8Array.from({ length: 24 + (i % 7) }, (_, k) => (i * 31 + k * 7 + salt) & 0xff);
  return create(SummarySchema, {
    intervalStartS: startS + BigInt(300 * (i % 12)),
    intervalS: 300,
    server: i % 5 === 4 ? `2001:db8::${(i % 97).toString(16)}` : `10.0.${(i >> 8) & 0xff}.${i & 0xff}`,
    serverPort: i % 3 === 0 ? 443 : 5432,
    transport: i % 11 === 10 ? 'udp' : 'tcp',
    protocol: i % 3 === 0 ? 'http' : 'pgsql',
    signature: `SIG_${i % 13}`,
    count: BigInt(1000 + i),
    partial: i % 4 === 1,
    outcomes: [
      { outcome: 'ok', count: BigInt(990 + i) },
      { outcome: 'error', count: 10n },
    ],
    metrics: [
      ...TIMING.map((name, k) => ({
        name,
        count: BigInt(1000 + i),
        sum: 1.25e9 * (k + 1) + i * 0.5,
        min: 1000 + k + i,
        max: 2.5e8 + i * 3.3,
        sketch: sketch(k),
        negativeClamped: BigInt(k === 0 ? i % 3 : 0),
      })),
      { name: 'response_bytes', count: BigInt(1000 + i), sum: 123456.75 + i, min: 0, max: 65535, sketch: new Uint8Array(0), negativeClamped: 0n },
    ],
  });
}

/**
 * A batch of n summaries with distinct keys (server address i and interval i % 12 keep
 * i → key one-to-one for i < 65 536).
 */
export function makeBatch(sensorId: string, sequence: bigint, n: number, first = 0, startS?: bigint, streamId = 'stream-1'): IngestRequest {
  return create(IngestRequestSchema, {
    sensorId,
    streamId,
    sequence,
    summaries: Array.from({ length: n }, (_, k) => makeSummary(first + k, startS)),
    stats: { packets: 1_000_000n + (sequence % 1000n), bytes: 9_000_000n, kernelDrops: 3n, interfaceDrops: 0n, flowsActive: 42n, transactions: 500n, spoolBytes: 0n, captureTimeS: 1_714_522_000n },
  });
}

export async function count(sql: Sql, table: string, where = 'true', params: unknown[] = []): Promise<number> {
  const rows = await sql.query<{ n: bigint }>(`SELECT count(*) AS n FROM ${table} WHERE ${where}`, params);
  return Number(rows[0]!.n);
}
