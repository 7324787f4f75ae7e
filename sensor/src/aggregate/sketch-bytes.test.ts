// encodeSketchBytes / decodeSketchBytes: the raw-bytes forms of encodeSketch / decodeSketch (what
// the wire and the database carry), checked against the base64 forms.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BucketCounts, decodeSketch, decodeSketchBytes, encodeSketch, encodeSketchBytes, newSketch } from './sketch.ts';
import { prng } from './test-helpers.ts';

describe('sketch bytes', () => {
  it('are the bytes of the base64 form, and read back bucket for bucket', () => {
    const rnd = prng(5);
    const b = new BucketCounts();
    const values = Array.from({ length: 500 }, () => (rnd() < 0.05 ? 0 : Math.round(Math.exp(Math.log(1e3) + rnd() * Math.log(1e6)))));
    for (const v of values) b.add(v);
    const s = b.toSketch(Math.min(...values), Math.max(...values), values.reduce((x, y) => x + y, 0));
    const bytes = encodeSketchBytes(s);
    assert.ok(bytes instanceof Uint8Array);
    assert.equal(Buffer.from(bytes).toString('base64'), encodeSketch(s));
    const back = decodeSketchBytes(bytes);
    const ref = decodeSketch(encodeSketch(s));
    assert.equal(back.count, values.length);
    assert.equal(back.zeroCount, ref.zeroCount);
    for (let q = 0; q <= 1; q += 0.01) assert.equal(back.getValueAtQuantile(q), ref.getValueAtQuantile(q), `q=${q}`);
  });

  it('a returned array is the caller\'s: the next encode does not overwrite it', () => {
    const a = newSketch();
    a.accept(1e6);
    const first = encodeSketchBytes(a);
    const copy = Uint8Array.from(first);
    const b = newSketch();
    for (let i = 1; i < 200; i++) b.accept(i * 1e4);
    encodeSketchBytes(b);
    assert.deepEqual(first, copy);
  });

  it('refuses what is not a sketch, with the decodeSketch message', () => {
    assert.throws(() => decodeSketchBytes(new Uint8Array(0)), /^Error: decodeSketch: empty input/);
    assert.throws(() => decodeSketchBytes(Uint8Array.from([0x0a, 0x05, 1, 2])), /^Error: decodeSketch: not a DDSketch protobuf \(truncated field\)/);
    assert.throws(() => decodeSketchBytes(Uint8Array.from([0x12, 0x00])), /^Error: decodeSketch: not a DDSketch protobuf \(no index mapping\)/);
  });
});
