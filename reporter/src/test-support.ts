/**
 * Shared by the reporter's tests over rolled-up data (day-blocks.test.ts,
 * top-percentile-bound.test.ts): level-1 rows stored from known durations, and a count of the
 * sketch rows a query reads.
 */
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { IngestRequestSchema } from '../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import { SummaryStore } from '../../collector/src/store/summary-store.ts';
import type { Queryable, Row, Sql } from '../../collector/src/store/sql.ts';
import { encodeSketchBytes, newSketch } from '../../sensor/src/aggregate/sketch.ts';

/** One level-1 interval of one signature: its ttfr_ns durations. */
export interface RawInterval {
  signature: string;
  start_s: number;
  values: readonly number[];
}

/**
 * Stores each interval as a 5-minute level-1 row of server 10.8.0.1:443/tcp (http) through
 * SummaryStore.storeBatch, `per_batch` summaries a batch of stream `stream_id`: count, sum, min,
 * max and the sketch of ttfr_ns made from the durations.
 */
export async function storeDurations(sql: Sql, stream_id: string, intervals: readonly RawInterval[], per_batch: number): Promise<void> {
  const store = new SummaryStore(sql);
  for (let i = 0; i < intervals.length; i += per_batch) {
    const result = await store.storeBatch(create(IngestRequestSchema, {
      sensorId: 's1', streamId: stream_id, sequence: BigInt(i / per_batch + 1),
      summaries: intervals.slice(i, i + per_batch).map(({ signature, start_s, values }) => {
        const sk = newSketch();
        for (const v of values) sk.accept(v);
        return {
          intervalStartS: BigInt(start_s), intervalS: 300, server: '10.8.0.1', serverPort: 443, transport: 'tcp', protocol: 'http', signature,
          count: BigInt(values.length), outcomes: [{ outcome: 'ok', count: BigInt(values.length) }],
          metrics: [{ name: 'ttfr_ns', count: BigInt(values.length), sum: values.reduce((x, y) => x + y, 0), min: Math.min(...values), max: Math.max(...values), sketch: encodeSketchBytes(sk) }],
        };
      }),
    }));
    assert.equal(result, 'stored');
  }
}

/** The Sql with the rows each statement reading summary_sketches_l2 or _blocks returns added to `reads.rows`. */
export function countingSketchReads(sql: Sql, reads: { rows: number }): Sql {
  const wrap = (q: Queryable): Queryable => ({
    async query<R extends Row = Row>(text: string, params: readonly unknown[] = []) {
      const rows = await q.query<R>(text, params);
      if (/summary_sketches_(l2|blocks)/.test(text)) reads.rows += rows.length;
      return rows;
    },
    exec: (text: string) => q.exec(text),
  });
  return { engine: sql.engine, query: (t, p) => wrap(sql).query(t, p), exec: (t) => sql.exec(t), transaction: (fn) => sql.transaction((tx) => fn(wrap(tx))), close: () => sql.close() };
}
