// checkSketchBytes (the collector's validation of incoming sketches) must accept exactly what
// decodeSketch accepts: the library's own encoding (sparse map of bins), ours (contiguous),
// and refuse damaged bytes, other accuracies and negative values with the same kind of reason.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DDSketch } from '@datadog/sketches-js';
import { checkSketchBytes, decodeSketch, encodeSketch, newSketch, SKETCH_GAMMA } from './sketch.ts';
import { prng } from './test-helpers.ts';

const bytesOf = (text: string) => new Uint8Array(Buffer.from(text, 'base64'));
const decodes = (b: Uint8Array) => {
  try {
    decodeSketch(Buffer.from(b).toString('base64'));
    return true;
  } catch {
    return false;
  }
};

describe('checkSketchBytes', () => {
  it('accepts our sketches and the library\'s own protobuf, inside a larger buffer too', () => {
    const s = newSketch();
    for (const v of [0, 1000, 1500, 2e6, 3e9]) s.accept(v);
    const ours = bytesOf(encodeSketch(s));
    assert.equal(checkSketchBytes(ours), null);
    const library = s.toProto(); // bins as the sparse map<sint32, double>
    assert.equal(checkSketchBytes(library), null);
    const big = new Uint8Array(ours.length + 100);
    big.set(ours, 37);
    assert.equal(checkSketchBytes(big.subarray(37, 37 + ours.length)), null);
  });

  it('agrees with decodeSketch on damaged and random bytes', () => {
    const rnd = prng(11);
    const s = newSketch();
    for (let i = 0; i < 300; i++) s.accept(Math.exp(10 + rnd() * 8));
    // both store forms: ours here is contiguous, the library's is the sparse map of bins
    // (checkStore reads map entries by a fast path of its own)
    const goods = [bytesOf(encodeSketch(s)), s.toProto()];
    let refused = 0;
    for (let i = 0; i < 4000; i++) {
      const b = Uint8Array.from(goods[(i >> 1) & 1]!);
      const kind = i % 3;
      if (kind === 0) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256); // one byte changed
      const cut = kind === 1 ? b.subarray(0, Math.floor(rnd() * b.length)) : b; // truncated
      const bytes = kind === 2 ? Uint8Array.from({ length: 1 + Math.floor(rnd() * 80) }, () => Math.floor(rnd() * 256)) : cut;
      const verdict = checkSketchBytes(bytes);
      assert.equal(verdict === null, decodes(bytes), `case ${i} (${kind}): check says ${verdict}`);
      if (verdict !== null) refused++;
    }
    assert.ok(refused > 1000, `refused ${refused} of 4000`);
  });

  it('names the reason: another accuracy, negative values, empty input', () => {
    const other = new DDSketch({ relativeAccuracy: 0.02 });
    other.accept(1000);
    assert.match(checkSketchBytes(other.toProto()) ?? '', /relative accuracy 0\.02/);
    const neg = newSketch();
    neg.accept(-5);
    assert.match(checkSketchBytes(neg.toProto()) ?? '', /negative values/);
    assert.equal(checkSketchBytes(new Uint8Array(0)), 'empty input, not a sketch');
  });
  it('checks the key of each sparse bin: one in the mapping\'s range, one beyond what a double can reach', () => {
    // A sketch written by hand (DDSketch protobuf): the 1 % mapping, one positive bin as a
    // binCounts entry { 1: sint32 key, 2: double 3 }, an empty negative store, zero count 0.
    // A double tops out near 1.8e308, key log(1.8e308)/log(γ) ≈ 35 500; 90 000 is past it.
    const sketchWithKey = (key: number) => {
      const z = key >= 0 ? 2 * key : -2 * key - 1;
      const varint = [];
      for (let v = z; ; v = Math.floor(v / 128)) {
        if (v < 128) { varint.push(v); break; }
        varint.push((v & 0x7f) | 0x80);
      }
      const f64 = (x: number) => [...new Uint8Array(new Float64Array([x]).buffer)];
      const entry = [0x08, ...varint, 0x11, ...f64(3)];
      return Uint8Array.from([
        0x0a, 20, 0x09, ...f64(SKETCH_GAMMA), 0x11, ...f64(0), 0x18, 0x00,
        0x12, entry.length + 2, 0x0a, entry.length, ...entry,
        0x1a, 0x00,
        0x21, ...f64(0),
      ]);
    };
    for (const key of [1, -3, 700, 9000, 35_000]) {
      assert.equal(checkSketchBytes(sketchWithKey(key)), null, `key ${key}`);
      assert.ok(decodes(sketchWithKey(key)), `key ${key} decodes`);
    }
    for (const key of [90_000, -90_000, 1_000_000]) {
      assert.match(checkSketchBytes(sketchWithKey(key)) ?? '', new RegExp(`bin key ${key} outside`));
      assert.equal(decodes(sketchWithKey(key)), false, `key ${key} refused by decodeSketch too`);
    }
  });
});
