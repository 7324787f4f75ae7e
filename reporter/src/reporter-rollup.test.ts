/**
 * The reporter on data rolled up by the collector's own roll-up job (collector/src/rollup.ts),
 * on both engines: level-1 rows stored through SummaryStore.storeBatch from known durations,
 * merged into hourly rows (level 1 deleted), then into daily rows (hourly deleted). After each
 * step the reporter reads the level that holds the window, at its resolution, and still gives
 * the counts of the raw durations exactly and their p95 within 1 %.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { ServerError } from 'nice-grpc';
import { IngestRequestSchema } from '../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import { Statistic } from '../../proto/src/gen/wiretime/v1/report_pb.ts';
import { runRollup } from '../../collector/src/rollup.ts';
import { migrate } from '../../collector/src/store/migrate.ts';
import { SummaryStore } from '../../collector/src/store/summary-store.ts';
import { ENGINES } from '../../collector/src/store/test-engines.ts';
import type { Sql } from '../../collector/src/store/sql.ts';
import { encodeSketchBytes, newSketch } from '../../sensor/src/aggregate/sketch.ts';
import { prng } from '../../test/support/prng.ts';
import { QueryService } from './query-service.ts';
import { ReportStore } from './store/report-store.ts';

const DAY = 86_400;
/** 2025-11-03T00:00:00Z */
const D = 1_762_128_000;
/** hours of D with data, and the 5-minute intervals used in each */
const HOURS = [1, 2, 7];
const INTERVALS = [0, 3, 4, 11];

/** values[sensor][hour] → durations (ns) of all intervals of that hour */
const byHour = new Map<number, number[]>();
const batches: { sensor: string; summaries: { start_s: number; values: number[] }[] }[] = [];
{
  const rng = prng(1103);
  for (const sensor of ['s1', 's2']) {
    const summaries = [];
    for (const h of HOURS) {
      for (const i of INTERVALS) {
        const values = Array.from({ length: 10 + Math.floor(rng() * 30) }, () => Math.round(3e6 * Math.exp(2.5 * rng())));
        summaries.push({ start_s: D + h * 3600 + i * 300, values });
        byHour.set(h, [...(byHour.get(h) ?? []), ...values]);
      }
    }
    batches.push({ sensor, summaries });
  }
}
const all = [...byHour.values()].flat();

function p95(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(0.95 * (s.length - 1))]!;
}

function within1pct(actual: number | undefined, expected: number, what: string): void {
  assert.ok(actual !== undefined && Math.abs(actual - expected) <= 0.01 * expected, `${what}: ${actual} is not within 1% of ${expected}`);
}

async function load(sql: Sql): Promise<void> {
  await migrate(sql);
  const store = new SummaryStore(sql);
  for (const b of batches) {
    const result = await store.storeBatch(create(IngestRequestSchema, {
      sensorId: b.sensor, streamId: 'rollup-test', sequence: 1n,
      summaries: b.summaries.map(({ start_s, values }) => {
        const sk = newSketch();
        for (const v of values) sk.accept(v);
        return {
          intervalStartS: BigInt(start_s), intervalS: 300, server: '10.7.0.1', serverPort: 443, transport: 'tcp', protocol: 'http', signature: 'GET_/slow',
          count: BigInt(values.length), outcomes: [{ outcome: 'ok', count: BigInt(values.length) }],
          metrics: [{ name: 'ttfr_ns', count: BigInt(values.length), sum: values.reduce((x, y) => x + y, 0), min: Math.min(...values), max: Math.max(...values), sketch: encodeSketchBytes(sk) }],
        };
      }),
    }));
    assert.equal(result, 'stored');
  }
}

const ROLLUP = { delete_source: true, retention_l1_s: null, retention_hourly_s: null, retention_daily_s: null, now: new Date((D + 40 * DAY) * 1000) };

for (const makeEngine of ENGINES) {
  const engine = makeEngine();
  describe(`reporter on rolled-up data, ${engine.name}`, () => {
    let sql: Sql;
    let service: QueryService;
    before(async () => {
      sql = await engine.fresh();
      await load(sql);
      service = new QueryService(new ReportStore(sql, { role: 'wiretime_reader' }));
    });
    after(() => engine.cleanup());

    const series = (resolutionS = 0) => service.getSeries({
      filter: { signature: 'GET_/slow' }, metric: 'ttfr_ns', statistic: Statistic.P95, window: { startS: BigInt(D), endS: BigInt(D + DAY) }, resolutionS,
    });

    test('before the roll-up: level 1, 5-minute buckets', async () => {
      const r = await series();
      assert.equal(r.resolutionS, 300);
      assert.deepEqual(r.levelsS, [300]);
      assert.equal(r.points.reduce((n, p) => n + p.count, 0n), BigInt(all.length));
    });

    test('hourly rows (level 1 deleted): 1-hour buckets, each hour\'s count exact and p95 within 1 %', async () => {
      const report = await runRollup(sql, { ...ROLLUP, hourly_after_s: DAY, daily_after_s: 60 * DAY });
      assert.ok(report.hourly.source_rows_deleted > 0, 'level-1 rows were merged and deleted');
      assert.equal((await sql.query<{ n: bigint }>('SELECT count(*) AS n FROM summaries_l1'))[0]!.n, 0n);
      const r = await series();
      assert.equal(r.resolutionS, 3600);
      assert.deepEqual(r.levelsS, [3600]);
      assert.equal(r.points.length, 24);
      for (const p of r.points) {
        const h = (Number(p.startS) - D) / 3600;
        const vs = byHour.get(h);
        assert.equal(p.count, BigInt(vs?.length ?? 0), `hour ${h}`);
        if (vs) within1pct(p.value, p95(vs), `hour ${h} p95`);
        else assert.equal(p.value, undefined);
      }
      await assert.rejects(series(300), (e: unknown) => e instanceof ServerError && /resolution_s: 300 is finer than the data/.test(e.details));
      const top = await service.getTop({ metric: 'ttfr_ns', statistic: Statistic.P95, window: { startS: BigInt(D + 1800), endS: BigInt(D + DAY) } });
      assert.equal(top.window!.startS, BigInt(D), 'widened to whole hours');
      within1pct(top.rows[0]!.value, p95(all), 'top p95 of the day');
      assert.equal(top.rows[0]!.count, BigInt(all.length));
    });

    test('daily rows (hourly deleted): one point for the day, count exact and p95 within 1 %', async () => {
      await runRollup(sql, { ...ROLLUP, hourly_after_s: DAY, daily_after_s: 2 * DAY });
      const r = await series();
      assert.equal(r.resolutionS, DAY);
      assert.deepEqual(r.levelsS, [DAY]);
      assert.equal(r.points.length, 1);
      assert.equal(r.points[0]!.count, BigInt(all.length));
      within1pct(r.points[0]!.value, p95(all), 'day p95');
    });
  });
}
