// Level-2 roll-ups on both engines (real PostgreSQL and PGlite), with level-1 data stored through
// SummaryStore.storeBatch and built from known raw durations; every expected value comes from those
// raw values (rollup-test-data.ts), not from the roll-up.
import { after, afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { migrate } from './store/migrate.ts';
import { PgSql } from './store/pg-sql.ts';
import type { Queryable, Row, Sql } from './store/sql.ts';
import { SummaryStore } from './store/summary-store.ts';
import { ENGINES, count, makeBatch } from './store/test-engines.ts';
import { runRollup, type RollupOptions } from './rollup.ts';
import { assertLevel, batchesOf, expectedRows, generate, KEYS, rankQuantile, type RawInterval } from './rollup-test-data.ts';

const H = 3600, D = 86_400;
const T0 = Date.UTC(2024, 4, 1) / 1000; // 2024-05-01T00:00:00Z
const iso = (s: number) => new Date(s * 1000).toISOString();

/** 2½ days of data from T0, two keys, two sensors. */
const RAW = generate({ seed: 42, start_s: T0, hours: 60, sensors: ['sensor-a', 'sensor-b'] });
/** now = T0 + 3 d 6 h; hourly after 1 d → hours before T0 + 2 d 6 h; daily after 2 d → the day T0. */
const NOW_S = T0 + 3 * D + 6 * H;
const HOURLY_UNTIL_S = T0 + 2 * D + 6 * H;
const DAILY_UNTIL_S = T0 + D;
const BASE: RollupOptions = {
  hourly_after_s: D, daily_after_s: 2 * D, delete_source: false,
  retention_l1_s: null, retention_hourly_s: null, retention_daily_s: null,
  now: new Date(NOW_S * 1000),
  // small units and pages, so that buckets span pages and runs span many units
  rows_per_unit: 150, page_rows: 40,
};

async function load(sql: Sql, raw: readonly RawInterval[], first_sequence = 1n, stream = 'stream-1'): Promise<void> {
  const store = new SummaryStore(sql);
  for (const b of batchesOf(raw, 200, first_sequence, stream)) assert.equal(await store.storeBatch(b), 'stored');
}

/** Hourly and daily rows must be exactly what `raw` gives for the rolled-up ranges. */
async function assertRolled(sql: Sql, raw: readonly RawInterval[], hourly_from_s = -Infinity): Promise<void> {
  await assertLevel(sql, H, expectedRows(raw, H, hourly_from_s, HOURLY_UNTIL_S), (e) => e.intervals);
  await assertLevel(sql, D, expectedRows(raw, D, -Infinity, DAILY_UNTIL_S));
}

/** Every row of the level-2 tables and rollup_state, for before/after comparisons. */
async function snapshot(sql: Sql): Promise<unknown> {
  return {
    l2: await sql.query('SELECT * FROM summaries_l2 ORDER BY server_id, signature_id, interval_s, interval_start'),
    sk: (await sql.query<{ sketch: Uint8Array }>('SELECT * FROM summary_sketches_l2 ORDER BY server_id, signature_id, interval_s, interval_start, metric'))
      .map((r) => ({ ...r, sketch: Buffer.from(r.sketch).toString('hex') })),
    state: await sql.query('SELECT interval_s, rolled_until, source_deleted_until FROM rollup_state ORDER BY interval_s'),
    l1: await count(sql, 'summaries_l1'),
    sketches: await count(sql, 'summary_sketches'),
  };
}

async function state(sql: Sql): Promise<Record<number, { rolled_until: string; deleted: string | null }>> {
  const rows = await sql.query<{ interval_s: number; r: string; d: string | null }>(
    `SELECT interval_s, to_char(rolled_until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') AS r,
            to_char(source_deleted_until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') AS d FROM rollup_state`);
  return Object.fromEntries(rows.map((x) => [x.interval_s, { rolled_until: x.r, deleted: x.d }]));
}
const isoS = (s: number) => iso(s).slice(0, 19);

/** The Sql with `before(tx, text)` run ahead of every statement inside a transaction. */
function intercepting(sql: Sql, before: (tx: Queryable, text: string) => Promise<void>): Sql {
  const wrap = (q: Queryable): Queryable => ({
    async query<R extends Row = Row>(text: string, params: readonly unknown[] = []) {
      await before(q, text);
      return q.query<R>(text, params);
    },
    exec: (text: string) => q.exec(text),
  });
  return { engine: sql.engine, query: (t, p) => sql.query(t, p), exec: (t) => sql.exec(t), transaction: (fn) => sql.transaction((tx) => fn(wrap(tx))), close: () => sql.close() };
}

/** The Sql with one statement made to fail: the `nth` (1-based) one inside a transaction whose text matches. */
function failing(sql: Sql, pattern: RegExp, nth: number): Sql {
  let seen = 0;
  return intercepting(sql, async (_tx, text) => {
    if (pattern.test(text) && ++seen === nth) throw new Error(`injected failure at ${pattern}`);
  });
}

/** Level-1 rows stored per (interval_start ≥ from). */
async function l1Count(sql: Sql, where = 'true', params: unknown[] = []): Promise<number> {
  return count(sql, 'summaries_l1', where, params);
}

for (const makeEngine of ENGINES) {
  const engine = makeEngine();
  describe(`roll-ups on ${engine.name}`, () => {
    afterEach(() => engine.cleanup());
    after(() => engine.cleanup());

    const fresh = async (): Promise<Sql> => {
      const sql = await engine.fresh();
      await migrate(sql);
      return sql;
    };

    test('hourly and daily rows hold exactly the raw values; percentiles within 1 %; a second run changes nothing', async () => {
      const sql = await fresh();
      await load(sql, RAW);
      const report = await runRollup(sql, BASE);
      assert.equal(report.busy, false);
      const rolled = RAW.filter((r) => r.start_s < HOURLY_UNTIL_S).length;
      assert.equal(report.hourly.source_rows_merged, rolled);
      assert.equal(report.hourly.rolled_until, iso(HOURLY_UNTIL_S));
      assert.equal(report.daily.rolled_until, iso(DAILY_UNTIL_S));
      await assertRolled(sql, RAW);
      // daily rows count the hourly rows they merged
      await assertLevel(sql, D, expectedRows(RAW, D, -Infinity, DAILY_UNTIL_S), (e) => [...expectedRows(RAW, H, e.start_s, e.start_s + D).values()].filter((x) => x.key === e.key).length);
      assert.equal(await l1Count(sql), RAW.length, 'level 1 kept without --delete');

      const before = await snapshot(sql);
      const again = await runRollup(sql, BASE);
      assert.equal(again.hourly.source_rows_merged + again.daily.source_rows_merged + again.late_rows_merged, 0);
      assert.equal(again.hourly.rows_written + again.daily.rows_written, 0);
      assert.deepEqual(await snapshot(sql), before);
    });

    test('an error inside a unit of work, then a new run: nothing lost, nothing counted twice (with and without --delete)', async () => {
      const points: [RegExp, number, boolean][] = [
        [/INSERT INTO summary_sketches_l2/, 3, false], // mid-unit, after earlier units committed
        [/UPDATE rollup_state/, 4, false], // last statement of a unit
        [/DELETE FROM summaries_l1 s/, 2, true], // deleting merged level-1 rows
        [/FROM summaries_l2 WHERE interval_start >= \$1::timestamptz AND interval_start < \$2::timestamptz AND interval_s = 3600/, 1, true], // daily roll-up reading hours
      ];
      const sql = await fresh();
      await load(sql, RAW);
      const clean = await snapshot(sql);
      for (const [pattern, nth, del] of points) {
        // back to the loaded state (level 1 as stored, nothing rolled up)
        await sql.transaction(async (tx) => {
          await tx.query('DELETE FROM summary_sketches_l2');
          await tx.query('DELETE FROM summaries_l2');
          await tx.query(`UPDATE rollup_state SET rolled_until = '-infinity', source_deleted_until = NULL`);
        });
        if ((await count(sql, 'summaries_l1')) !== RAW.length) {
          await sql.exec('DELETE FROM summary_sketches; DELETE FROM summaries_l1; DELETE FROM ingest_batches');
          await load(sql, RAW);
        }
        assert.deepEqual(await snapshot(sql), clean);
        const o = { ...BASE, delete_source: del };
        await assert.rejects(runRollup(failing(sql, pattern, nth), o), /injected failure/, String(pattern));
        await runRollup(sql, o);
        await assertRolled(sql, RAW, del ? DAILY_UNTIL_S : -Infinity);
        const st = await state(sql);
        assert.deepEqual(st[H], { rolled_until: isoS(HOURLY_UNTIL_S), deleted: del ? isoS(HOURLY_UNTIL_S) : null }, String(pattern));
        assert.equal(await l1Count(sql), del ? RAW.filter((r) => r.start_s >= HOURLY_UNTIL_S).length : RAW.length, String(pattern));
        const before = await snapshot(sql);
        await runRollup(sql, o);
        assert.deepEqual(await snapshot(sql), before, `re-run after ${pattern}`);
      }
    });

    test('late level-1 rows (older than rolled_until) are counted once, in hours and in days already rolled up', async () => {
      const sql = await fresh();
      await load(sql, RAW);
      await runRollup(sql, BASE);
      // A third sensor replays its spool: intervals in the rolled-up day T0, in rolled-up hours of
      // the next day, and in hours not rolled up yet.
      const late = generate({ seed: 7, start_s: T0 + 20 * H, hours: 40, sensors: ['sensor-late'] });
      await load(sql, late, 1n, 'late');
      const queued = late.filter((r) => r.start_s < HOURLY_UNTIL_S).length;
      assert.equal(await count(sql, 'rollup_late_l1'), queued, 'the trigger queued exactly the late rows');
      const report = await runRollup(sql, BASE);
      assert.equal(report.late_rows_merged, queued);
      assert.equal(await count(sql, 'rollup_late_l1'), 0);
      const all = [...RAW, ...late];
      await assertLevel(sql, H, expectedRows(all, H, -Infinity, HOURLY_UNTIL_S), (e) => e.intervals);
      await assertLevel(sql, D, expectedRows(all, D, -Infinity, DAILY_UNTIL_S));
      const before = await snapshot(sql);
      await runRollup(sql, BASE);
      assert.deepEqual(await snapshot(sql), before, 'a re-run is a no-op');
    });

    test('--delete removes exactly the merged source rows; late rows after it land once, also where hourly rows are gone', async () => {
      const sql = await fresh();
      await load(sql, RAW);
      // first without --delete (everything kept), then with it: the rows merged earlier go too
      await runRollup(sql, BASE);
      const r = await runRollup(sql, { ...BASE, delete_source: true });
      const merged = RAW.filter((x) => x.start_s < HOURLY_UNTIL_S).length;
      assert.equal(r.hourly.source_rows_deleted, merged);
      const hoursOfDay0 = expectedRows(RAW, H, T0, T0 + D).size;
      assert.equal(r.daily.source_rows_deleted, hoursOfDay0);
      assert.equal(await l1Count(sql), RAW.length - merged);
      assert.equal(await l1Count(sql, 'interval_start < $1', [iso(HOURLY_UNTIL_S)]), 0);
      assert.equal(await count(sql, 'summary_sketches'), RAW.length - merged, 'one ttfr_ns sketch per remaining level-1 row');
      assert.equal(await count(sql, 'summary_sketches', 'interval_start < $1', [iso(HOURLY_UNTIL_S)]), 0);
      assert.equal(await count(sql, 'summaries_l2', 'interval_s = 3600 AND interval_start < $1', [iso(DAILY_UNTIL_S)]), 0);
      assert.deepEqual(await state(sql), {
        [H]: { rolled_until: isoS(HOURLY_UNTIL_S), deleted: isoS(HOURLY_UNTIL_S) },
        [D]: { rolled_until: isoS(DAILY_UNTIL_S), deleted: isoS(DAILY_UNTIL_S) },
      });
      await assertRolled(sql, RAW, DAILY_UNTIL_S);

      const late = generate({ seed: 9, start_s: T0 + 10 * H, hours: 30, sensors: ['sensor-late'] });
      await load(sql, late, 1n, 'late');
      await runRollup(sql, { ...BASE, delete_source: true });
      const all = [...RAW, ...late];
      // late rows of day T0 went into the daily row only: its hourly rows stay deleted
      await assertLevel(sql, H, expectedRows(all, H, DAILY_UNTIL_S, HOURLY_UNTIL_S), (e) => e.intervals);
      await assertLevel(sql, D, expectedRows(all, D, -Infinity, DAILY_UNTIL_S));
      assert.equal(await l1Count(sql, 'interval_start < $1', [iso(HOURLY_UNTIL_S)]), 0, 'merged late rows deleted');
      assert.equal(await l1Count(sql), all.filter((x) => x.start_s >= HOURLY_UNTIL_S).length);
    });

    test('retention drops what is past its age and nothing else', async () => {
      const sql = await fresh();
      // five days, one sensor; now = T0 + 7 d
      const raw = generate({ seed: 3, start_s: T0, hours: 5 * 24, sensors: ['sensor-a'], max_per_interval: 3 });
      await load(sql, raw);
      const o: RollupOptions = {
        ...BASE, now: new Date((T0 + 7 * D) * 1000), rows_per_unit: 1000, page_rows: 500,
        hourly_after_s: D, daily_after_s: D, // hours before T0 + 6 d, days before T0 + 6 d: everything
        retention_l1_s: 3 * D, // level-1 days before T0 + 4 d: 0501 … 0504
        retention_hourly_s: 4 * D, // hourly rows before T0 + 3 d
        retention_daily_s: 6 * D, // daily rows before T0 + 1 d
      };
      // First run: a late row of 2024-05-03 arrives (is queued) while retention is about to drop
      // that day: the day and the ones after it wait, the days before go.
      const withLateRow = intercepting(sql, async (tx, text) => {
        if (text.includes('DROP TABLE IF EXISTS summaries_l1_20240503')) {
          await tx.query(`INSERT INTO rollup_late_l1 (server_id, signature_id, interval_start, sensor_id, interval_s)
                          VALUES (1, 1, '2024-05-03T01:00:00Z', 'sensor-x', 300)`);
        }
      });
      const r0 = await runRollup(withLateRow, o);
      assert.deepEqual(r0.retention.l1_days_dropped, ['20240501', '20240502']);
      assert.equal(r0.retention.l1_days_deferred, 1);
      assert.equal((await state(sql))[H]!.deleted, isoS(T0 + 2 * D));
      assert.equal(await l1Count(sql), raw.filter((x) => x.start_s >= T0 + 2 * D).length, 'days 0503 … 0505 intact');
      assert.equal(r0.retention.hourly_rows_deleted, expectedRows(raw, H, -Infinity, T0 + 3 * D).size);
      assert.equal(r0.retention.daily_rows_deleted, expectedRows(raw, D, -Infinity, T0 + D).size);

      // Next run (the late row was never committed): the rest goes.
      const r = await runRollup(sql, o);
      assert.deepEqual(r.retention.l1_days_dropped, ['20240503', '20240504']);
      const parts = await sql.query<{ relname: string }>(
        `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent IN ('summaries_l1'::regclass, 'summary_sketches'::regclass) ORDER BY 1`);
      assert.deepEqual(parts.map((p) => p.relname), ['summaries_l1_20240505', 'summaries_l1_default', 'summary_sketches_20240505', 'summary_sketches_default']);
      assert.equal(await l1Count(sql), raw.filter((x) => x.start_s >= T0 + 4 * D).length, 'day 0505 intact');
      assert.equal(await count(sql, 'summary_sketches'), raw.filter((x) => x.start_s >= T0 + 4 * D).length);
      assert.equal(r.retention.hourly_rows_deleted + r.retention.daily_rows_deleted, 0, 'done by the first run');
      await assertLevel(sql, H, expectedRows(raw, H, T0 + 3 * D, T0 + 5 * D), (e) => e.intervals);
      await assertLevel(sql, D, expectedRows(raw, D, T0 + D, T0 + 5 * D));
      assert.equal(await count(sql, 'summary_sketches_l2', 'interval_s = 3600 AND interval_start < $1', [iso(T0 + 3 * D)]), 0);
      assert.deepEqual(await state(sql), {
        [H]: { rolled_until: isoS(T0 + 6 * D), deleted: isoS(T0 + 4 * D) },
        [D]: { rolled_until: isoS(T0 + 6 * D), deleted: isoS(T0 + 3 * D) },
      });
      const before = await snapshot(sql);
      const again = await runRollup(sql, o);
      assert.deepEqual(again.retention.l1_days_dropped, []);
      assert.deepEqual(await snapshot(sql), before, 'a re-run is a no-op');
    });

    test('bad options are refused with a message that names them', async () => {
      const sql = await fresh();
      await assert.rejects(runRollup(sql, { ...BASE, hourly_after_s: -1 }), /hourly_after_s must be a number of seconds ≥ 0/);
      await assert.rejects(runRollup(sql, { ...BASE, daily_after_s: 10 }), /daily_after_s \(10\) is less than hourly_after_s/);
      await assert.rejects(runRollup(sql, { ...BASE, retention_l1_s: 60 }), /retention_l1_s \(60\) is less than hourly_after_s/);
      await assert.rejects(runRollup(sql, { ...BASE, retention_hourly_s: D }), /retention_hourly_s .* less than daily_after_s/);
      await assert.rejects(runRollup(sql, { ...BASE, now: new Date(NaN) }), /now must be a valid Date/);
      await assert.rejects(runRollup(sql, { ...BASE, rows_per_unit: 0 }), /rows_per_unit must be an integer ≥ 1/);
      // and an aborted signal stops before the first unit
      const ac = new AbortController();
      ac.abort();
      const r = await runRollup(sql, { ...BASE, signal: ac.signal });
      assert.equal(r.stopped, true);
      assert.equal(r.transactions, 0);
    });

    test('a stored sketch that cannot be decoded is counted, and the merged metric carries no sketch rather than a wrong one', async () => {
      const sql = await fresh();
      // makeBatch's sketches are arbitrary bytes (storeBatch stores what it is given)
      const batch = makeBatch('sensor-a', 1n, 24);
      assert.equal(await new SummaryStore(sql).storeBatch(batch), 'stored');
      const r = await runRollup(sql, BASE);
      assert.equal(r.sketches_undecodable, 24 * 3);
      assert.equal(await count(sql, 'summary_sketches_l2'), 0);
      const rows = await sql.query<{ n: bigint; c: string }>(`SELECT sum(count)::int8 AS n, sum((metrics->'ttfr_ns'->>'count')::int8)::text AS c FROM summaries_l2 WHERE interval_s = 3600`);
      const total = batch.summaries.reduce((a, x) => a + x.count, 0n);
      assert.deepEqual(rows, [{ n: total, c: String(total) }]);
      // no whole sketch, no stored percentiles (the reporter would bound a top-N with wrong ones)
      assert.equal(await count(sql, 'summaries_l2', `metrics -> 'ttfr_ns' ?| $1::text[]`, ['{p50,p90,p95,p99}']), 0);
    });

    test('hourly and daily rows store p50/p90/p95/p99 of their merged sketch, within 1 % of the sorted raw values, also after late rows', async () => {
      const sql = await fresh();
      await load(sql, RAW);
      await runRollup(sql, BASE);
      const late = generate({ seed: 11, start_s: T0 + 2 * H, hours: 30, sensors: ['sensor-late'] });
      await load(sql, late, 1n, 'late');
      assert.ok((await runRollup(sql, BASE)).late_rows_merged > 0);
      const all = [...RAW, ...late];
      for (const [interval_s, until_s] of [[H, HOURLY_UNTIL_S], [D, DAILY_UNTIL_S]] as const) {
        const expected = expectedRows(all, interval_s, -Infinity, until_s);
        const stored = await sql.query<{ signature: string; start_s: number; m: Record<string, number> }>(
          `SELECT g.name AS signature, extract(epoch FROM l.interval_start)::float8 AS start_s, l.metrics -> 'ttfr_ns' AS m
           FROM summaries_l2 l JOIN signatures g USING (signature_id) WHERE l.interval_s = $1`, [interval_s]);
        assert.equal(stored.length, expected.size, `rows of interval_s ${interval_s}`);
        for (const row of stored) {
          const e = [...expected.values()].find((x) => x.start_s === row.start_s && KEYS[x.key]!.signature === row.signature)!;
          for (const [key, q] of [['p50', 0.5], ['p90', 0.9], ['p95', 0.95], ['p99', 0.99]] as const) {
            const truth = rankQuantile(e.ttfr_ns, q);
            const got = row.m[key];
            assert.ok(got !== undefined && Math.abs(got - truth) <= 0.01 * truth + 0.5,
              `interval_s ${interval_s} ${row.signature} ${iso(row.start_s)} ${key}: ${got} vs ${truth} from the sorted raw values`);
          }
        }
      }
    });

    if (engine.name === 'postgresql') {
      test('only one roll-up at a time: a held lock makes a run stop as busy; two concurrent runs still count once', async () => {
        const url = await engine.freshUrl!();
        const a = new PgSql(url), b = new PgSql(url), holder = new PgSql(url, { max: 1 });
        try {
          await migrate(a);
          await load(a, RAW);
          await holder.transaction(async (tx) => {
            await tx.query('SELECT pg_advisory_xact_lock(2004118885, 3)');
            const r = await runRollup(a, BASE);
            assert.equal(r.busy, true);
            assert.equal(r.transactions, 0);
          });
          assert.equal(await count(a, 'summaries_l2'), 0);
          const [ra, rb] = await Promise.all([runRollup(a, BASE), runRollup(b, BASE)]);
          assert.ok(ra.transactions + rb.transactions > 0);
          if (ra.busy || rb.busy) await runRollup(a, BASE); // the one that stopped as busy leaves work for the next run
          await assertRolled(a, RAW);
        } finally {
          await Promise.all([a.close(), b.close(), holder.close()]);
        }
      });

      test('level-1 rows stored while roll-ups run (ingest racing the hourly roll-up) are counted once', async () => {
        const url = await engine.freshUrl!();
        const ingest = new PgSql(url), roll = new PgSql(url);
        try {
          await migrate(ingest);
          const first = RAW.filter((r) => r.sensor === 'sensor-a');
          const racing = RAW.filter((r) => r.sensor === 'sensor-b');
          await load(ingest, first);
          const store = new SummaryStore(ingest);
          const batches = batchesOf(racing, 20);
          let stored = false;
          const ingesting = (async () => {
            for (const bt of batches) assert.equal(await store.storeBatch(bt), 'stored');
            stored = true;
          })();
          const o = { ...BASE, rows_per_unit: 60, page_rows: 25 };
          while (!stored) await runRollup(roll, o);
          await ingesting;
          await runRollup(roll, o);
          await assertRolled(roll, RAW);
        } finally {
          await Promise.all([ingest.close(), roll.close()]);
        }
      });
    }
  });
}
