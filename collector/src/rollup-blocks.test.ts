// Day blocks and upper percentiles (migration 005) on both engines: level-1 data stored through SummaryStore.storeBatch
// from known raw durations, rolled up over several runs (with late rows and retention), and every
// block row compared with what the raw values of its days give: counts, sums, min/max, outcomes
// and source_rows exactly, the sketch bucket for bucket (the sensor's own bucketing of all the raw
// values, BucketCounts, not the roll-up's merging), the stored percentiles within 1 % of the
// sorted raw values, as are the upper percentiles of hourly and daily rows.
import { after, afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BucketCounts, decodeSketch, encodeSketch, RELATIVE_ACCURACY } from '../../sensor/src/aggregate/sketch.ts';
import { BLOCK_DAYS, runRollup, type RollupOptions } from './rollup.ts';
import { batchesOf, expectedRows, generate, KEYS, rankQuantile, type RawInterval } from './rollup-test-data.ts';
import { loadMigrations, migrate } from './store/migrate.ts';
import type { Sql } from './store/sql.ts';
import { SummaryStore } from './store/summary-store.ts';
import { ENGINES } from './store/test-engines.ts';

const D = 86_400;
/** day 19847 (2024-05-04): one day before a day number divisible by 8 */
const FIRST_DAY = 19_847;
const iso = (s: number) => new Date(s * 1000).toISOString();

/** Two hours of 5-minute intervals on each of `days` days from `first_day`, two keys, one sensor. */
function days(seed: number, first_day: number, n: number, sensor = 'sensor-a'): RawInterval[] {
  return Array.from({ length: n }, (_, d) => generate({ seed: seed + d, start_s: (first_day + d) * D + 7200, hours: 2, sensors: [sensor], max_per_interval: 4 })).flat();
}

async function load(sql: Sql, raw: readonly RawInterval[], stream: string): Promise<void> {
  const store = new SummaryStore(sql);
  for (const b of batchesOf(raw, 200, 1n, stream)) assert.equal(await store.storeBatch(b), 'stored');
}

/** Rolls hours and days up to `until_day` (exclusive). */
function rollTo(until_day: number, extra: Partial<RollupOptions> = {}): RollupOptions {
  return {
    hourly_after_s: 0, daily_after_s: 0, delete_source: false, retention_l1_s: null, retention_hourly_s: null, retention_daily_s: null,
    now: new Date(until_day * D * 1000), rows_per_unit: 200, page_rows: 50, ...extra,
  };
}

type BlockRow = {
  signature: string;
  interval_s: number;
  start_s: number;
  count: bigint;
  partial: boolean;
  outcomes: Record<string, number>;
  metrics: Record<string, Record<string, number>>;
  source_rows: bigint;
  upper_percentiles: Record<string, Record<string, number>>;
  sketch: Uint8Array | null;
};

async function blocks(sql: Sql): Promise<BlockRow[]> {
  return sql.query<BlockRow>(
    `SELECT g.name AS signature, b.interval_s, extract(epoch FROM b.interval_start)::float8 AS start_s, b.count, b.partial, b.outcomes,
            b.metrics, b.source_rows, b.upper_percentiles, k.sketch
     FROM summaries_blocks b JOIN signatures g USING (signature_id)
     LEFT JOIN summary_sketches_blocks k ON k.server_id = b.server_id AND k.signature_id = b.signature_id
       AND k.interval_s = b.interval_s AND k.interval_start = b.interval_start AND k.metric = 'ttfr_ns'
     ORDER BY b.interval_s, b.interval_start, g.name`,
  );
}

async function blockState(sql: Sql): Promise<{ valid_from: string; rolled_until: string }> {
  const r = await sql.query<{ valid_from: string; rolled_until: string }>(
    `SELECT CASE WHEN isfinite(valid_from) THEN to_char(valid_from AT TIME ZONE 'UTC', 'YYYY-MM-DD') ELSE valid_from::text END AS valid_from,
            CASE WHEN isfinite(rolled_until) THEN to_char(rolled_until AT TIME ZONE 'UTC', 'YYYY-MM-DD') ELSE rolled_until::text END AS rolled_until
     FROM rollup_day_blocks`);
  assert.equal(r.length, 1);
  return r[0]!;
}

const day = (d: number) => iso(d * D).slice(0, 10);

/** upper_percentiles (migration 005) of a row: ttfr_ns only, each within 1 % of the sorted raw values at rank min(n−1, ⌈q·n⌉). */
function assertUpper(upper: Record<string, Record<string, number>>, values: readonly number[], where: string): void {
  assert.deepEqual(Object.keys(upper), ['ttfr_ns'], `${where}: upper_percentiles of the metrics with a sketch`);
  const sorted = [...values].sort((a, b) => a - b), n = sorted.length;
  for (const [key, q] of [['p50', 0.5], ['p90', 0.9], ['p95', 0.95], ['p99', 0.99]] as const) {
    const truth = sorted[Math.min(n - 1, Math.ceil(q * n))]!;
    const got = upper.ttfr_ns![key];
    assert.ok(got !== undefined && Math.abs(got - truth) <= RELATIVE_ACCURACY * truth + 0.5, `${where}: upper ${key} ${got} vs ${truth} from the sorted raw values`);
  }
}

/** upper_percentiles of the hourly or daily rows, against the raw values of their buckets. */
async function assertUpperL2(sql: Sql, raw: readonly RawInterval[], interval_s: number, until_s: number): Promise<void> {
  const expected = expectedRows(raw, interval_s, -Infinity, until_s);
  const rows = await sql.query<{ signature: string; start_s: number; upper: Record<string, Record<string, number>> }>(
    `SELECT g.name AS signature, extract(epoch FROM l.interval_start)::float8 AS start_s, l.upper_percentiles AS upper
     FROM summaries_l2 l JOIN signatures g USING (signature_id) WHERE l.interval_s = $1`, [interval_s]);
  assert.equal(rows.length, expected.size, `rows of interval_s ${interval_s}`);
  for (const r of rows) {
    const e = [...expected.values()].find((x) => x.start_s === r.start_s && KEYS[x.key]!.signature === r.signature)!;
    assertUpper(r.upper, e.ttfr_ns, `interval_s ${interval_s} ${r.signature} ${iso(r.start_s)}`);
  }
}
const sum = (v: readonly number[]) => v.reduce((a, b) => a + b, 0);

/**
 * The stored blocks are exactly those the raw values of the days in [from_day, until_day) give:
 * one row per key and block holding such a day, of every length in BLOCK_DAYS, but for blocks
 * starting before `valid_from_day` (none).
 */
async function assertBlocks(sql: Sql, raw: readonly RawInterval[], from_day: number, until_day: number, valid_from_day = -Infinity): Promise<void> {
  const inRange = raw.filter((r) => r.start_s >= from_day * D && r.start_s < until_day * D);
  const got = await blocks(sql);
  let expected_rows = 0;
  for (const n of BLOCK_DAYS) {
    const expected = expectedRows(inRange, n * D, valid_from_day * D, Infinity);
    expected_rows += expected.size;
    for (const e of expected.values()) {
      const sig = KEYS[e.key]!.signature;
      const where = `${n}-day block ${day(e.start_s / D)} ${sig}`;
      const g = got.find((x) => x.interval_s === n * D && x.start_s === e.start_s && x.signature === sig);
      assert.ok(g, `${where}: missing`);
      const n_values = e.ttfr_ns.length;
      assert.equal(g.count, BigInt(n_values), `${where}: count`);
      assert.equal(g.partial, e.partial, `${where}: partial`);
      assert.deepEqual(g.outcomes, e.error > 0 ? { ok: e.ok, error: e.error } : { ok: e.ok }, `${where}: outcomes`);
      const { p50, p90, p95, p99, ...ttfr } = g.metrics.ttfr_ns!;
      assert.deepEqual(ttfr, { count: n_values, sum: sum(e.ttfr_ns), min: Math.min(...e.ttfr_ns), max: Math.max(...e.ttfr_ns), negative_clamped: 0 }, `${where}: ttfr_ns`);
      assert.deepEqual(g.metrics.response_bytes, { count: n_values, sum: sum(e.bytes), min: Math.min(...e.bytes), max: Math.max(...e.bytes), negative_clamped: 0 }, `${where}: response_bytes`);
      for (const [q, stored] of [[0.5, p50], [0.9, p90], [0.95, p95], [0.99, p99]] as const) {
        const truth = rankQuantile(e.ttfr_ns, q);
        assert.ok(stored !== undefined && Math.abs(stored - truth) <= RELATIVE_ACCURACY * truth + 0.5, `${where}: stored p${q * 100} ${stored} vs ${truth}`);
      }
      assertUpper(g.upper_percentiles, e.ttfr_ns, where);
      // source_rows: the daily rows merged, one per day of the block with values
      const days_with_values = new Set(inRange.filter((r) => r.key === e.key && Math.floor(r.start_s / (n * D)) * n * D === e.start_s).map((r) => Math.floor(r.start_s / D)));
      assert.equal(g.source_rows, BigInt(days_with_values.size), `${where}: source_rows`);
      // the sketch, bucket for bucket: the sensor's bucketing of all the block's raw values
      const b = new BucketCounts();
      for (const v of e.ttfr_ns) b.add(v);
      assert.ok(g.sketch, `${where}: a sketch`);
      assert.equal(encodeSketch(decodeSketch(Buffer.from(g.sketch).toString('base64'))),
        encodeSketch(b.toSketch(Math.min(...e.ttfr_ns), Math.max(...e.ttfr_ns), sum(e.ttfr_ns))), `${where}: sketch`);
    }
  }
  assert.equal(got.length, expected_rows, 'no other block rows');
}

for (const makeEngine of ENGINES) {
  const engine = makeEngine();
  describe(`day blocks on ${engine.name}`, () => {
    afterEach(() => engine.cleanup());
    after(() => engine.cleanup());

    test('blocks hold exactly the raw values of their days, over several runs and late rows; retention takes the blocks of deleted days', async () => {
      const sql = await engine.fresh();
      await migrate(sql);
      assert.deepEqual(await blockState(sql), { valid_from: '-infinity', rolled_until: '-infinity' });
      const first = days(1, FIRST_DAY, 7);
      await load(sql, first, 's1');
      await runRollup(sql, rollTo(FIRST_DAY + 7));
      assert.deepEqual(await blockState(sql), { valid_from: '-infinity', rolled_until: day(FIRST_DAY + 7) });
      await assertBlocks(sql, first, FIRST_DAY, FIRST_DAY + 7);

      // late rows into a day already in its blocks, and four more days
      const late = days(50, FIRST_DAY + 2, 1, 'sensor-late');
      const more = days(100, FIRST_DAY + 7, 4);
      await load(sql, late, 'late');
      await load(sql, more, 's2');
      const r = await runRollup(sql, rollTo(FIRST_DAY + 11));
      assert.ok(r.late_rows_merged > 0);
      const all = [...first, ...late, ...more];
      assert.deepEqual(await blockState(sql), { valid_from: '-infinity', rolled_until: day(FIRST_DAY + 11) });
      await assertBlocks(sql, all, FIRST_DAY, FIRST_DAY + 11);
      await assertUpperL2(sql, all, 3600, (FIRST_DAY + 11) * D);
      await assertUpperL2(sql, all, D, (FIRST_DAY + 11) * D);
      // a second run changes nothing
      const before = await blocks(sql);
      await runRollup(sql, rollTo(FIRST_DAY + 11));
      assert.deepEqual(await blocks(sql), before);

      // daily retention up to day FIRST_DAY + 5: the blocks starting before it go, the others stay
      const cut = FIRST_DAY + 5;
      await runRollup(sql, rollTo(FIRST_DAY + 11, { now: new Date((cut + 3) * D * 1000), daily_after_s: 0, retention_daily_s: 3 * D }));
      assert.deepEqual(await blockState(sql), { valid_from: day(cut), rolled_until: day(FIRST_DAY + 11) });
      assert.deepEqual(await blocks(sql), before.filter((b) => b.start_s >= cut * D));
      assert.ok((await blocks(sql)).length > 0);
    });

    test('a database upgraded to version 5 gets blocks only from where its daily roll-up stood', async () => {
      const sql = await engine.fresh();
      const files = await loadMigrations();
      await migrate(sql, files.filter((m) => m.version < 5));
      const first = days(7, FIRST_DAY, 3);
      await load(sql, first, 's1');
      await runRollup(sql, rollTo(FIRST_DAY + 3));
      await migrate(sql);
      assert.deepEqual(await blockState(sql), { valid_from: day(FIRST_DAY + 3), rolled_until: day(FIRST_DAY + 3) });
      assert.equal((await blocks(sql)).length, 0);
      const more = days(70, FIRST_DAY + 3, 5);
      await load(sql, more, 's2');
      await runRollup(sql, rollTo(FIRST_DAY + 8));
      assert.deepEqual(await blockState(sql), { valid_from: day(FIRST_DAY + 3), rolled_until: day(FIRST_DAY + 8) });
      // only blocks starting at or after valid_from, holding the days from there on
      await assertBlocks(sql, [...first, ...more], FIRST_DAY + 3, FIRST_DAY + 8, FIRST_DAY + 3);
      assert.ok((await blocks(sql)).length > 0);
    });
  });
}
