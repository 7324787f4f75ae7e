// SummaryStore on both engines (real PostgreSQL and PGlite), driven by the ENGINES table.
import { after, afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { IngestRequestSchema } from '../../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import type { Summary } from '../../../proto/src/gen/wiretime/v1/summary_pb.ts';
import { migrate } from './migrate.ts';
import { MAX_PARAMETERS, type Sql } from './sql.ts';
import { SummaryStore, chunkRows } from './summary-store.ts';
import { ENGINES, count, makeBatch, makeSummary, recording, type Recorded } from './test-engines.ts';

const TABLES = ['sensors', 'ingest_batches', 'servers', 'signatures', 'summaries_l1', 'summary_sketches'];

async function counts(sql: Sql): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of TABLES) out[t] = await count(sql, t);
  return out;
}

/** What a stored summary must read back as, computed from the input message. */
function expected(s: Summary) {
  const outcomes: Record<string, number> = {};
  for (const o of s.outcomes) outcomes[o.outcome] = (outcomes[o.outcome] ?? 0) + Number(o.count);
  const metrics: Record<string, unknown> = {};
  const sketches: Record<string, Uint8Array> = {};
  for (const m of s.metrics) {
    metrics[m.name] = { count: Number(m.count), sum: m.sum, min: m.min, max: m.max, negative_clamped: Number(m.negativeClamped) };
    if (m.sketch.length) sketches[m.name] = m.sketch;
  }
  return {
    key: `${s.server}|${s.serverPort}|${s.transport}|${s.protocol}|${s.signature}|${s.intervalStartS * 1000n}|${s.intervalS}`,
    count: s.count, partial: s.partial, outcomes, metrics, sketches,
  };
}

async function readBack(sql: Sql, sensor: string) {
  const rows = await sql.query<{
    server: string; port: number; transport: string; protocol: string; signature: string; interval_start: Date; interval_s: number;
    count: bigint; partial: boolean; outcomes: unknown; metrics: unknown; server_id: bigint; signature_id: bigint;
  }>('SELECT * FROM summaries_l1_named WHERE sensor_id = $1', [sensor]);
  const sk = await sql.query<{ server_id: bigint; signature_id: bigint; interval_start: Date; interval_s: number; metric: string; sketch: Uint8Array }>(
    'SELECT server_id, signature_id, interval_start, interval_s, metric, sketch FROM summary_sketches WHERE sensor_id = $1', [sensor]);
  const byKey = new Map<string, ReturnType<typeof expected>>();
  for (const r of rows) {
    const sketches: Record<string, Uint8Array> = {};
    for (const k of sk) {
      if (k.server_id === r.server_id && k.signature_id === r.signature_id && k.interval_start.getTime() === r.interval_start.getTime() && k.interval_s === r.interval_s) {
        sketches[k.metric] = new Uint8Array(k.sketch); // a Buffer on pg: compare as plain bytes
      }
    }
    const key = `${r.server}|${r.port}|${r.transport}|${r.protocol}|${r.signature}|${r.interval_start.getTime()}|${r.interval_s}`;
    byKey.set(key, { key, count: r.count, partial: r.partial, outcomes: r.outcomes as Record<string, number>, metrics: r.metrics as Record<string, unknown>, sketches });
  }
  return byKey;
}

for (const makeEngine of ENGINES) {
  const engine = makeEngine();
  describe(`SummaryStore on ${engine.name}`, () => {
    afterEach(() => engine.cleanup());
    after(() => engine.cleanup());

    const openStore = async (opts = {}, log?: Recorded[]) => {
      const raw = await engine.fresh();
      await migrate(raw);
      const sql = log ? recording(raw, log) : raw;
      return { sql: raw, store: new SummaryStore(sql, opts) };
    };

    test('stores a batch whose rows read back equal to the input', async () => {
      const { sql, store } = await openStore();
      const batch = makeBatch('sensor-a', 1n, 60);
      assert.equal(await store.storeBatch(batch), 'stored');
      const got = await readBack(sql, 'sensor-a');
      assert.equal(got.size, batch.summaries.length);
      for (const s of batch.summaries) {
        const e = expected(s);
        assert.deepEqual(got.get(e.key), e, e.key);
      }
      // dimensions are shared, not repeated per row
      const servers = new Set(batch.summaries.map((s) => `${s.server}|${s.serverPort}|${s.transport}`));
      const sigs = new Set(batch.summaries.map((s) => `${s.protocol}|${s.signature}`));
      assert.equal(await count(sql, 'servers'), servers.size);
      assert.equal(await count(sql, 'signatures'), sigs.size);
      const b = await sql.query<{ summary_count: number; summaries_stored: number }>('SELECT summary_count, summaries_stored FROM ingest_batches');
      assert.deepEqual(b, [{ summary_count: 60, summaries_stored: 60 }]);
      const st = await sql.query<{ packets: bigint; kernel_drops: bigint; flows_active: bigint; capture_time: Date }>(
        'SELECT packets, kernel_drops, flows_active, capture_time FROM sensors WHERE sensor_id = $1', ['sensor-a']);
      assert.deepEqual(st, [{ packets: batch.stats!.packets, kernel_drops: batch.stats!.kernelDrops, flows_active: batch.stats!.flowsActive,
        capture_time: new Date(Number(batch.stats!.captureTimeS) * 1000) }]);
    });

    test('the same batch again is a duplicate and writes nothing, even from a cold store', async () => {
      const { sql, store } = await openStore();
      const batch = makeBatch('sensor-a', 7n, 25);
      assert.equal(await store.storeBatch(batch), 'stored');
      const before = await counts(sql);
      const lastSeen = await sql.query('SELECT last_seen FROM sensors');
      assert.equal(await store.storeBatch(batch), 'duplicate');
      assert.equal(await new SummaryStore(sql).storeBatch(batch), 'duplicate');
      assert.deepEqual(await counts(sql), before);
      assert.deepEqual(await sql.query('SELECT last_seen FROM sensors'), lastSeen);
      assert.equal(before.summaries_l1, 25);
      assert.equal(before.summary_sketches, 25 * 3);
    });

    test('an interval replayed under a new sequence is stored once', async () => {
      const { sql, store } = await openStore();
      assert.equal(await store.storeBatch(makeBatch('sensor-a', 1n, 10)), 'stored');
      const before = await counts(sql);
      // summaries 5..14: 5..9 already stored under sequence 1, 10..14 new
      const replay = makeBatch('sensor-a', 2n, 10, 5);
      replay.summaries.push(makeSummary(14)); // and one key twice within the batch
      assert.equal(await store.storeBatch(replay), 'stored');
      assert.equal(await count(sql, 'summaries_l1'), before.summaries_l1 + 5);
      assert.equal(await count(sql, 'summary_sketches'), before.summary_sketches + 5 * 3);
      assert.deepEqual(await sql.query('SELECT sequence, summary_count, summaries_stored FROM ingest_batches ORDER BY sequence'),
        [{ sequence: 1n, summary_count: 10, summaries_stored: 10 }, { sequence: 2n, summary_count: 11, summaries_stored: 5 }]);
    });

    test('two sensors with the same sequence numbers are independent', async () => {
      const { sql, store } = await openStore();
      for (const seq of [1n, 2n]) {
        assert.equal(await store.storeBatch(makeBatch('sensor-a', seq, 8, Number(seq) * 100)), 'stored');
        assert.equal(await store.storeBatch(makeBatch('sensor-b', seq, 8, Number(seq) * 100)), 'stored');
      }
      assert.equal(await store.storeBatch(makeBatch('sensor-b', 2n, 8, 200)), 'duplicate');
      assert.equal(await count(sql, 'summaries_l1', 'sensor_id = $1', ['sensor-a']), 16);
      assert.equal(await count(sql, 'summaries_l1', 'sensor_id = $1', ['sensor-b']), 16);
      assert.equal(await count(sql, 'ingest_batches'), 4);
      assert.equal(await count(sql, 'sensors'), 2);
      // same keys from two sensors: two rows each, same dimension ids
      assert.equal(await count(sql, 'servers'), new Set([...makeBatch('x', 0n, 8, 100).summaries, ...makeBatch('x', 0n, 8, 200).summaries]
        .map((s) => `${s.server}|${s.serverPort}|${s.transport}`)).size);
    });

    test('a spool created again starts a new stream at sequence 1: its batches are stored, not taken for duplicates', async () => {
      const { sql, store } = await openStore();
      for (const seq of [1n, 2n, 3n]) assert.equal(await store.storeBatch(makeBatch('sensor-a', seq, 4, Number(seq) * 10)), 'stored');
      // The sensor lost its spool directory: new stream id, sequences from 1 again, new intervals.
      for (const seq of [1n, 2n]) assert.equal(await store.storeBatch(makeBatch('sensor-a', seq, 4, 100 + Number(seq) * 10, undefined, 'stream-2')), 'stored');
      assert.equal(await store.storeBatch(makeBatch('sensor-a', 2n, 4, 120, undefined, 'stream-2')), 'duplicate');
      assert.equal(await count(sql, 'summaries_l1'), 3 * 4 + 2 * 4);
      assert.equal(await store.lastSequence('sensor-a', 'stream-1'), 3n);
      assert.equal(await store.lastSequence('sensor-a', 'stream-2'), 2n);
    });

    test('lastSequence is the highest stored sequence, 0n for an unknown sensor', async () => {
      const { store } = await openStore();
      assert.equal(await store.lastSequence('nobody', 'stream-1'), 0n);
      for (const seq of [1n, 2n, 5n, 3n]) await store.storeBatch(makeBatch('sensor-a', seq, 2, Number(seq) * 10));
      await store.storeBatch(makeBatch('sensor-b', 9n, 0));
      assert.equal(await store.lastSequence('sensor-a', 'stream-1'), 5n);
      assert.equal(await store.lastSequence('sensor-b', 'stream-1'), 9n);
      const big = (1n << 63n) - 1n;
      await store.storeBatch(makeBatch('sensor-c', big, 1));
      assert.equal(await store.lastSequence('sensor-c', 'stream-1'), big);
      await assert.rejects(store.storeBatch(makeBatch('sensor-c', 1n << 63n, 1)), RangeError);
    });

    test('a batch of 5 000 summaries is chunked below the parameter limit', async () => {
      for (const [maxRowsPerStatement, factStatements, sketchStatements] of [
        [1000, Math.ceil(5000 / 1000), Math.ceil(15000 / 1000)],
        [Infinity, Math.ceil(5000 / Math.floor(MAX_PARAMETERS / 9)), Math.ceil(15000 / Math.floor(MAX_PARAMETERS / 7))],
      ] as const) {
        const log: Recorded[] = [];
        const { sql, store } = await openStore({ maxRowsPerStatement }, log);
        const batch = makeBatch('sensor-a', 1n, 5000);
        assert.equal(await store.storeBatch(batch), 'stored');
        assert.equal(await count(sql, 'summaries_l1'), 5000);
        assert.equal(await count(sql, 'summary_sketches'), 15000);
        assert.equal(log.filter((r) => r.text.includes('INSERT INTO summaries_l1')).length, factStatements);
        assert.equal(log.filter((r) => r.text.includes('INSERT INTO summary_sketches')).length, sketchStatements);
        assert.ok(log.every((r) => r.params <= MAX_PARAMETERS), `max params ${Math.max(...log.map((r) => r.params))}`);
        const got = await readBack(sql, 'sensor-a');
        for (const i of [0, 1, 2, 4, 999, 1000, 4999]) {
          const e = expected(batch.summaries[i]!);
          assert.deepEqual(got.get(e.key), e);
        }
        await engine.cleanup();
      }
      assert.deepEqual(chunkRows([1, 2, 3, 4, 5], 30_000).map((c) => c.length), [2, 2, 1]);
    });

    test('intervals in two months get their own day partitions', async () => {
      const { sql, store } = await openStore();
      const may = 1_714_521_600n; // 2024-05-01T00:00:00Z
      const june = 1_718_409_600n; // 2024-06-15T00:00:00Z
      const batch = makeBatch('sensor-a', 1n, 12, 0, may);
      batch.summaries.push(...makeBatch('sensor-a', 1n, 12, 12, june).summaries);
      assert.equal(await store.storeBatch(batch), 'stored');
      const parts = await sql.query<{ part: string; n: bigint }>(
        `SELECT tableoid::regclass::text AS part, count(*) AS n FROM summaries_l1 GROUP BY 1 ORDER BY 1`);
      assert.deepEqual(parts, [{ part: 'summaries_l1_20240501', n: 12n }, { part: 'summaries_l1_20240615', n: 12n }]);
      const sk = await sql.query<{ part: string; n: bigint }>(
        `SELECT tableoid::regclass::text AS part, count(*) AS n FROM summary_sketches GROUP BY 1 ORDER BY 1`);
      assert.deepEqual(sk, [{ part: 'summary_sketches_20240501', n: 36n }, { part: 'summary_sketches_20240615', n: 36n }]);
      const children = await sql.query<{ c: string }>(
        `SELECT inhrelid::regclass::text AS c FROM pg_inherits WHERE inhparent = 'summaries_l1'::regclass ORDER BY 1`);
      assert.deepEqual(children.map((r) => r.c), ['summaries_l1_20240501', 'summaries_l1_20240615', 'summaries_l1_default']);
    });

    test('creating a partition moves that day out of the DEFAULT partition', async () => {
      const { sql, store } = await openStore();
      await store.storeBatch(makeBatch('sensor-a', 1n, 3)); // creates sensor, dimensions, 2024-05-01
      // a row for a day without a partition (written behind the store's back) lands in DEFAULT
      await sql.query(`INSERT INTO summaries_l1 (server_id, signature_id, interval_start, sensor_id, interval_s, count)
        SELECT server_id, signature_id, '2024-07-03T10:00:00Z', sensor_id, interval_s, count FROM summaries_l1 LIMIT 1`);
      assert.equal(await count(sql, 'summaries_l1_default'), 1);
      const created = await sql.query<{ c: boolean }>(`SELECT wiretime_ensure_day_partition('2024-07-03T23:59:59Z') AS c`);
      assert.deepEqual(created, [{ c: true }]);
      assert.equal(await count(sql, 'summaries_l1_default'), 0);
      assert.equal(await count(sql, 'summaries_l1_20240703'), 1);
      assert.deepEqual(await sql.query(`SELECT wiretime_ensure_day_partition('2024-07-03T00:00:00Z') AS c`), [{ c: false }]);
    });

    test('a batch without summaries records the batch and the stats', async () => {
      const { sql, store } = await openStore();
      const hb = create(IngestRequestSchema, { sensorId: 'sensor-z', streamId: 'stream-1', sequence: 1n, stats: { packets: 77n } });
      assert.equal(await store.storeBatch(hb), 'stored');
      assert.deepEqual(await sql.query('SELECT packets, capture_time FROM sensors'), [{ packets: 77n, capture_time: null }]);
      assert.equal(await store.lastSequence('sensor-z', 'stream-1'), 1n);
    });

    if (engine.freshUrl) {
      test('SummaryStore.open(url) migrates and concurrent stores of one batch store it once', async () => {
        const url = await engine.freshUrl!();
        const [a, b] = await Promise.all([SummaryStore.open(url, null), SummaryStore.open(url, null)]);
        try {
          const batch = makeBatch('sensor-a', 1n, 300);
          const results = await Promise.all([a.storeBatch(batch), b.storeBatch(batch)]);
          assert.deepEqual(results.sort(), ['duplicate', 'stored']);
          assert.equal(await count(a.sql, 'summaries_l1'), 300);
          // different batches sharing new dimensions, concurrently
          const r2 = await Promise.all([a.storeBatch(makeBatch('sensor-b', 1n, 300, 1000)), b.storeBatch(makeBatch('sensor-c', 1n, 300, 1000))]);
          assert.deepEqual(r2, ['stored', 'stored']);
          assert.equal(await count(a.sql, 'summaries_l1'), 900);
        } finally {
          await a.close();
          await b.close();
        }
      });
    }
  });
}
