// The bytes encodeSketch writes, read with protobuf-es's own wire reader (not our decoder) as
// DataDog's sketches-proto message: DDSketch { 1: IndexMapping mapping; 2: Store positiveValues;
// 3: Store negativeValues; 4: double zeroCount }, IndexMapping { 1: double gamma; 2: double
// indexOffset; 3: enum interpolation }, Store { 1: map<sint32, double> binCounts;
// 2: repeated double contiguousBinCounts (packed); 3: sint32 contiguousBinIndexOffset }.
// Expected contents: the values' buckets by the library's mapping, counted here.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { BucketCounts, SKETCH_GAMMA, SKETCH_MIN_POSITIVE, bucketKey } from './sketch.ts';
import { prng } from './test-helpers.ts';

interface Wire {
  gamma: number;
  index_offset: number;
  interpolation: number;
  positive: Map<number, number>;
  positive_form: 'sparse' | 'contiguous' | 'empty';
  positive_body_bytes: number;
  negative: Map<number, number>;
  zero: number;
}

function readStore(bytes: Uint8Array): { bins: Map<number, number>; form: Wire['positive_form'] } {
  const r = new BinaryReader(bytes);
  const bins = new Map<number, number>();
  const contiguous: number[] = [];
  let offset = 0;
  let sparse = false;
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === WireType.LengthDelimited) {
      sparse = true;
      const entry = new BinaryReader(r.bytes());
      let key = 0;
      let count = 0;
      while (entry.pos < entry.len) {
        const [f, w] = entry.tag();
        if (f === 1 && w === WireType.Varint) key = entry.sint32();
        else if (f === 2 && w === WireType.Bit64) count = entry.double();
        else entry.skip(w);
      }
      bins.set(key, (bins.get(key) ?? 0) + count);
    } else if (field === 2 && wire === WireType.LengthDelimited) {
      const packed = new BinaryReader(r.bytes());
      while (packed.pos < packed.len) contiguous.push(packed.double());
    } else if (field === 3 && wire === WireType.Varint) offset = r.sint32();
    else r.skip(wire);
  }
  contiguous.forEach((c, i) => {
    if (c !== 0) bins.set(offset + i, (bins.get(offset + i) ?? 0) + c);
  });
  return { bins, form: sparse ? 'sparse' : contiguous.length > 0 ? 'contiguous' : 'empty' };
}

function readSketch(base64: string): Wire {
  const r = new BinaryReader(Buffer.from(base64, 'base64'));
  const out: Wire = {
    gamma: NaN, index_offset: NaN, interpolation: -1, positive: new Map(), positive_form: 'empty',
    positive_body_bytes: 0, negative: new Map(), zero: 0,
  };
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === WireType.LengthDelimited) {
      const m = new BinaryReader(r.bytes());
      while (m.pos < m.len) {
        const [f, w] = m.tag();
        if (f === 1 && w === WireType.Bit64) out.gamma = m.double();
        else if (f === 2 && w === WireType.Bit64) out.index_offset = m.double();
        else if (f === 3 && w === WireType.Varint) out.interpolation = m.int32();
        else m.skip(w);
      }
    } else if (field === 2 && wire === WireType.LengthDelimited) {
      const body = r.bytes();
      const s = readStore(body);
      out.positive = s.bins;
      out.positive_form = s.form;
      out.positive_body_bytes = body.length;
    } else if (field === 3 && wire === WireType.LengthDelimited) out.negative = readStore(r.bytes()).bins;
    else if (field === 4 && wire === WireType.Bit64) out.zero = r.double();
    else r.skip(wire);
  }
  return out;
}

/** Bytes of a protobuf varint (the wire format's definition: 7 bits a byte). */
function varintBytes(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

const zigzag = (k: number): number => (k >= 0 ? 2 * k : -2 * k - 1);

describe('sketch bytes on the wire (read with protobuf-es)', () => {
  it('hold the values\' buckets and zero count, in the smaller of the two store forms', () => {
    const rnd = prng(11);
    const forms = new Set<string>();
    for (let t = 0; t < 400; t++) {
      // from a few values over many decades (sparse) to many over a narrow range (contiguous);
      // some below 1 ns (negative keys), some near the double's limits (keys of 3-byte varints)
      const n = 1 + Math.floor(rnd() * 400);
      const low = t % 10 === 0 ? -690 : rnd() * 30 - 10;
      const span = t % 10 === 0 ? 1380 : rnd() * (t % 3 === 0 ? 2 : 25);
      const b = new BucketCounts();
      const expected = new Map<number, number>();
      let zero = 0;
      for (let i = 0; i < n; i++) {
        const v = rnd() < 0.03 ? 0 : Math.exp(low + rnd() * span);
        b.add(v);
        if (v <= SKETCH_MIN_POSITIVE) zero++;
        else expected.set(bucketKey(v), (expected.get(bucketKey(v)) ?? 0) + 1);
      }
      const w = readSketch(b.encode());
      assert.equal(w.gamma, SKETCH_GAMMA);
      assert.equal(w.index_offset, 0);
      assert.equal(w.interpolation, 0);
      assert.deepEqual([...w.positive].sort((x, y) => x[0] - y[0]), [...expected].sort((x, y) => x[0] - y[0]), `sketch ${t}`);
      assert.equal(w.negative.size, 0);
      assert.equal(w.zero, zero);
      if (expected.size > 0) {
        const keys = [...expected.keys()].sort((x, y) => x - y);
        const lo = keys[0]!;
        const range = keys[keys.length - 1]! - lo + 1;
        // each sparse entry: tag + length + key's tag + key + count's tag + 8 bytes
        const sparse_bytes = keys.reduce((s, k) => s + 2 + 1 + varintBytes(zigzag(k)) + 1 + 8, 0);
        const contiguous_bytes = 1 + varintBytes(range * 8) + range * 8 + 1 + varintBytes(zigzag(lo));
        assert.equal(w.positive_body_bytes, Math.min(sparse_bytes, contiguous_bytes), `sketch ${t}`);
        assert.equal(w.positive_form, sparse_bytes < contiguous_bytes ? 'sparse' : 'contiguous', `sketch ${t}`);
        forms.add(w.positive_form + (Math.max(...keys.map((k) => varintBytes(zigzag(k)))) >= 3 ? '+3-byte keys' : ''));
      }
    }
    // both forms, and long keys, were exercised
    assert.ok(forms.has('sparse') && forms.has('contiguous') && [...forms].some((f) => f.endsWith('3-byte keys')), [...forms].join(', '));
  });
});
