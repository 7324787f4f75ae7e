// `wiretime rollup` and the collector's scheduled roll-ups, end to end: real processes against a
// real PostgreSQL, data stored through SummaryStore, expected rows from the raw durations.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { migrate } from '../store/migrate.ts';
import { PgSql } from '../store/pg-sql.ts';
import { SummaryStore } from '../store/summary-store.ts';
import { count, postgresEngine } from '../store/test-engines.ts';
import { assertLevel, batchesOf, expectedRows, generate } from '../rollup-test-data.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const WIRETIME = `${ROOT}bin/wiretime.js`;
const T0 = Date.UTC(2024, 4, 1) / 1000;
// Data from 2024: with the wall clock as `now`, every hour and day of it is past the default ages.
const RAW = generate({ seed: 11, start_s: T0, hours: 30, sensors: ['sensor-a', 'sensor-b'], max_per_interval: 6 });

const engine = postgresEngine();

async function loaded(): Promise<{ url: string; sql: PgSql }> {
  const url = await engine.freshUrl!();
  const sql = new PgSql(url);
  await migrate(sql);
  const store = new SummaryStore(sql);
  for (const b of batchesOf(RAW)) assert.equal(await store.storeBatch(b), 'stored');
  return { url, sql };
}

describe('wiretime rollup and collector --rollup-every (PostgreSQL)', () => {
  after(() => engine.cleanup());

  test('wiretime rollup rolls up, prints one JSON line, and with --delete removes the merged rows', async () => {
    const { url, sql } = await loaded();
    try {
      const run = (...args: string[]) => spawnSync(process.execPath, [WIRETIME, 'rollup', '--database', url, ...args], { cwd: ROOT, encoding: 'utf8' });
      const r1 = run();
      assert.equal(r1.status, 0, r1.stderr);
      const lines = r1.stdout.trim().split('\n');
      assert.equal(lines.length, 1);
      const report = JSON.parse(lines[0]!);
      assert.equal(report.busy, false);
      assert.equal(report.hourly.source_rows_merged, RAW.length);
      // rolled up to the cutoff (now − 32 d, a UTC midnight), past the last day with data
      assert.match(report.daily.rolled_until, /T00:00:00\.000Z$/);
      assert.ok(Date.parse(report.daily.rolled_until) >= Date.parse('2024-05-03T00:00:00Z'));
      await assertLevel(sql, 3600, expectedRows(RAW, 3600, -Infinity, Infinity), (e) => e.intervals);
      await assertLevel(sql, 86_400, expectedRows(RAW, 86_400, -Infinity, Infinity));
      assert.equal(await count(sql, 'summaries_l1'), RAW.length);

      const r2 = run('--delete', '--retention-daily', 'keep');
      assert.equal(r2.status, 0, r2.stderr);
      const rep2 = JSON.parse(r2.stdout);
      assert.equal(rep2.hourly.source_rows_deleted, RAW.length);
      assert.equal(rep2.daily.source_rows_deleted, expectedRows(RAW, 3600, -Infinity, Infinity).size);
      assert.equal(await count(sql, 'summaries_l1'), 0);
      assert.equal(await count(sql, 'summary_sketches'), 0);
      assert.equal(await count(sql, 'summaries_l2', 'interval_s = 3600'), 0);
      await assertLevel(sql, 86_400, expectedRows(RAW, 86_400, -Infinity, Infinity));

      const bad = run('--hourly-after', 'soon');
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /--hourly-after "soon": expected a number with a unit/);
      const none = spawnSync(process.execPath, [WIRETIME, 'rollup'], { cwd: ROOT, encoding: 'utf8' });
      assert.equal(none.status, 2);
      assert.match(none.stderr, /give exactly one of --database URL and --data-dir DIR/);
    } finally {
      await sql.close();
    }
  });

  test('the collector rolls up at start, logs the report, and stops cleanly on SIGTERM', async () => {
    const { url, sql } = await loaded();
    try {
      const child = spawn(process.execPath, [WIRETIME, 'collector', '--listen', '127.0.0.1:0', '--database', url, '--rollup-every', '1h'], { cwd: ROOT });
      let stderr = '';
      const rolled = new Promise<Record<string, unknown>>((resolve, reject) => {
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          for (const line of stderr.split('\n')) {
            if (!line.startsWith('{')) continue;
            const ev = JSON.parse(line) as Record<string, unknown>;
            if (ev.event === 'rollup') resolve(ev);
            if (ev.event === 'rollup_failed') reject(new Error(line));
          }
        });
        child.once('exit', (code) => reject(new Error(`collector exited (${code}) before rolling up: ${stderr}`)));
      });
      const ev = await rolled;
      assert.equal((ev.hourly as { source_rows_merged: number }).source_rows_merged, RAW.length);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
      await assertLevel(sql, 3600, expectedRows(RAW, 3600, -Infinity, Infinity), (e) => e.intervals);
      await assertLevel(sql, 86_400, expectedRows(RAW, 86_400, -Infinity, Infinity));

      const bad = spawnSync(process.execPath, [WIRETIME, 'collector', '--database', url, '--rollup-every', '1h', '--retention-hourly', '1d'], { cwd: ROOT, encoding: 'utf8' });
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /--retention-hourly \(86400\) is less than --daily-after \(2764800\)/);
    } finally {
      await sql.close();
    }
  });
});
