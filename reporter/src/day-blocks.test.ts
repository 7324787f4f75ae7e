/**
 * Day blocks in the reporter (collector/src/migrations/005_day_blocks.sql): how a daily segment
 * splits into complete blocks and single days, and, on both engines, that top-N and compare
 * answer from blocks exactly what they answer from the daily rows alone, reading fewer sketches.
 * Level-1 rows are stored through SummaryStore.storeBatch from known durations (seeded PRNG) and
 * rolled up by the collector's roll-up; the expected top-N values are computed from the raw
 * durations with the sensor's own bucketing (BucketCounts), not by the reporter.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupBy, Statistic } from '../../proto/src/gen/wiretime/v1/report_pb.ts';
import { runRollup } from '../../collector/src/rollup.ts';
import { migrate } from '../../collector/src/store/migrate.ts';
import { ENGINES } from '../../collector/src/store/test-engines.ts';
import type { Sql } from '../../collector/src/store/sql.ts';
import { BucketCounts } from '../../sensor/src/aggregate/sketch.ts';
import { prng } from '../../test/support/prng.ts';
import { QueryService, splitIntoBlocks, type Segment } from './query-service.ts';
import { countingSketchReads, storeDurations } from './test-support.ts';
import { ReportStore, type LevelState } from './store/report-store.ts';

const DAY = 86_400;

describe('splitIntoBlocks', () => {
  const st = (valid_from_day: number, rolled_until_day: number): LevelState => ({
    hourly_source_deleted_until_s: null, daily_source_deleted_until_s: null, hourly_rolled_until_s: null, daily_rolled_until_s: null,
    blocks: { valid_from_s: valid_from_day * DAY, rolled_until_s: rolled_until_day * DAY },
  });
  const seg = (level: number, from_day: number, to_day: number): Segment => ({ level: level === 1 ? DAY : level * DAY, start_s: from_day * DAY, end_s: to_day * DAY });

  test('days 19855…19884 (30 days): one day, blocks of 16, 8, 4 and 2 days, then a run of single days where blocks are incomplete', () => {
    // 19856 is divisible by 16, 19872 by 8, 19880 by 8 (but 19880 + 8 > 19885), 19880 by 4, 19884 by 4 (but past the end)
    assert.deepEqual(splitIntoBlocks([seg(1, 19855, 19885)], st(-Infinity, Infinity)),
      [seg(1, 19855, 19856), seg(16, 19856, 19872), seg(8, 19872, 19880), seg(4, 19880, 19884), seg(1, 19884, 19885)]);
    // blocks complete only up to day 19878: after the 16-day block, 4 + 2 days, then single days
    assert.deepEqual(splitIntoBlocks([seg(1, 19855, 19885)], st(-Infinity, 19878)),
      [seg(1, 19855, 19856), seg(16, 19856, 19872), seg(4, 19872, 19876), seg(2, 19876, 19878), seg(1, 19878, 19885)]);
    // blocks valid only from 19860: single days up to it
    assert.deepEqual(splitIntoBlocks([seg(1, 19855, 19885)], st(19860, Infinity)),
      [seg(1, 19855, 19860), seg(4, 19860, 19864), seg(8, 19864, 19872), seg(8, 19872, 19880), seg(4, 19880, 19884), seg(1, 19884, 19885)]);
  });

  test('64-day blocks; hourly and level-1 segments untouched; no blocks without rollup_day_blocks', () => {
    // 19840 is divisible by 64
    const segments: Segment[] = [seg(1, 19839, 19905), { level: 3600, start_s: 19905 * DAY, end_s: 19906 * DAY }, { level: 0, start_s: 19906 * DAY, end_s: 19906 * DAY + 600 }];
    assert.deepEqual(splitIntoBlocks(segments, st(-Infinity, Infinity)),
      [seg(1, 19839, 19840), seg(64, 19840, 19904), seg(1, 19904, 19905), segments[1], segments[2]]);
    assert.deepEqual(splitIntoBlocks(segments, { ...st(0, 0), blocks: null }), segments);
  });
});

/** 19855: one day before a day number divisible by 16 */
const FIRST_DAY = 19_855;
const DAYS = 20;
const SIGNATURES = 40;

/** durations (ns) per signature and day: one 5-minute interval a day */
const raw = new Map<string, number[][]>();
{
  const rng = prng(4242);
  for (let i = 0; i < SIGNATURES; i++) {
    // 1 ms … 100 ms over the signatures, ±30 % from day to day, 1 % of the calls 30× slower
    const level = 1e6 * 100 ** (i / (SIGNATURES - 1));
    raw.set(`SIG_${String(i).padStart(2, '0')}`, Array.from({ length: DAYS }, () => {
      const day_level = level * (0.7 + 0.6 * rng());
      return Array.from({ length: 40 + Math.floor(rng() * 40) }, () => Math.round(day_level * Math.exp(rng() - 0.5) * (rng() < 0.01 ? 30 : 1)));
    }));
  }
}

async function load(sql: Sql): Promise<void> {
  await migrate(sql);
  const all = [...raw].flatMap(([signature, per_day]) => per_day.map((values, d) => ({ signature, values, start_s: (FIRST_DAY + d) * DAY + 3600 })));
  await storeDurations(sql, 'blocks-test', all, 400);
  await runRollup(sql, {
    hourly_after_s: 0, daily_after_s: 0, delete_source: true, retention_l1_s: null, retention_hourly_s: null, retention_daily_s: null,
    now: new Date((FIRST_DAY + DAYS) * DAY * 1000),
  });
}

/** What the reporter must answer for a group: the percentile of all its values' buckets (the merged sketch), clamped, rounded. */
function expectedPercentile(values: readonly number[], q: number): number {
  const b = new BucketCounts();
  for (const v of values) b.add(v);
  const min = Math.min(...values), max = Math.max(...values);
  const v = b.toSketch(min, max, NaN).getValueAtQuantile(q);
  return Math.round(Math.min(max, Math.max(min, v)));
}

for (const makeEngine of ENGINES) {
  const engine = makeEngine();
  describe(`top-N and compare from day blocks, ${engine.name}`, () => {
    let sql: Sql;
    const reads = { rows: 0 };
    let service: QueryService;
    before(async () => {
      sql = await engine.fresh();
      await load(sql);
      service = new QueryService(new ReportStore(countingSketchReads(sql, reads), { role: 'wiretime_reader' }));
    });
    after(() => engine.cleanup());

    const window = { startS: BigInt(FIRST_DAY * DAY), endS: BigInt((FIRST_DAY + DAYS) * DAY) };
    const half = BigInt((FIRST_DAY + DAYS / 2) * DAY);
    /** Each question's answer and the sketch rows it read. */
    const ask = async () => {
      const out: { answer: unknown; sketches_read: number }[] = [];
      const questions: (() => Promise<unknown>)[] = [
        ...[Statistic.P50, Statistic.P90, Statistic.P95, Statistic.P99, Statistic.AVG, Statistic.MAX].flatMap((statistic) => [5, SIGNATURES].map((limit) =>
          () => service.getTop({ groupBy: GroupBy.SIGNATURE, metric: 'ttfr_ns', statistic, window, limit }))),
        () => service.compare({ groupBy: GroupBy.SIGNATURE, metric: 'ttfr_ns', statistic: Statistic.P95, before: { startS: window.startS, endS: half }, after: { startS: half, endS: window.endS }, limit: SIGNATURES }),
      ];
      for (const ask1 of questions) {
        reads.rows = 0;
        out.push({ answer: await ask1(), sketches_read: reads.rows });
      }
      return out;
    };

    test('the top 5 by p50/p90/p95/p99 are those of the raw durations, value for value', async () => {
      for (const [statistic, q] of [[Statistic.P50, 0.5], [Statistic.P90, 0.9], [Statistic.P95, 0.95], [Statistic.P99, 0.99]] as const) {
        const expected = [...raw].map(([signature, per_day]) => ({ signature, value: expectedPercentile(per_day.flat(), q) }))
          .sort((x, y) => y.value - x.value || (x.signature < y.signature ? -1 : 1)).slice(0, 5);
        const r = await service.getTop({ groupBy: GroupBy.SIGNATURE, metric: 'ttfr_ns', statistic, window, limit: 5 });
        assert.deepEqual(r.levelsS, [DAY]);
        assert.deepEqual(r.rows.map((x) => ({ signature: x.key!.signature, value: x.value })), expected, `statistic ${Statistic[statistic]}`);
      }
    });

    test('blocks give the same answers as the daily rows alone, from fewer sketches', async (t) => {
      const with_blocks = await ask();
      await sql.query(`UPDATE rollup_day_blocks SET rolled_until = '-infinity'`);
      try {
        const daily_only = await ask();
        assert.deepEqual(with_blocks.map((x) => x.answer), daily_only.map((x) => x.answer));
        // 20 days from 19855: 1 day + 16-day block + 2-day block + 1 day = 4 rows a group instead of 20
        const full = with_blocks[1]!; // the full ranking by p50 reads every group's sketches
        assert.equal(full.sketches_read, SIGNATURES * 4);
        assert.equal(daily_only[1]!.sketches_read, SIGNATURES * DAYS);
        t.diagnostic(`sketches read with blocks: ${with_blocks.map((x) => x.sketches_read).join(' ')}; daily rows only: ${daily_only.map((x) => x.sketches_read).join(' ')}`);
      } finally {
        await sql.query(`UPDATE rollup_day_blocks SET rolled_until = $1::timestamptz`, [new Date((FIRST_DAY + DAYS) * DAY * 1000).toISOString()]);
      }
    });
  });
}
