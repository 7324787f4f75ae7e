import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DDSketch } from '@datadog/sketches-js';
import { BucketCounts, RELATIVE_ACCURACY, SKETCH_MIN_POSITIVE, bucketKey, clampDuration, decodeSketch, encodeSketch, mergeSketches, newSketch, quantiles } from './sketch.ts';
import { normal, prng, relErr, trueQuantile } from './test-helpers.ts';

const QS = Array.from({ length: 1001 }, (_, i) => i / 1000);
const CHECK_QS = [0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];

function sketchOf(values: readonly number[]): DDSketch {
  const s = newSketch();
  for (const v of values) s.accept(v);
  return s;
}

function assertSameBuckets(a: DDSketch, b: DDSketch, what: string): void {
  assert.equal(a.count, b.count, `${what}: count`);
  assert.equal(a.zeroCount, b.zeroCount, `${what}: zero count`);
  for (const q of QS) assert.equal(a.getValueAtQuantile(q), b.getValueAtQuantile(q), `${what}: q=${q}`);
}

/** Integer durations (ns) of one of three shapes, placed anywhere across 6 orders of magnitude (1 µs … 1 s). */
function dataset(rnd: () => number, n: number): number[] {
  const shape = Math.floor(rnd() * 3);
  const base = Math.pow(10, 3 + rnd() * 6);
  const zeros = rnd() < 0.2 ? rnd() * 0.1 : 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let v: number;
    if (rnd() < zeros) v = 0;
    else if (shape === 0) v = base * Math.exp(normal(rnd) * (0.1 + rnd() * 2.5)); // log-normal
    else if (shape === 1) v = base * (1 + rnd() * 99); // uniform over two decades
    else v = 1000 * Math.pow(10, rnd() * 6); // log-uniform over the six decades
    out.push(Math.round(v));
  }
  return out;
}

describe('DDSketch (library) behaviour this module relies on', () => {
  it('answers the value at rank ⌊q·(n−1)⌋, within 1 %', () => {
    // Powers of two are 2 % apart or more, so each answer identifies one rank.
    const values = Array.from({ length: 21 }, (_, i) => 2 ** i);
    const s = sketchOf(values);
    for (const q of QS) {
      const truth = values[Math.floor(q * 20)]!;
      assert.ok(relErr(s.getValueAtQuantile(q), truth) <= RELATIVE_ACCURACY, `q=${q}`);
    }
    // q = 0.52 → rank 10.4 → 2^10 (the lower value, no interpolation, not nearest rank 2^11)
    assert.ok(relErr(s.getValueAtQuantile(0.52), 1024) <= RELATIVE_ACCURACY);
  });

  it('keeps 0 exactly in its zero bucket, through merge', () => {
    const a = sketchOf([0, 0, 0, 5000]);
    assert.equal(a.zeroCount, 3);
    assert.equal(a.getValueAtQuantile(0.5), 0);
    const m = mergeSketches(a, sketchOf([0, 7000]));
    assert.equal(m.zeroCount, 4);
    assert.equal(m.count, 6);
    assert.equal(m.getValueAtQuantile(0.6), 0); // rank 3 of [0,0,0,0,5000,7000]
  });

  it('loses negative values in merge (why negatives are clamped to 0)', () => {
    const neg = newSketch();
    neg.accept(-5);
    const m = newSketch();
    m.accept(3);
    m.merge(neg);
    assert.equal(m.count, 2);
    assert.equal(m.negativeStore.count, 0, 'if this fails the library now merges negatives: the clamp could be revisited');
    assert.equal(clampDuration(-5), 0);
    assert.equal(clampDuration(0), 0);
    assert.equal(clampDuration(7), 7);
  });
});

describe('sketch: merge property (seeded, 50 datasets)', () => {
  it('merge(sketch(A), sketch(B)) is within 1 % of the true quantiles of A ∪ B and equals sketch(A ∪ B) bucket for bucket', () => {
    const rnd = prng(20260101);
    let checked = 0, worst = 0;
    for (let d = 0; d < 50; d++) {
      const a = dataset(rnd, 1 + Math.floor(rnd() * 20000));
      const b = dataset(rnd, 1 + Math.floor(rnd() * 20000));
      const sa = sketchOf(a), sb = sketchOf(b);
      const merged = mergeSketches(sa, sb);
      const union = [...a, ...b];
      const sorted = [...union].sort((x, y) => x - y);
      for (const q of CHECK_QS) {
        const e = relErr(merged.getValueAtQuantile(q), trueQuantile(sorted, q));
        worst = Math.max(worst, e);
        assert.ok(e <= RELATIVE_ACCURACY * (1 + 1e-9), `dataset ${d} q=${q}: error ${e}`);
        checked++;
      }
      // Integer percentiles, clamped to the exact min/max: still within 1 % (+ rounding of half a ns).
      const p = quantiles(merged, { min: sorted[0]!, max: sorted.at(-1)! });
      for (const [q, v] of [[0.5, p.p50], [0.9, p.p90], [0.95, p.p95], [0.99, p.p99]] as const) {
        const truth = trueQuantile(sorted, q);
        assert.ok(Number.isInteger(v));
        assert.ok(Math.abs(v - truth) <= RELATIVE_ACCURACY * truth + 0.5, `dataset ${d} p${q * 100}: ${v} vs ${truth}`);
      }
      assertSameBuckets(merged, sketchOf(union), `dataset ${d} merge vs union`);
      // The same through the wire: merge of decoded sketches, and a decoded merge.
      const wired = mergeSketches(decodeSketch(encodeSketch(sa)), decodeSketch(encodeSketch(sb)));
      assertSameBuckets(wired, merged, `dataset ${d} decoded merge`);
      assertSameBuckets(decodeSketch(encodeSketch(merged)), merged, `dataset ${d} round trip`);
    }
    assert.equal(checked, 50 * CHECK_QS.length);
    assert.ok(worst > 0.001, 'the datasets exercise the sketch (errors are not all zero)');
  });
});

describe('sketch: BucketCounts', () => {
  it('counts into the same buckets as DDSketch.accept, whatever order the range grows in', () => {
    const rnd = prng(99);
    for (let d = 0; d < 30; d++) {
      const values = dataset(rnd, 1 + Math.floor(rnd() * 5000));
      if (d % 3 === 1) values.sort((x, y) => x - y); // grows upwards only
      if (d % 3 === 2) values.sort((x, y) => y - x); // grows downwards only
      const bc = new BucketCounts();
      for (const v of values) bc.add(v);
      const min = Math.min(...values), max = Math.max(...values), sum = values.reduce((a, b) => a + b, 0);
      const s = bc.toSketch(min, max, sum);
      assertSameBuckets(s, sketchOf(values), `dataset ${d}`);
      assert.deepEqual([s.min, s.max, s.sum], [min, max, sum]);
    }
    const empty = new BucketCounts().toSketch(0, 0, 0);
    assert.equal(empty.count, 0);
  });

  it('gives the quantiles and the encoded bytes of the DDSketch fed the same values, fed one by one or counted elsewhere', () => {
    const rnd = prng(7);
    for (let d = 0; d < 40; d++) {
      const values = dataset(rnd, 1 + Math.floor(rnd() * 3000));
      if (d === 0 || d === 1) values.fill(0); // zeros only
      if (d === 2 || d === 3) values.splice(0, values.length, 5000); // a single value
      const min = Math.min(...values), max = Math.max(...values);
      let bc = new BucketCounts();
      if (d % 2 === 0) {
        // as the interval aggregator does: counted into a range of its own (padded), then read as one
        const positive = values.filter((v) => v > SKETCH_MIN_POSITIVE);
        const keys = positive.map(bucketKey);
        const lo = positive.length === 0 ? 0 : Math.min(...keys) - 3;
        const bins = new Uint32Array(positive.length === 0 ? 0 : Math.max(...keys) - lo + 4);
        for (const k of keys) bins[k - lo]!++;
        bc = BucketCounts.over(bins, lo, values.length - positive.length, values.length);
      } else for (const v of values) bc.add(v);
      const lib = sketchOf(values);
      lib.min = min;
      lib.max = max;
      assert.deepEqual(bc.quantiles({ min, max }), quantiles(lib, { min, max }), `dataset ${d}`);
      assert.equal(bc.encode(), encodeSketch(lib), `dataset ${d}`);
    }
  });

  it('the same for the few values a key holds raw (1 to 8, as the interval aggregator counts them at close)', () => {
    const rnd = prng(21);
    for (let d = 0; d < 400; d++) {
      const values = dataset(rnd, 1 + (d % 8));
      if (d % 50 === 0) values[0] = 0;
      const min = Math.min(...values), max = Math.max(...values);
      const bc = new BucketCounts();
      for (const v of values) bc.add(v);
      const lib = sketchOf(values);
      lib.min = min;
      lib.max = max;
      assert.deepEqual(bc.quantiles({ min, max }), quantiles(lib, { min, max }), `values ${values.join(', ')}`);
      assert.equal(bc.encode(), encodeSketch(lib), `values ${values.join(', ')}`);
    }
  });
});

describe('sketch: quantiles', () => {
  it('gives integers, clamped into [min, max] when bounds are given', () => {
    const s = sketchOf([123456789]);
    const raw = quantiles(s);
    assert.ok(relErr(raw.p50, 123456789) <= RELATIVE_ACCURACY);
    assert.deepEqual(quantiles(s, { min: 123456789, max: 123456789 }), { p50: 123456789, p90: 123456789, p95: 123456789, p99: 123456789 });
  });

  it('refuses an empty sketch', () => {
    assert.throws(() => quantiles(newSketch()), /empty/);
  });
});

describe('sketch: encode / decode', () => {
  it('round-trips to the same quantiles, including zeros and an empty sketch', () => {
    const s = sketchOf([0, 1, 2, 3, 1000, 1001, 5e5, 7e8, 3e9]);
    const d = decodeSketch(encodeSketch(s));
    assert.deepEqual(quantiles(d), quantiles(s));
    assertSameBuckets(d, s, 'round trip');
    assert.equal(decodeSketch(encodeSketch(newSketch())).count, 0);
    // a decoded sketch keeps working as a sketch: values below and above its range
    const more = [0, 1, 50, 1e4, 2e10, 7];
    for (const v of more) d.accept(v);
    assertSameBuckets(d, sketchOf([0, 1, 2, 3, 1000, 1001, 5e5, 7e8, 3e9, ...more]), 'decoded, then accept');
  });

  it('gives decoded sketches safe min/max bounds and no sum', () => {
    const d = decodeSketch(encodeSketch(sketchOf([1000, 2000, 3000])));
    assert.ok(d.min <= 1000 && d.min > 1000 / 1.03, String(d.min));
    assert.ok(d.max >= 3000 && d.max < 3000 * 1.03, String(d.max));
    assert.ok(Number.isNaN(d.sum));
    assert.equal(decodeSketch(encodeSketch(sketchOf([0, 5]))).min, 0);
  });

  it('reads what the library\'s own toProto() wrote (fixture made with protobufjs installed)', () => {
    // new DDSketch({ relativeAccuracy: 0.01 }) fed 0,0,1000,1000,1010,1100,1500,2500,2600,9999, then
    // Buffer.from(s.toProto()).toString('base64'), and its getValueAtQuantile at the qs below.
    const library_bytes =
      'ChQJ/UqBWr9S8D8RAAAAAAAAAAAYABKGCBKACAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' +
      'AAAAAAAAAAhAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAADwPwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' +
      'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' +
      'AAAAAAAAAAAAAAAAAAAAAADwPwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' +
      'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' +
      'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' +
      '8D8AAAAAAAAAAAAAAAAAAPA/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' +
      'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' +
      'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' +
      'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' +
      'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' +
      'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' +
      'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' +
      'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA8D8AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' +
      'AAAYqAUaAhgAIQAAAAAAAABA';
    const qs = [0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99, 1];
    const library_answers = [0, 0, 0, 1002.4280085221619, 1002.4280085221619, 1495.4668013415805, 2618.121478291724, 2618.121478291724, 2618.121478291724, 9999.166474189877];
    const d = decodeSketch(library_bytes);
    assert.equal(d.count, 10);
    assert.equal(d.zeroCount, 2);
    qs.forEach((q, i) => assert.ok(Math.abs(d.getValueAtQuantile(q) - library_answers[i]!) <= 1e-9 * library_answers[i]!, `q=${q}`));
    // and our encoding of the same data is the same sketch, in fewer bytes
    const ours = encodeSketch(sketchOf([0, 0, 1000, 1000, 1010, 1100, 1500, 2500, 2600, 9999]));
    assertSameBuckets(decodeSketch(ours), d, 'ours vs library');
    assert.ok(ours.length < library_bytes.length / 4, `${ours.length} vs ${library_bytes.length}`);
  });

  it('throws a clear error on text that is not a sketch', () => {
    const good = encodeSketch(sketchOf([1000, 2000]));
    const bad = [
      '', 'not base64!', 'AAAA', 'aGVsbG8gd29ybGQ=', // "hello world"
      good.slice(0, good.length - 8), // truncated
      Buffer.from('{"p50":1}').toString('base64'),
    ];
    for (const text of bad) assert.throws(() => decodeSketch(text), /^Error: decodeSketch: /, JSON.stringify(text));
    const rnd = prng(7);
    for (let i = 0; i < 500; i++) {
      const bytes = Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256)));
      assert.throws(() => decodeSketch(bytes.toString('base64')), /^Error: decodeSketch: /);
    }
  });

  it('refuses sketches of another accuracy and sketches with negative values', () => {
    const other = new DDSketch({ relativeAccuracy: 0.02 });
    other.accept(1000);
    assert.throws(() => decodeSketch(encodeSketch(other)), /decodeSketch: .*relative accuracy/);
    const neg = newSketch();
    neg.accept(-1000);
    assert.throws(() => encodeSketch(neg), /negative/);
  });
});
