// checkSketchBytes (the collector's validation of incoming sketches) must accept exactly what
// decodeSketch accepts: the library's own encoding (sparse map of bins), ours (contiguous),
// and refuse damaged bytes, other accuracies and negative values with the same kind of reason.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DDSketch } from '@datadog/sketches-js';
import { checkSketchBytes, decodeSketch, encodeSketch, newSketch } from './sketch.ts';
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
    const good = bytesOf(encodeSketch(s));
    let refused = 0;
    for (let i = 0; i < 2000; i++) {
      const b = Uint8Array.from(good);
      const kind = i % 3;
      if (kind === 0) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256); // one byte changed
      const cut = kind === 1 ? b.subarray(0, Math.floor(rnd() * b.length)) : b; // truncated
      const bytes = kind === 2 ? Uint8Array.from({ length: 1 + Math.floor(rnd() * 80) }, () => Math.floor(rnd() * 256)) : cut;
      const verdict = checkSketchBytes(bytes);
      assert.equal(verdict === null, decodes(bytes), `case ${i} (${kind}): check says ${verdict}`);
      if (verdict !== null) refused++;
    }
    assert.ok(refused > 500, `refused ${refused} of 2000`);
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
});
