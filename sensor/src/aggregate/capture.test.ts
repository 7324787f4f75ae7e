import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { SummaryRecord } from '../output/records.ts';
import { analyzeCaptureFile } from '../pipeline.ts';
import { IntervalAggregator } from './interval-aggregator.ts';
import { RELATIVE_ACCURACY } from './sketch.ts';
import { relErr, trueQuantile } from './test-helpers.ts';

const PCAP = join(import.meta.dirname, '../../../test/fixtures/corpus/zeek/testing/btest/Traces/http/1000-requests-one-dropped-response.pcap');

/** Whole seconds of an RFC 3339 timestamp from a record (`2023-08-25T10:03:42.217564000Z`). */
function seconds(text: string): number {
  return Date.parse(`${text.slice(0, 19)}Z`) / 1000;
}

describe('aggregating a capture', () => {
  it('1000 HTTP requests, one response dropped: summary counts add up, p50 of ttfr within 1 %', async () => {
    const summaries: SummaryRecord[] = [];
    const agg = new IntervalAggregator({ sensor_id: 'test', interval_s: 1 }, (s) => summaries.push(s));
    const ttfr: number[] = [];
    let last_s = -Infinity;
    const stats = await analyzeCaptureFile(PCAP, {}, (r) => {
      if (r.type === 'transaction') {
        const t = r.req_first ?? r.rsp_first;
        assert.ok(t !== null);
        agg.add(r, seconds(t));
        if (r.ttfr_ns !== null) ttfr.push(r.ttfr_ns);
        if (r.rsp_last !== null) last_s = Math.max(last_s, Date.parse(r.rsp_last) / 1000);
      } else if (r.type === 'connection') {
        assert.ok(r.start !== null);
        agg.add(r, seconds(r.start));
        if (r.end !== null) last_s = Math.max(last_s, Date.parse(r.end) / 1000);
      }
    });
    agg.advanceTo(last_s);
    agg.flush();

    assert.equal(stats.transactions.total, 1000);
    const tx = summaries.filter((s) => s.signature !== 'TCP_CONNECT');
    assert.equal(tx.reduce((n, s) => n + s.count, 0), 1000);
    assert.equal(tx.reduce((n, s) => n + (s.outcomes.partial ?? 0), 0), 1);
    assert.equal(summaries.filter((s) => s.signature === 'TCP_CONNECT').reduce((n, s) => n + s.count, 0), stats.connections.total);
    for (const s of summaries) {
      assert.match(s.interval_start, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(s.interval_s, 1);
    }

    assert.equal(ttfr.length, 999);
    const sorted = [...ttfr].sort((a, b) => a - b);
    const median = trueQuantile(sorted, 0.5);
    // The capture lasts under a second: one interval holds every transaction.
    assert.equal(tx.length, 1);
    const m = tx[0]!.metrics.ttfr_ns!;
    assert.equal(m.count, 999);
    assert.ok(relErr(m.p50!, median) <= RELATIVE_ACCURACY, `p50 ${m.p50} vs median ${median}`);
    assert.deepEqual([m.min, m.max], [sorted[0], sorted.at(-1)]);
  });
});
