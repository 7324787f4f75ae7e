/**
 * The reporter against real databases (PostgreSQL on 127.0.0.1:5432 and PGlite), with data
 * loaded through the collector's SummaryStore.storeBatch (level 1) and level-2 rows written
 * with SQL, all built from known raw durations (seeded PRNG). Expected values are computed
 * here from the raw durations: counts and sums by hand, percentiles by sorting (the value at
 * rank floor(q·(n−1))), compared within the sketches' 1 %. Calls go through a real gRPC
 * server on port 0 and the generated client; the CLI is spawned as a separate process.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { create } from '@bufbuild/protobuf';
import { ClientError, createChannel, createClient, Metadata, Status, type Channel } from 'nice-grpc';
import { IngestRequestSchema } from '../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import { GroupBy, ReportService, Statistic } from '../../proto/src/gen/wiretime/v1/report_pb.ts';
import type { SummarySchema } from '../../proto/src/gen/wiretime/v1/summary_pb.ts';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { niceService } from '../../proto/src/nice-grpc.ts';
import { migrate } from '../../collector/src/store/migrate.ts';
import { SummaryStore } from '../../collector/src/store/summary-store.ts';
import { ENGINES } from '../../collector/src/store/test-engines.ts';
import type { Sql } from '../../collector/src/store/sql.ts';
import { encodeSketchBytes, newSketch } from '../../sensor/src/aggregate/sketch.ts';
import { prng } from '../../test/support/prng.ts';
import { startReporter, statusOf, type RunningReporter } from './server.ts';
import { ReportStore } from './store/report-store.ts';
import { formatTop } from './cli/report-format.ts';

const REPO = join(import.meta.dirname, '..', '..');
const execFileP = promisify(execFile);
const TOKEN = 'reporter-test-token-0123456789';

const DAY = 86_400;
/** 2026-01-05T00:00:00Z: level 1 holds T0 on, hourly rows [T0 − 1 d, T0), daily rows before T0 − 1 d. */
const T0 = 1_767_571_200;
/** The level-1 hour: twelve 5-minute intervals, 3 and 9 empty. */
const H = T0 + 12 * 3600;
const GAPS = new Set([3, 9]);

interface Sig { protocol: string; signature: string; server: string; port: number; scale_ns: number; factor: number; sensors: string[] }
const SIGS: Sig[] = [
  // after = before × factor (intervals 6..11 repeat intervals 0..5 scaled)
  { protocol: 'http', signature: 'GET_/a', server: '10.0.0.1', port: 80, scale_ns: 2e6, factor: 1.001, sensors: ['s1', 's2'] },
  { protocol: 'http', signature: 'GET_/b', server: '10.0.0.2', port: 80, scale_ns: 5e6, factor: 1.5, sensors: ['s1'] },
  { protocol: 'pgsql', signature: 'QUERY', server: '10.0.0.3', port: 5432, scale_ns: 1e6, factor: 1, sensors: ['s1'] },
];

/** raw[signature][sensor][interval index 0..11] → durations (ns); empty for gaps */
const raw = new Map<string, Map<string, number[][]>>();
/** older data of GET_/a: hourly rows (start → values) and daily rows (start → values) */
const hourly = new Map<number, number[]>();
const daily = new Map<number, number[]>();
{
  const rng = prng(20_260_105);
  const draw = (scale: number) => Array.from({ length: 20 + Math.floor(rng() * 20) }, () => Math.round(scale * Math.exp(3 * rng())));
  for (const sig of SIGS) {
    const bySensor = new Map<string, number[][]>();
    for (const sensor of sig.sensors) {
      const intervals: number[][] = [];
      for (let i = 0; i < 12; i++) {
        if (GAPS.has(i)) intervals.push([]);
        else if (i < 6) intervals.push(draw(sig.scale_ns));
        else intervals.push(intervals[i - 6]!.map((v) => Math.round(v * sig.factor)));
      }
      bySensor.set(sensor, intervals);
    }
    raw.set(sig.signature, bySensor);
  }
  for (const h of [2, 10, 20]) hourly.set(T0 - DAY + h * 3600, draw(3e6));
  daily.set(T0 - 3 * DAY, draw(4e6));
  daily.set(T0 - 2 * DAY, draw(6e6));
}

/** The value at rank floor(q·(n−1)) of the sorted values (the sketches' definition). */
function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(q * (s.length - 1))]!;
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** Every value of a signature in interval indexes [from, to), all sensors. */
function values(signature: string, from = 0, to = 12): number[] {
  const out: number[] = [];
  for (const intervals of raw.get(signature)!.values()) for (let i = from; i < to; i++) out.push(...intervals[i]!);
  return out;
}

function sketchBytes(vs: number[]): Uint8Array {
  const s = newSketch();
  for (const v of vs) s.accept(v);
  return encodeSketchBytes(s);
}

function summary(sig: Sig, start_s: number, vs: number[]): MessageInitShape<typeof SummarySchema> {
  return {
    intervalStartS: BigInt(start_s), intervalS: 300, server: sig.server, serverPort: sig.port, transport: 'tcp',
    protocol: sig.protocol, signature: sig.signature, count: BigInt(vs.length),
    outcomes: [{ outcome: 'ok', count: BigInt(vs.length) }],
    metrics: [
      { name: 'ttfr_ns', count: BigInt(vs.length), sum: sum(vs), min: Math.min(...vs), max: Math.max(...vs), sketch: sketchBytes(vs) },
      { name: 'response_bytes', count: BigInt(vs.length), sum: 1000 * vs.length, min: 1000, max: 1000 },
    ],
  };
}

async function load(sql: Sql): Promise<void> {
  await migrate(sql);
  const store = new SummaryStore(sql);
  for (const sensor of ['s1', 's2']) {
    const summaries = [];
    for (const sig of SIGS) {
      const intervals = raw.get(sig.signature)!.get(sensor);
      if (!intervals) continue;
      for (let i = 0; i < 12; i++) if (intervals[i]!.length > 0) summaries.push(summary(sig, H + 300 * i, intervals[i]!));
    }
    const stored = await store.storeBatch(create(IngestRequestSchema, {
      sensorId: sensor, streamId: 'test', sequence: 1n, summaries,
      stats: { packets: sensor === 's1' ? 1000n : 2000n, bytes: 5000n, kernelDrops: 7n, flowsActive: 3n, transactions: 99n, captureTimeS: BigInt(H + 3600) },
    }));
    assert.equal(stored, 'stored');
  }
  // Level 2 for GET_/a, as the roll-up would leave it: hourly rows for the day before T0, daily
  // rows before that, the level-1 rows before T0 and the hourly rows before T0 − 1 d deleted.
  const a = SIGS[0]!;
  const insert = async (interval_s: number, start_s: number, vs: number[]) => {
    const metrics = JSON.stringify({ ttfr_ns: { count: vs.length, sum: sum(vs), min: Math.min(...vs), max: Math.max(...vs), negative_clamped: 0 } });
    const params = [a.server, a.signature, interval_s, new Date(start_s * 1000).toISOString(), vs.length];
    await sql.query(
      `INSERT INTO summaries_l2 (server_id, signature_id, interval_s, interval_start, count, outcomes, metrics, source_rows)
       SELECT s.server_id, g.signature_id, $3, $4::timestamptz, $5, '{}', $6::jsonb, 1
       FROM servers s, signatures g WHERE s.address = $1::inet AND s.port = 80 AND g.protocol = 'http' AND g.name = $2`, [...params, metrics]);
    await sql.query(
      `INSERT INTO summary_sketches_l2 (server_id, signature_id, interval_s, interval_start, metric, sketch)
       SELECT s.server_id, g.signature_id, $3, $4::timestamptz, 'ttfr_ns', $6
       FROM servers s, signatures g WHERE s.address = $1::inet AND s.port = 80 AND g.protocol = 'http' AND g.name = $2 AND $5::int8 > 0`,
      [...params, sketchBytes(vs)]);
  };
  for (const [start, vs] of hourly) await insert(3600, start, vs);
  for (const [start, vs] of daily) await insert(DAY, start, vs);
  await sql.query(`UPDATE rollup_state SET rolled_until = $1::timestamptz, source_deleted_until = $1::timestamptz WHERE interval_s = 3600`, [new Date(T0 * 1000).toISOString()]);
  await sql.query(`UPDATE rollup_state SET rolled_until = $1::timestamptz, source_deleted_until = $1::timestamptz WHERE interval_s = 86400`, [new Date((T0 - DAY) * 1000).toISOString()]);
}

function within1pct(actual: number | undefined, expected: number, what: string): void {
  assert.ok(actual !== undefined, `${what}: no value`);
  assert.ok(Math.abs(actual - expected) <= 0.01 * expected + 1e-9, `${what}: ${actual} is not within 1% of ${expected}`);
}

async function rejectsWith(p: Promise<unknown>, code: Status, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ClientError, `not a ClientError: ${String(err)}`);
    assert.equal(Status[err.code], Status[code], err.details);
    assert.match(err.details, pattern);
    return true;
  });
}

for (const makeEngine of ENGINES) {
  const engine = makeEngine();
  describe(`reporter on ${engine.name}`, () => {
    let sql: Sql;
    let reports: ReportStore;
    let reporter: RunningReporter;
    let channel: Channel;
    const auth = { metadata: Metadata({ authorization: `Bearer ${TOKEN}` }) };
    let client: ReturnType<typeof createClient<ReturnType<typeof niceService<typeof ReportService.method>>>>;
    const tmp = mkdtempSync(join(tmpdir(), 'wiretime-reporter-'));

    before(async () => {
      sql = await engine.fresh();
      await load(sql);
      reports = new ReportStore(sql, { role: 'wiretime_reader', statement_timeout_ms: 5000 });
      reporter = await startReporter({ store: reports, listen: '127.0.0.1:0', tokens: new Map([[TOKEN, 'tests']]) });
      channel = createChannel(`127.0.0.1:${reporter.port}`);
      client = createClient(niceService(ReportService), channel, { '*': auth });
    });
    after(async () => {
      channel?.close();
      await reporter?.close();
      await engine.cleanup();
      rmSync(tmp, { recursive: true, force: true });
    });

    test('series of a signature over level 1: 5-minute buckets, gaps filled, p95 and count from the raw durations', async () => {
      const r = await client.getSeries({ filter: { protocol: 'http', signature: 'GET_/a' }, metric: 'ttfr_ns', statistic: Statistic.P95, window: { startS: BigInt(H), endS: BigInt(H + 3600) } });
      assert.equal(r.resolutionS, 300);
      assert.deepEqual(r.levelsS, [300]);
      assert.equal(r.relativeError, 0.01);
      assert.equal(r.points.length, 12);
      for (let i = 0; i < 12; i++) {
        const p = r.points[i]!;
        assert.equal(p.startS, BigInt(H + 300 * i));
        const vs = values('GET_/a', i, i + 1);
        assert.equal(p.count, BigInt(vs.length), `interval ${i}: count of both sensors`);
        if (GAPS.has(i)) assert.equal(p.value, undefined, `interval ${i} is a gap`);
        else within1pct(p.value, quantile(vs, 0.95), `interval ${i} p95`);
      }
      const avg = await client.getSeries({ filter: { signature: 'GET_/a' }, metric: 'ttfr_ns', statistic: Statistic.AVG, window: { startS: BigInt(H), endS: BigInt(H + 3600) }, resolutionS: 3600 });
      assert.equal(avg.points.length, 1);
      const all = values('GET_/a');
      assert.ok(Math.abs(avg.points[0]!.value! - sum(all) / all.length) < 1e-6, 'avg = sum / count, exact');
      const p99 = await client.getSeries({ filter: { server: '10.0.0.0/24', serverPort: 80 }, metric: 'ttfr_ns', statistic: Statistic.P99, window: { startS: BigInt(H), endS: BigInt(H + 3600) }, resolutionS: 3600 });
      within1pct(p99.points[0]!.value, quantile([...values('GET_/a'), ...values('GET_/b')], 0.99), 'p99 of both port-80 servers');
    });

    test('series over old windows reads the rolled-up levels: daily rows, then hourly rows summed per day, then level 1', async () => {
      const r = await client.getSeries({ filter: { protocol: 'http', signature: 'GET_/a' }, metric: 'ttfr_ns', statistic: Statistic.P95, window: { startS: BigInt(T0 - 3 * DAY), endS: BigInt(T0 + DAY) } });
      assert.equal(r.resolutionS, DAY, 'the window reaches daily rows: 1-day buckets');
      assert.deepEqual(r.levelsS, [300, 3600, DAY]);
      assert.deepEqual(r.points.map((p) => Number(p.startS)), [T0 - 3 * DAY, T0 - 2 * DAY, T0 - DAY, T0]);
      const dayBefore = [...hourly.values()].flat();
      const expected = [daily.get(T0 - 3 * DAY)!, daily.get(T0 - 2 * DAY)!, dayBefore, values('GET_/a')];
      r.points.forEach((p, i) => {
        assert.equal(p.count, BigInt(expected[i]!.length), `day ${i} count`);
        within1pct(p.value, quantile(expected[i]!, 0.95), `day ${i} p95`);
      });
      // hourly rows for the day before T0: 1-hour buckets, gaps between the three stored hours
      const h = await client.getSeries({ filter: { signature: 'GET_/a' }, metric: 'ttfr_ns', statistic: Statistic.MAX, window: { startS: BigInt(T0 - DAY), endS: BigInt(T0) } });
      assert.equal(h.resolutionS, 3600);
      assert.deepEqual(h.levelsS, [3600]);
      assert.equal(h.points.length, 24);
      for (const p of h.points) {
        const vs = hourly.get(Number(p.startS));
        assert.equal(p.value, vs === undefined ? undefined : Math.max(...vs));
      }
      await rejectsWith(client.getSeries({ filter: { signature: 'GET_/a' }, metric: 'ttfr_ns', statistic: Statistic.P95, window: { startS: BigInt(T0 - 3 * DAY), endS: BigInt(T0) }, resolutionS: 3600 }),
        Status.INVALID_ARGUMENT, /resolution_s: 3600 is finer than the data of this window \(it reaches daily rows/);
      await rejectsWith(client.getSeries({ filter: { signature: 'GET_/a' }, metric: 'ttfr_ns', statistic: Statistic.P95, window: { startS: BigInt(H), endS: BigInt(H + 3600) }, resolutionS: 60 }),
        Status.INVALID_ARGUMENT, /resolution_s: 60 is finer than the data of this window \(300-second intervals\)/);
    });

    test('top-N: slowest signatures by p95 in order, with counts; servers by count; limit and min_count', async () => {
      const window = { startS: BigInt(H), endS: BigInt(H + 3600) };
      const r = await client.getTop({ groupBy: GroupBy.SIGNATURE, metric: 'ttfr_ns', statistic: Statistic.P95, window, limit: 2 });
      const expected = SIGS.map((s) => ({ s, p95: quantile(values(s.signature), 0.95), n: values(s.signature).length }))
        .sort((x, y) => y.p95 - x.p95);
      assert.equal(r.totalGroups, 3n);
      assert.deepEqual(r.rows.map((x) => x.key!.signature), expected.slice(0, 2).map((e) => e.s.signature));
      r.rows.forEach((row, i) => {
        within1pct(row.value, expected[i]!.p95, `${row.key!.signature} p95`);
        assert.equal(row.count, BigInt(expected[i]!.n));
        assert.equal(row.transactions, BigInt(expected[i]!.n));
      });
      // the same answer in-process (as a demo command would call it), printed as a table
      const inproc = await reporter.service.getTop({ groupBy: GroupBy.SIGNATURE, metric: 'ttfr_ns', statistic: Statistic.P95, window, limit: 2 });
      assert.deepEqual(inproc.rows.map((x) => [x.key!.signature, x.value, x.count]), r.rows.map((x) => [x.key!.signature, x.value, x.count]));
      assert.match(formatTop(inproc, 'ttfr_ns', Statistic.P95), new RegExp(`^http +${expected[0]!.s.signature.replace('/', '\\/')} +[\\d.]+ +${expected[0]!.n} `, 'm'));
      const servers = await client.getTop({ groupBy: GroupBy.SERVER, metric: 'ttfr_ns', statistic: Statistic.COUNT, window });
      const byCount = SIGS.map((s) => ({ server: s.server, n: values(s.signature).length })).sort((x, y) => y.n - x.n);
      assert.deepEqual(servers.rows.map((x) => [x.key!.server, x.value]), byCount.map((e) => [e.server, e.n]));
      const threshold = values('GET_/b').length + 1;
      const few = await client.getTop({ metric: 'ttfr_ns', statistic: Statistic.COUNT, window, minCount: BigInt(threshold) });
      const expectedFew = SIGS.filter((s) => values(s.signature).length >= threshold).sort((x, y) => values(y.signature).length - values(x.signature).length);
      assert.deepEqual(few.rows.map((x) => x.key!.signature), expectedFew.map((s) => s.signature), 'GET_/b and anything smaller left out');
      assert.equal(few.totalGroups, BigInt(expectedFew.length));
    });

    test('compare two windows: the change per signature, significant only beyond the sketches\' 1% error', async () => {
      const r = await client.compare({
        metric: 'ttfr_ns', statistic: Statistic.P95,
        before: { startS: BigInt(H), endS: BigInt(H + 1800) }, after: { startS: BigInt(H + 1800), endS: BigInt(H + 3600) },
      });
      assert.equal(r.totalGroups, 3n);
      const row = (name: string) => r.rows.find((x) => x.key!.signature === name)!;
      for (const sig of SIGS) {
        const x = row(sig.signature);
        within1pct(x.before, quantile(values(sig.signature, 0, 6), 0.95), `${sig.signature} before`);
        within1pct(x.after, quantile(values(sig.signature, 6, 12), 0.95), `${sig.signature} after`);
        assert.equal(x.beforeCount, BigInt(values(sig.signature, 0, 6).length));
        assert.equal(x.change, x.after - x.before);
        // the rule, from the estimates: the ranges [v/1.01, v/0.99] do not overlap
        const lo = Math.min(x.before, x.after), hi = Math.max(x.before, x.after);
        assert.equal(x.significant, hi / 1.01 > lo / 0.99, `${sig.signature} significance`);
      }
      assert.equal(row('GET_/b').significant, true, '+50% is significant');
      within1pct(row('GET_/b').changeRatio! + 1, 1.5, 'GET_/b ratio');
      assert.equal(row('QUERY').significant, false, 'the same durations: no change');
      assert.equal(row('QUERY').change, 0);
      assert.ok(Math.abs(row('GET_/a').changeRatio!) < 0.021, '+0.1% stays within the error');
      assert.equal(row('GET_/a').significant, false, '+0.1% is not significant');
      assert.equal(r.rows[0]!.key!.signature, 'GET_/b', 'significant changes first');
      // exact statistics: any change is significant
      const avg = await client.compare({
        metric: 'ttfr_ns', statistic: Statistic.AVG, filter: { signature: 'GET_/a' },
        before: { startS: BigInt(H), endS: BigInt(H + 1800) }, after: { startS: BigInt(H + 1800), endS: BigInt(H + 3600) },
      });
      const b = values('GET_/a', 0, 6), a = values('GET_/a', 6, 12);
      assert.ok(Math.abs(avg.rows[0]!.change - (sum(a) / a.length - sum(b) / b.length)) < 1e-3);
      assert.equal(avg.rows[0]!.significant, true);
    });

    test('lists: sensors with their statistics, protocols, signatures and servers with filters and paging', async () => {
      const p1 = await client.listSensors({ pageSize: 1 });
      assert.deepEqual(p1.sensors.map((s) => s.sensorId), ['s1']);
      assert.equal(p1.sensors[0]!.packets, 1000n);
      assert.equal(p1.sensors[0]!.kernelDrops, 7n);
      assert.equal(p1.sensors[0]!.captureTimeS, BigInt(H + 3600));
      assert.ok(p1.sensors[0]!.hasStats);
      assert.ok(Math.abs(Number(p1.sensors[0]!.lastSeenS) - Date.now() / 1000) < 600, 'last seen: just now');
      const p2 = await client.listSensors({ pageSize: 1, pageToken: p1.nextPageToken });
      assert.deepEqual(p2.sensors.map((s) => [s.sensorId, s.packets]), [['s2', 2000n]]);
      assert.equal(p2.nextPageToken, '');
      assert.deepEqual((await client.listSensors({ sensorIdPrefix: 's2' })).sensors.map((s) => s.sensorId), ['s2']);

      assert.deepEqual((await client.listProtocols({})).protocols.map((p) => [p.protocol, p.signatures]), [['http', 2n], ['pgsql', 1n]]);
      assert.deepEqual((await client.listSignatures({ protocol: 'http' })).signatures.map((s) => s.signature), ['GET_/a', 'GET_/b']);
      assert.deepEqual((await client.listSignatures({ nameContains: '/B' })).signatures.map((s) => s.signature), ['GET_/b']);
      const names: string[] = [];
      let token = '';
      for (let i = 0; i < 5; i++) {
        const page = await client.listSignatures({ pageSize: 2, pageToken: token });
        names.push(...page.signatures.map((s) => `${s.protocol}/${s.signature}`));
        token = page.nextPageToken;
        if (token === '') break;
      }
      assert.deepEqual(names, ['http/GET_/a', 'http/GET_/b', 'pgsql/QUERY']);
      const servers = await client.listServers({ server: '10.0.0.2/31' });
      assert.deepEqual(servers.servers.map((s) => [s.server, s.serverPort, s.transport]), [['10.0.0.2', 80, 'tcp'], ['10.0.0.3', 5432, 'tcp']]);
      const s1 = await client.listServers({ pageSize: 1, serverPort: 80 });
      const s2 = await client.listServers({ pageSize: 1, serverPort: 80, pageToken: s1.nextPageToken });
      assert.deepEqual([...s1.servers, ...s2.servers].map((s) => s.server), ['10.0.0.1', '10.0.0.2']);
    });

    test('bad requests are refused with INVALID_ARGUMENT naming the field', async () => {
      const w = { startS: BigInt(H), endS: BigInt(H + 3600) };
      await rejectsWith(client.getSeries({ metric: 'ttfr_ns', statistic: Statistic.P95, window: { startS: BigInt(H), endS: BigInt(H) } }), Status.INVALID_ARGUMENT, /window: end_s .* is not after start_s/);
      await rejectsWith(client.getTop({ metric: 'ttfr_ns', statistic: Statistic.P95, window: { startS: BigInt(H - 500 * DAY), endS: BigInt(H) } }), Status.INVALID_ARGUMENT, /window: 500\.0 days is longer than the 400 days allowed/);
      await rejectsWith(client.getSeries({ metric: 'latency', statistic: Statistic.P95, window: w }), Status.INVALID_ARGUMENT, /metric: "latency" is not a metric; known: .*ttfr_ns/);
      await rejectsWith(client.getSeries({ metric: 'response_bytes', statistic: Statistic.P95, window: w }), Status.INVALID_ARGUMENT, /statistic: percentiles exist for timing metrics/);
      await rejectsWith(client.getSeries({ metric: 'ttfr_ns', window: w }), Status.INVALID_ARGUMENT, /statistic: required/);
      await rejectsWith(client.getTop({ metric: 'ttfr_ns', statistic: Statistic.P95, window: w, limit: 5000 }), Status.INVALID_ARGUMENT, /limit: 5000 is more than 1000/);
      await rejectsWith(client.getSeries({ metric: 'ttfr_ns', statistic: Statistic.P95, window: w, maxPoints: 5000 }), Status.INVALID_ARGUMENT, /max_points: 5000 is more than 2000/);
      await rejectsWith(client.getSeries({ metric: 'ttfr_ns', statistic: Statistic.P95, window: { startS: BigInt(T0), endS: BigInt(T0 + 30 * DAY) }, resolutionS: 300 }), Status.INVALID_ARGUMENT, /gives 8640 points .* more than max_points 500/);
      await rejectsWith(client.listSignatures({ pageSize: 2000 }), Status.INVALID_ARGUMENT, /page_size: 2000 is more than 1000/);
      await rejectsWith(client.listSignatures({ pageToken: 'garbage' }), Status.INVALID_ARGUMENT, /page_token: not a next_page_token/);
      await rejectsWith(client.getTop({ filter: { server: '10.0.0.300' }, metric: 'ttfr_ns', statistic: Statistic.P95, window: w }), Status.INVALID_ARGUMENT, /filter\.server: "10\.0\.0\.300" is not an IP address/);
      await rejectsWith(client.compare({ metric: 'ttfr_ns', statistic: Statistic.P95, before: w }), Status.INVALID_ARGUMENT, /after: required/);
    });

    test('without a valid bearer token: UNAUTHENTICATED; health stays open', async () => {
      const bare = createClient(niceService(ReportService), channel);
      await rejectsWith(bare.listSensors({}), Status.UNAUTHENTICATED, /bearer token/);
      await rejectsWith(bare.listSensors({}, { metadata: Metadata({ authorization: 'Bearer wrong-token-0123456789' }) }), Status.UNAUTHENTICATED, /bearer token/);
      const { HealthDefinition } = await import('nice-grpc-server-health');
      const health = createClient(HealthDefinition, channel);
      assert.equal((await health.check({ service: 'wiretime.v1.ReportService' })).status, 1 /* SERVING */);
    });

    test('a query past the statement timeout is stopped and becomes DEADLINE_EXCEEDED', async () => {
      const slow = new ReportStore(sql, { statement_timeout_ms: 50 });
      const err = await slow.read((q) => q.query('SELECT pg_sleep(0.3)')).then(() => null, (e: unknown) => e);
      if (engine.name === 'pglite') {
        // PGlite runs PostgreSQL single-user in WASM, without the timer that enforces
        // statement_timeout: the setting is accepted and not enforced (docs/api.md says so).
        assert.equal(err, null);
        return;
      }
      assert.ok(err !== null, 'the statement was not stopped');
      const status = statusOf(err);
      assert.equal(Status[status.code], 'DEADLINE_EXCEEDED', status.details);
      assert.match(status.details, /narrow the window or the filter/);
    });

    test('read-only: a write through the reporter\'s connection fails, reads run as wiretime_reader', async () => {
      assert.deepEqual(await reports.read((q) => q.query('SELECT current_user::text AS u')), [{ u: 'wiretime_reader' }]);
      await assert.rejects(reports.read((q) => q.query(`INSERT INTO sensors (sensor_id) VALUES ('intruder')`)), /read-only transaction/);
      await assert.rejects(reports.read((q) => q.query(`UPDATE rollup_state SET rolled_until = now()`)), /read-only transaction/);
      if (engine.freshUrl) {
        // a store opened on a URL: the connection itself starts read-only
        const url = await engine.freshUrl();
        const writer = await SummaryStore.open(url, null);
        await writer.close();
        const own = await ReportStore.open(url, null);
        try {
          await assert.rejects(own.sql.query(`INSERT INTO sensors (sensor_id) VALUES ('intruder')`), /read-only transaction/);
        } finally {
          await own.close();
        }
      }
      assert.equal((await sql.query(`SELECT count(*)::int4 AS n FROM sensors WHERE sensor_id = 'intruder'`))[0]!.n, 0);
    });

    test('the CLI prints aligned tables and a chart, and JSON with --json', async () => {
      const tokenFile = join(tmp, 'token');
      writeFileSync(tokenFile, `${TOKEN}\n`);
      const common = ['--reporter', `127.0.0.1:${reporter.port}`, '--token-file', tokenFile];
      const top = await execFileP(process.execPath, [join(REPO, 'bin/wiretime.js'), 'report', 'top', ...common, '--from', String(H), '--to', String(H + 3600), '--stat', 'count'], { cwd: REPO });
      const lines = top.stdout.split('\n');
      assert.match(lines[1]!, /^protocol +signature +count ttfr_ns +values +transactions$/);
      assert.match(lines[2]!, /^-+ +-+ +-+/);
      const n = (s: string) => values(s).length;
      assert.match(lines[3]!, new RegExp(`^http +GET_/a +${n('GET_/a')} +${n('GET_/a')} +${n('GET_/a')}$`));
      // numbers are right-aligned: every row has the same length as the header
      assert.equal(lines[3]!.length, lines[1]!.length);
      const series = await execFileP(process.execPath, [join(REPO, 'bin/wiretime.js'), 'report', 'series', ...common, '--signature', 'GET_/a',
        '--from', new Date(H * 1000).toISOString(), '--to', new Date((H + 3600) * 1000).toISOString()], { cwd: REPO });
      assert.match(series.stdout, /p95 ttfr_ns \(ms\), 2026-01-05 12:00 – 2026-01-05 13:00 UTC, every 300 s/);
      assert.match(series.stdout, /│.*█/, 'a bar chart');
      assert.match(series.stdout, /2026-01-05 12:15 +- +0\n/, 'a gap: no value, 0 values');
      const json = await execFileP(process.execPath, [join(REPO, 'bin/wiretime.js'), 'report', 'signatures', ...common, '--json', '--protocol', 'pgsql'], { cwd: REPO });
      assert.equal(JSON.parse(json.stdout).signatures[0].signature, 'QUERY');
      const bad = await execFileP(process.execPath, [join(REPO, 'bin/wiretime.js'), 'report', 'top', ...common, '--metric', 'latency'], { cwd: REPO }).catch((e) => e);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /INVALID_ARGUMENT: metric: "latency" is not a metric/);
    });
  });
}
