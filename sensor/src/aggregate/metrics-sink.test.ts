/**
 * The pipeline hands the aggregator its metrics two ways: as record objects (`add`) and
 * straight from the transaction (`addMetrics`, what `wiretime sensor --summaries` uses).
 * Over real captures both must give the same summaries, to the byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readCaptureFile } from '../capture/pcap-file-source.ts';
import { Pipeline } from '../pipeline.ts';
import type { SummaryRecord } from '../output/records.ts';
import { IntervalAggregator } from './interval-aggregator.ts';

const CORPUS = join(import.meta.dirname, '../../../test/fixtures/corpus');

for (const file of [
  'zeek/testing/btest/Traces/wikipedia.pcap',
  'zeek/testing/btest/Traces/http/1000-requests-one-dropped-response.pcap',
  'zeek/testing/btest/Traces/smtp.pcap',
  'packetbeat/tests/system/pcaps/http_100_continue.pcap',
  'zeek/testing/btest/Traces/tcp/retransmit-fast009.pcap',
]) {
  test(`${file}: summaries from records equal summaries from metrics`, async () => {
    const from_records: SummaryRecord[] = [];
    const from_metrics: SummaryRecord[] = [];
    const options = { sensor_id: 's', interval_s: 1, grace_s: 0 };
    const a = new IntervalAggregator(options, (s) => from_records.push(s));
    const b = new IntervalAggregator(options, (s) => from_metrics.push(s));
    const pipeline = new Pipeline({
      metrics_sink: b,
      on_clock: (now) => { a.advanceTo(now); b.advanceTo(now); },
    }, (r, time_s) => { if (r.type !== 'statistics') a.add(r, time_s); });
    const summary = await readCaptureFile(join(CORPUS, file), pipeline);
    pipeline.finish(summary);
    a.flush();
    b.flush();
    assert.ok(from_records.length > 0);
    assert.deepEqual(from_metrics, from_records);
  });
}
