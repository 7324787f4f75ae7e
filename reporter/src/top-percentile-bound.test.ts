/**
 * Top-N by a percentile on rolled-up data, on both engines: level-1 rows stored through
 * SummaryStore.storeBatch from known durations (seeded PRNG), rolled into daily rows by the
 * collector's roll-up (which stores each row's p50/p90/p95/p99), then asked for the top 5.
 * Signatures have latencies three decades apart, with rare slow outliers (which make the bound
 * from count/sum/min/max loose), so the bound from the rows' stored percentiles must prune. The
 * answers are compared with the full ranking (every sketch read), with the same question on the
 * same rows without stored percentiles (the bound before them), and with the p95 of the sorted raw
 * durations; sketch reads are counted as rows returned from summary_sketches_l2 and
 * summary_sketches_blocks (day blocks, migration 005: the 3-day window is day 20395 and the 2-day
 * block 20396–20397, two rows per group).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Statistic } from '../../proto/src/gen/wiretime/v1/report_pb.ts';
import { runRollup } from '../../collector/src/rollup.ts';
import { migrate } from '../../collector/src/store/migrate.ts';
import { ENGINES } from '../../collector/src/store/test-engines.ts';
import type { Sql } from '../../collector/src/store/sql.ts';
import { prng } from '../../test/support/prng.ts';
import { QueryService } from './query-service.ts';
import { countingSketchReads, storeDurations } from './test-support.ts';
import { ReportStore } from './store/report-store.ts';

const DAY = 86_400;
/** 2025-11-03T00:00:00Z: three days of data from here */
const D = 1_762_128_000;
const DAYS = 3;
/** signatures (and one more, SIG_SPLIT): more than the reporter reads in one batch (200), so that pruning shows */
const SIGNATURES = 999;

/** durations (ns) per signature, per level-1 interval */
const raw = new Map<string, { start_s: number; values: number[] }[]>();
{
  const rng = prng(31_337);
  for (let i = 0; i < SIGNATURES; i++) {
    // 0.3 ms … 300 ms, log-uniform over the signatures; 0.5 % of the calls take 100× as long
    const level = 0.3e6 * 1000 ** (i / (SIGNATURES - 1));
    const intervals = [];
    for (let d = 0; d < DAYS; d++) {
      // one 5-minute interval a day (each becomes one hourly and one daily row)
      const values = Array.from({ length: 100 + Math.floor(rng() * 50) }, () => Math.round(level * Math.exp(rng()) * (rng() < 0.005 ? 100 : 1)));
      intervals.push({ start_s: D + d * DAY + 3600 + Math.floor(rng() * 12) * 300, values });
    }
    raw.set(`SIG_${String(i).padStart(3, '0')}`, intervals);
  }
  // Three daily rows of {1 ms, 2 s} each: every row's p95 is 1 ms (rank ⌊0.95·1⌋ = 0), the
  // union's is 2 s (rank ⌊0.95·5⌋ = 4). A bound from the rows' p95 alone would drop it.
  raw.set('SIG_SPLIT', Array.from({ length: DAYS }, (_, d) => ({ start_s: D + d * DAY + 7200, values: [1e6, 2e9] })));
}

/** The value at rank floor(q·(n−1)) of the sorted values (the sketches' definition). */
function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(q * (s.length - 1))]!;
}

async function load(sql: Sql): Promise<void> {
  await migrate(sql);
  const all = [...raw].flatMap(([signature, intervals]) => intervals.map((x) => ({ signature, ...x })));
  await storeDurations(sql, 'top-bound-test', all, 500);
  // level 1 into hourly rows into daily rows, sources deleted: the window is read from daily rows
  const report = await runRollup(sql, {
    hourly_after_s: DAY, daily_after_s: 2 * DAY, delete_source: true, retention_l1_s: null, retention_hourly_s: null, retention_daily_s: null,
    now: new Date((D + 40 * DAY) * 1000),
  });
  assert.equal(report.daily.rolled_until, new Date((D + 40 * DAY) * 1000 - 2 * DAY * 1000).toISOString().slice(0, 10) + 'T00:00:00.000Z');
}

for (const makeEngine of ENGINES) {
  const engine = makeEngine();
  describe(`top-N by a percentile bounded by the rows' stored percentiles, ${engine.name}`, () => {
    let sql: Sql;
    const reads = { rows: 0 };
    let service: QueryService;
    before(async () => {
      sql = await engine.fresh();
      await load(sql);
      service = new QueryService(new ReportStore(countingSketchReads(sql, reads), { role: 'wiretime_reader' }));
    });
    after(() => engine.cleanup());

    const window = { startS: BigInt(D), endS: BigInt(D + DAYS * DAY) };
    const top = async (statistic: Statistic, limit: number, w = window) => {
      reads.rows = 0;
      const r = await service.getTop({ metric: 'ttfr_ns', statistic, window: w, limit });
      assert.deepEqual(r.levelsS, [DAY], 'read from daily rows');
      return { rows: r.rows, sketches_read: reads.rows };
    };

    test('the top 5 by p50/p90/p95/p99 are the first 5 of the full ranking; by p95 they match the sorted raw durations', async () => {
      for (const statistic of [Statistic.P50, Statistic.P90, Statistic.P95, Statistic.P99]) {
        const full = await top(statistic, raw.size);
        assert.equal(full.rows.length, raw.size);
        assert.equal(full.sketches_read, raw.size * 2, 'the full ranking reads every sketch: one day and one 2-day block per group');
        const five = await top(statistic, 5);
        assert.deepEqual(five.rows, full.rows.slice(0, 5), `statistic ${Statistic[statistic]}`);
      }
      // one day: one daily row per group, bounded by the rows' own p95
      const day = { startS: BigInt(D + DAY), endS: BigInt(D + 2 * DAY) };
      const full = await top(Statistic.P95, raw.size, day);
      const five_of_day = await top(Statistic.P95, 5, day);
      assert.deepEqual(five_of_day.rows, full.rows.slice(0, 5));
      assert.ok(five_of_day.sketches_read < raw.size / 2, `one day: read ${five_of_day.sketches_read} of ${raw.size} sketches`);

      // against the sorted raw durations: each answer within 1 %, and no signature left out whose
      // raw p95 is clearly (beyond both answers' 1 %) above the fifth answer
      const truth = new Map([...raw].map(([signature, intervals]) => [signature, quantile(intervals.flatMap((x) => x.values), 0.95)]));
      const five = await top(Statistic.P95, 5);
      assert.equal(five.rows[0]!.key!.signature, 'SIG_SPLIT', 'a group above all of its rows\' p95 is found');
      for (const r of five.rows) {
        const e = truth.get(r.key!.signature)!;
        assert.ok(Math.abs(r.value - e) <= 0.01 * e, `${r.key!.signature}: p95 ${r.value} is not within 1 % of ${e}`);
      }
      const fifth = five.rows[4]!.value;
      const chosen = new Set(five.rows.map((r) => r.key!.signature));
      for (const [signature, e] of truth) {
        if (!chosen.has(signature)) assert.ok(e * 0.99 <= fifth * 1.01, `${signature} (p95 ${e}) was left out of the top 5 (fifth: ${fifth})`);
      }
    });

    test('the same rows and values from the upper percentiles, from the percentiles alone and without either; fewest sketches read with the upper ones', async (t) => {
      const all = raw.size * 2;
      const stats = [Statistic.P50, Statistic.P95, Statistic.P99];
      const ask = async () => {
        const out = [];
        for (const s of stats) out.push(await top(s, 5));
        return out;
      };
      const upper = await ask();
      for (const b of upper) assert.ok(b.sketches_read < all / 2, `read ${b.sketches_read} of ${all} sketches`);
      // As if these days were rolled up before migration 005 (which starts the blocks where the
      // daily roll-up stands): no upper percentiles, no blocks. The rows' own percentiles bound,
      // which add up only for one or two rows, or the next one up.
      for (const table of ['summaries_l2', 'summaries_blocks']) await sql.query(`UPDATE ${table} SET upper_percentiles = '{}'`);
      await sql.query('UPDATE rollup_day_blocks SET valid_from = rolled_until');
      const lower = await ask();
      // Without any stored percentiles: the bound from count/sum/min/max, which the outliers make loose.
      for (const table of ['summaries_l2', 'summaries_blocks']) {
        await sql.query(`UPDATE ${table} SET metrics = jsonb_set(metrics, '{ttfr_ns}', (metrics -> 'ttfr_ns') - $1::text[])`, ['{p50,p90,p95,p99}']);
      }
      const unbounded = await ask();
      stats.forEach((s, i) => {
        assert.deepEqual(upper[i]!.rows, lower[i]!.rows, Statistic[s]);
        assert.deepEqual(upper[i]!.rows, unbounded[i]!.rows, Statistic[s]);
        t.diagnostic(`sketches read for the top 5 by ${Statistic[s]}: ${upper[i]!.sketches_read} with upper percentiles, ${lower[i]!.sketches_read} with percentiles, ` +
          `${unbounded[i]!.sketches_read} with neither, of ${all} (${raw.size * DAYS} without blocks)`);
        assert.ok(upper[i]!.sketches_read <= lower[i]!.sketches_read, `${Statistic[s]}: upper ${upper[i]!.sketches_read}, percentiles ${lower[i]!.sketches_read}`);
      });
      assert.ok(upper[1]!.sketches_read < lower[1]!.sketches_read, `P95: upper ${upper[1]!.sketches_read}, percentiles ${lower[1]!.sketches_read}`);
      assert.ok(lower[1]!.sketches_read < unbounded[1]!.sketches_read, `P95: percentiles ${lower[1]!.sketches_read}, neither ${unbounded[1]!.sketches_read}`);
    });
  });
}
