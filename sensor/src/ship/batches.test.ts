import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create, toBinary } from '@bufbuild/protobuf';
import { IngestRequestSchema } from '@wiretime/proto/gen/wiretime/v1/ingest_pb.ts';
import { SummarySchema } from '@wiretime/proto/gen/wiretime/v1/summary_pb.ts';
import { estimatedBytes, splitIntoBatches } from './batches.ts';

const summary = (i: number, sketch_bytes: number) => create(SummarySchema, {
  intervalStartS: 1_767_225_600n, intervalS: 300, server: '10.0.0.1', serverPort: 80, transport: 'tcp', protocol: 'http', signature: `GET_${i}`, count: 5n,
  metrics: ['ttfr_ns', 'ttlr_ns', 'response_bytes'].map((name, k) => ({ name, count: 5n, sum: 1e9 + i, min: 1e6, max: 3e8, sketch: k < 2 ? new Uint8Array(sketch_bytes).fill(7) : new Uint8Array(0) })),
});

describe('splitIntoBatches', () => {
  it('estimates a summary\'s encoded size within 15% of the real encoding', () => {
    for (const sk of [0, 100, 2000, 20_000]) {
      const s = summary(1, sk);
      const real = toBinary(SummarySchema, s).length;
      assert.ok(Math.abs(estimatedBytes(s) - real) <= 0.15 * real + 40, `${sk}: estimated ${estimatedBytes(s)}, real ${real}`);
    }
  });

  it('keeps order, caps summaries per batch and bytes per batch, and never drops or splits a summary', () => {
    const small = Array.from({ length: 2500 }, (_, i) => summary(i, 10));
    const batches = splitIntoBatches(small, 1000, 1 << 20);
    assert.deepEqual(batches.map((b) => b.length), [1000, 1000, 500]);
    assert.deepEqual(batches.flat().map((s) => s.signature), small.map((s) => s.signature));

    const big = Array.from({ length: 300 }, (_, i) => summary(i, 7000)); // ~14 KB each
    const cut = splitIntoBatches(big, 1000, 1 << 20);
    assert.deepEqual(cut.flat().map((s) => s.signature), big.map((s) => s.signature));
    for (const b of cut) {
      const encoded = toBinary(IngestRequestSchema, create(IngestRequestSchema, { sequence: 1n, summaries: b })).length;
      assert.ok(encoded <= (1 << 20) * 1.05, `batch of ${b.length}: ${encoded} bytes`);
    }
    assert.ok(cut.length >= 4 && cut.length <= 5, `${cut.length} batches`);
    // one summary larger than the byte budget goes alone
    assert.deepEqual(splitIntoBatches([summary(1, 10), summary(2, 600_000), summary(3, 10)], 1000, 1 << 20).map((b) => b.length), [1, 1, 1]);
  });
});
