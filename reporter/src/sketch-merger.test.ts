/**
 * SketchMerger (sensor/src/aggregate/sketch.ts), which the reporter uses to merge stored
 * sketches: bucket for bucket the same as decoding each sketch and merging with the library,
 * for sketches written in either store form, and the same refusal of bytes that are not a
 * sketch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeSketchBytes, encodeSketchBytes, newSketch, SketchMerger } from '../../sensor/src/aggregate/sketch.ts';
import { prng } from '../../test/support/prng.ts';

test('merging stored sketches gives the library merge of the decoded sketches, bucket for bucket', () => {
  const rng = prng(42);
  const inputs: Uint8Array[] = [];
  const all: number[] = [];
  for (let k = 0; k < 50; k++) {
    const s = newSketch();
    // a few values over decades (sparse form) or many close together (contiguous form), zeros too
    const n = k % 2 === 0 ? 3 : 200;
    for (let i = 0; i < n; i++) {
      const v = k % 7 === 0 && i === 0 ? 0 : Math.round((k % 2 === 0 ? 1e3 * Math.pow(10, 6 * rng()) : 5e6 * (1 + rng())));
      s.accept(v);
      all.push(v);
    }
    inputs.push(encodeSketchBytes(s));
  }
  const merger = new SketchMerger();
  const library = newSketch();
  for (const b of inputs) {
    merger.addBytes(b);
    library.merge(decodeSketchBytes(b));
  }
  const min = Math.min(...all), max = Math.max(...all);
  const merged = merger.toSketch(min, max);
  assert.equal(merger.count, all.length);
  assert.equal(merged.count, library.count);
  assert.equal(merged.zeroCount, library.zeroCount);
  for (const q of [0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1]) {
    assert.equal(merged.getValueAtQuantile(q), library.getValueAtQuantile(q), `q ${q}`);
  }
  // and within 1 % of the sorted values (rank floor(q·(n−1)))
  const sorted = [...all].sort((a, b) => a - b);
  const p95 = sorted[Math.floor(0.95 * (sorted.length - 1))]!;
  assert.ok(Math.abs(merged.getValueAtQuantile(0.95) - p95) <= 0.01 * p95);
});

test('bytes that are not a sketch are refused whole', () => {
  const merger = new SketchMerger();
  const s = newSketch();
  s.accept(1e6);
  merger.addBytes(encodeSketchBytes(s));
  assert.throws(() => merger.addBytes(new Uint8Array([0x0a, 0x02, 0x09])), /^Error: decodeSketch: not a DDSketch protobuf/);
  assert.throws(() => merger.addBytes(new Uint8Array(0)), /^Error: decodeSketch: empty input/);
  assert.equal(merger.count, 1);
});
