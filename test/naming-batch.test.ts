/**
 * With signature rules and summaries only, the pipeline names and aggregates transactions
 * in batches (sensor/src/metrics-batch.ts); with raw output it does so one transaction at
 * a time. Over a generated capture of many one-second intervals, with the per-rule name
 * budget and the per-interval key bound both biting (so that the order of naming, of
 * keys and of the clock matters), the two must give the same summaries, statistics and
 * folded counts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateHttpCapture } from '../bench/generate-http-capture.ts';
import { IntervalAggregator } from '../sensor/src/aggregate/interval-aggregator.ts';
import { readCaptureFile } from '../sensor/src/capture/pcap-file-source.ts';
import { SignatureSet } from '../sensor/src/classify/signature-set.ts';
import { parseSignatures } from '../sensor/src/classify/signature-parser.ts';
import type { SummaryRecord } from '../sensor/src/output/records.ts';
import { Pipeline, type SensorStatistics } from '../sensor/src/pipeline.ts';

let dir = '';
let pcap = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'wiretime-batch-'));
  pcap = join(dir, 'http.pcap');
  generateHttpCapture({ packets: 60_000, seed: 7, out: pcap });
});
after(() => rmSync(dir, { recursive: true, force: true }));

const RULES = `
transaction ITEM_$1 { Offset = 0; Depth = 80; Content =~ "^GET /api/v1/items/([0-9]+)"; }
transaction STATIC_$1 { Subject =~ "^GET /static/([a-z]+)"; }
transaction PAGE_$1 { Offset = 0; Depth = 64; Content =~ "^GET /([a-z]*)"; }
transaction POSTS { Subject =~ "^POST "; }
`;

const INTERVAL_S = 1;

async function run(records: boolean): Promise<{ summaries: SummaryRecord[]; stats: SensorStatistics; folded: Record<string, number>; overflowed: number }> {
  const set = SignatureSet.fromRules(parseSignatures(RULES, 'batch.sigs'), { max_names_per_rule: 4 });
  const summaries: SummaryRecord[] = [];
  const agg = new IntervalAggregator({ sensor_id: 's', interval_s: INTERVAL_S, grace_s: 0, max_keys_per_interval: 12 }, (s) => summaries.push(s));
  let index = -1;
  const pipeline = new Pipeline({
    classifier: set,
    metrics_sink: agg,
    on_clock: (now_s) => {
      // as `wiretime sensor` does: the rules' name budget restarts with each interval
      const i = Math.floor(now_s / INTERVAL_S);
      if (i !== index) {
        if (index >= 0) set.startInterval();
        index = i;
      }
      agg.advanceTo(now_s);
    },
  }, records ? () => {} : null);
  const summary = await readCaptureFile(pcap, pipeline);
  const stats = pipeline.finish(summary);
  agg.flush();
  return { summaries, stats, folded: set.stats().folded, overflowed: agg.stats().overflowed_records };
}

test('naming in batches gives the same summaries and statistics as naming each transaction at once', async () => {
  const one = await run(true);
  const batched = await run(false);
  // the case is one where order matters: names fold, keys overflow, many intervals close
  assert.ok(one.stats.transactions.total > 2000, `${one.stats.transactions.total} transactions`);
  assert.ok(Object.values(one.folded).reduce((a, b) => a + b, 0) > 100, JSON.stringify(one.folded));
  assert.ok(one.overflowed > 100, `${one.overflowed} records overflowed`);
  assert.ok(new Set(one.summaries.map((s) => s.interval_start)).size >= 4);
  assert.ok(one.summaries.some((s) => s.signature.endsWith(':other')));

  assert.deepEqual(batched.stats, one.stats);
  assert.deepEqual(batched.folded, one.folded);
  assert.equal(batched.overflowed, one.overflowed);
  assert.equal(batched.summaries.length, one.summaries.length);
  assert.deepEqual(batched.summaries, one.summaries);
});
