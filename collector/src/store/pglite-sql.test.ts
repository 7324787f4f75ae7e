// PGlite specifics: a data directory survives a reopen, and its WAL stays bounded.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMigrations, migrate } from './migrate.ts';
import { PgliteSql } from './pglite-sql.ts';
import { SummaryStore } from './summary-store.ts';
import { count, makeBatch } from './test-engines.ts';

async function du(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? await du(p) : (await stat(p)).size;
  }
  return total;
}

const MB = 1024 * 1024;

describe('PGlite data directory', () => {
  const dirs: string[] = [];
  const tmp = async () => {
    const d = await mkdtemp(join(tmpdir(), 'wiretime-pglite-'));
    dirs.push(d);
    return d;
  };
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  test('reopening the directory keeps the data and the schema version', async () => {
    const dir = join(await tmp(), 'db'); // not created yet: PGlite initialises it
    const a = await SummaryStore.open(null, dir);
    const batch = makeBatch('sensor-a', 4n, 50);
    assert.equal(await a.storeBatch(batch), 'stored');
    await a.close();

    const b = await SummaryStore.open(null, dir);
    try {
      assert.equal(await b.lastSequence('sensor-a', 'stream-1'), 4n);
      assert.equal(await count(b.sql, 'summaries_l1'), 50);
      assert.equal(await count(b.sql, 'summary_sketches'), 150);
      assert.deepEqual(await b.sql.query('SELECT version, name FROM schema_migrations ORDER BY version'),
        (await loadMigrations()).map((m) => ({ version: m.version, name: m.name })));
      assert.equal(await b.storeBatch(batch), 'duplicate');
      assert.equal(await b.storeBatch(makeBatch('sensor-a', 5n, 50, 50)), 'stored');
      assert.equal(await count(b.sql, 'summaries_l1'), 100);
    } finally {
      await b.close();
    }
  });

  /** Stores 20 000 summaries (40 batches of 500, one day each); returns WAL written and pg_wal's peak size. */
  async function fill(dir: string, checkpointWalBytes?: number) {
    const sql = await PgliteSql.open(dir, checkpointWalBytes === undefined ? {} : { checkpointWalBytes });
    try {
      await migrate(sql);
      const store = new SummaryStore(sql);
      const walStart = await sql.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
      let peak = 0;
      for (let seq = 1; seq <= 40; seq++) {
        const day = 1_714_521_600n + BigInt(seq) * 86_400n;
        assert.equal(await store.storeBatch(makeBatch('sensor-a', BigInt(seq), 500, seq * 500, day)), 'stored');
        peak = Math.max(peak, await du(join(dir, 'pg_wal')));
      }
      assert.equal(await count(sql, 'summaries_l1'), 20_000);
      const w = await sql.query<{ n: number }>('SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::float8 AS n', [walStart[0]!.lsn]);
      return { written: w[0]!.n, peak, total: await du(dir), checkpoints: sql.checkpoints };
    } finally {
      await sql.close();
    }
  }

  test('pg_wal stays bounded while 20 000 summaries are stored (and grows without the checkpoints)', async () => {
    const bounded = await fill(await tmp());
    const unbounded = await fill(await tmp(), Number.POSITIVE_INFINITY);
    const f = (n: number) => `${(n / MB).toFixed(1)} MB`;
    console.log(`# 20 000 summaries, WAL written ${f(bounded.written)}: with checkpoints pg_wal peak ${f(bounded.peak)}, ` +
      `directory ${f(bounded.total)}, ${bounded.checkpoints} checkpoints; without: pg_wal peak ${f(unbounded.peak)}`);
    // Single-user mode never checkpoints on its own: without ours pg_wal holds all that was written.
    assert.equal(unbounded.checkpoints, 0);
    assert.ok(unbounded.peak >= unbounded.written, `unbounded pg_wal ${unbounded.peak} < written ${unbounded.written}`);
    // With them it stays within min_wal_size (32 MB) + the 16 MB trigger + the segment in use (16 MB),
    // below what was written.
    assert.ok(bounded.checkpoints >= 1, 'checkpoints ran');
    assert.ok(bounded.peak <= 64 * MB, `pg_wal peaked at ${bounded.peak} bytes`);
    assert.ok(bounded.peak < bounded.written, `pg_wal ${bounded.peak} not below WAL written ${bounded.written}`);
    assert.ok(bounded.peak < unbounded.peak, 'checkpoints made pg_wal smaller');
  });
});
