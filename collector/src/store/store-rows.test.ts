// SummaryStore.storeRows (batches the fast decoder turned into COPY payloads) against
// storeBatch (the same batches decoded by protobuf-es), on both engines: every table reads back
// the same — facts, sketches, dimensions, the idempotency record, the sensor's stats — for a
// new batch, a replayed sequence, an interval replayed under a new sequence (the COPY meets a
// stored key and the batch goes in again by INSERT … ON CONFLICT DO NOTHING), and keys repeated
// within a batch.
import { after, afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { toBinary } from '@bufbuild/protobuf';
import { IngestRequestSchema, type IngestRequest } from '../../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import { encodeSketchBytes, newSketch } from '../../../sensor/src/aggregate/sketch.ts';
import { validateBatch } from '../validate-batch.ts';
import { IngestRowsDecoder } from './ingest-rows.ts';
import { migrate } from './migrate.ts';
import type { Sql } from './sql.ts';
import { SummaryStore } from './summary-store.ts';
import { ENGINES, makeBatch, makeSummary, recording, type Recorded } from './test-engines.ts';

/** test-engines.ts's batch, with real DDSketch bytes (the decoder checks them, as validateBatch does) */
function batchOf(sequence: bigint, n: number, first = 0): IngestRequest {
  const b = makeBatch('sensor-r', sequence, n, first);
  for (const s of b.summaries) fixSketches(s);
  return b;
}
function fixSketches(s: IngestRequest['summaries'][number]): void {
  for (const m of s.metrics) {
    if (m.sketch.length === 0) continue;
    const k = newSketch();
    for (let i = 0; i < 5 + (m.sketch[0]! % 50); i++) k.accept(1000 + i * m.sketch[1]! * 37);
    m.sketch = encodeSketchBytes(k);
  }
}

async function storeRows(store: SummaryStore, decoder: IngestRowsDecoder, batch: IngestRequest): Promise<'stored' | 'duplicate'> {
  assert.equal(validateBatch(batch), null);
  const head = decoder.readHead(toBinary(IngestRequestSchema, batch));
  const rows = head === null ? null : decoder.decode(head);
  assert.ok(rows !== null, 'the fast path takes the batch');
  return store.storeRows(rows);
}

/** Everything a batch writes, with dimension ids replaced by what they stand for. */
async function contents(sql: Sql) {
  return {
    facts: await sql.query(`SELECT server, port, transport, protocol, signature, interval_start, interval_s, sensor_id, count, partial, outcomes, metrics
      FROM summaries_l1_named ORDER BY server, port, transport, protocol, signature, interval_start, interval_s`),
    sketches: (await sql.query<{ sketch: Uint8Array }>(`SELECT host(v.address) AS server, v.port, v.transport, g.protocol, g.name, k.interval_start, k.interval_s, k.sensor_id, k.metric, k.sketch
      FROM summary_sketches k JOIN servers v USING (server_id) JOIN signatures g USING (signature_id)
      ORDER BY 1, 2, 3, 4, 5, 6, 7, 9`)).map((r) => ({ ...r, sketch: Buffer.from(r.sketch).toString('hex') })),
    batches: await sql.query('SELECT sensor_id, stream_id, sequence, summary_count, summaries_stored FROM ingest_batches ORDER BY sequence'),
    sensors: await sql.query(`SELECT sensor_id, packets, bytes, kernel_drops, interface_drops, flows_active, transactions, spool_bytes, capture_time,
      stats_at IS NOT NULL AS has_stats FROM sensors ORDER BY sensor_id`),
    servers: await sql.query('SELECT host(address) AS a, port, transport FROM servers ORDER BY 1, 2, 3'),
    signatures: await sql.query('SELECT protocol, name FROM signatures ORDER BY 1, 2'),
  };
}

for (const makeEngine of ENGINES) {
  const engine = makeEngine();
  describe(`storeRows on ${engine.name}: the rows storeBatch stores`, () => {
    afterEach(() => engine.cleanup());
    after(() => engine.cleanup());

    const open = async (log?: Recorded[]) => {
      const raw = await engine.fresh();
      await migrate(raw);
      return { sql: raw, store: new SummaryStore(log ? recording(raw, log) : raw) };
    };

    test('new batches, a replayed sequence, an interval replayed under a new sequence, keys twice in a batch', async () => {
      const a = await open(), b = await open();
      const decoder = new IngestRowsDecoder();
      const replay = batchOf(3n, 10, 5); // 5..9 stored under sequence 1, 10..14 new
      const twice = makeSummary(14);
      fixSketches(twice);
      replay.summaries.push(twice);
      const steps: [IngestRequest, 'stored' | 'duplicate'][] = [
        [batchOf(1n, 10), 'stored'],
        [batchOf(2n, 30, 100), 'stored'],
        [batchOf(2n, 30, 100), 'duplicate'],
        [replay, 'stored'],
        [batchOf(4n, 0), 'stored'],
      ];
      for (const [batch, want] of steps) {
        assert.equal(await storeRows(a.store, decoder, batch), want, `sequence ${batch.sequence} by storeRows`);
        assert.equal(await b.store.storeBatch(batch), want, `sequence ${batch.sequence} by storeBatch`);
      }
      const got = await contents(a.sql);
      assert.deepEqual(got, await contents(b.sql));
      assert.equal(got.facts.length, 10 + 30 + 5);
      assert.deepEqual(got.batches.map((r) => [r['sequence'], r['summary_count'], r['summaries_stored']]),
        [[1n, 10, 10], [2n, 30, 30], [3n, 11, 5], [4n, 0, 0]]);
    });

    test('through a connection without COPY (a wrapped Sql): storeBatch does it', async () => {
      const log: Recorded[] = [];
      const a = await open(log), b = await open();
      const decoder = new IngestRowsDecoder();
      assert.equal(await storeRows(a.store, decoder, batchOf(1n, 12)), 'stored');
      assert.equal(await b.store.storeBatch(batchOf(1n, 12)), 'stored');
      assert.deepEqual(await contents(a.sql), await contents(b.sql));
      assert.ok(log.some((r) => r.text.startsWith('INSERT INTO summaries_l1')), 'by INSERT');
    });
  });
}
