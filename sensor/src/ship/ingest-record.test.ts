// encodeIngestRecord against the encoding it stands in for, protobuf-es's
// toBinary(IngestRequestSchema, create(IngestRequestSchema, { sequence, summaries, stats })):
// byte for byte on generated batches (every field at its default and not, -0 and NaN doubles,
// 64-bit extremes, negative int64, non-ASCII and astral text, empty and large sketches), and
// null — so that the spool falls back to toBinary — for what it does not take.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import { IngestRequestSchema } from '@wiretime/proto/gen/wiretime/v1/ingest_pb.ts';
import { MetricSchema, OutcomeCountSchema, SensorStatsSchema, SummarySchema, type SensorStats, type Summary } from '@wiretime/proto/gen/wiretime/v1/summary_pb.ts';
import { encodeIngestRecord } from './ingest-record.ts';
import { prng } from '../../../test/support/prng.ts';

/** seeded (test/support/prng.ts), with the draws the tests use */
function rng(seed: number) {
  const next = prng(seed);
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]! };
}
type Rng = ReturnType<typeof rng>;

const U64 = [0n, 1n, 127n, 128n, 16_383n, 16_384n, 0x0fff_ffffn, 0x1000_0000n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n];
const I64 = [0n, 1n, -1n, 1_767_225_600n, -(2n ** 63n), 2n ** 63n - 1n];
const U32 = [0, 1, 127, 128, 300, 65_535, 2 ** 28, 2 ** 32 - 1];
const DOUBLES = [0, -0, NaN, Infinity, -Infinity, 1, -1.5, 5e-324, 1.7976931348623157e308, 123456.789];
const TEXT = ['', 'tcp', 'GET /x', 'é', 'ü'.repeat(100), '𝄞 clef', 'x'.repeat(300), '日本'];

function summary(r: Rng): Summary {
  return create(SummarySchema, {
    intervalStartS: r.pick(I64),
    intervalS: r.pick(U32),
    server: r.pick(TEXT),
    serverPort: r.pick(U32),
    transport: r.pick(TEXT),
    protocol: r.pick(TEXT),
    signature: r.pick(TEXT),
    count: r.pick(U64),
    outcomes: Array.from({ length: r.int(4) }, () => create(OutcomeCountSchema, { outcome: r.pick(TEXT), count: r.pick(U64) })),
    metrics: Array.from({ length: r.int(6) }, () => create(MetricSchema, {
      name: r.pick(TEXT),
      count: r.pick(U64),
      sum: r.pick(DOUBLES),
      min: r.next() < 0.5 ? r.pick(DOUBLES) : r.next() * 1e9,
      max: r.pick(DOUBLES),
      sketch: Uint8Array.from({ length: r.pick([0, 1, 127, 128, 2000, 20_000]) }, (_, i) => (i * 7 + 3) & 0xff),
      negativeClamped: r.pick(U64),
    })),
    partial: r.next() < 0.5,
  });
}

function stats(r: Rng): SensorStats | undefined {
  if (r.next() < 0.3) return undefined;
  return create(SensorStatsSchema, {
    packets: r.pick(U64), bytes: r.pick(U64), kernelDrops: r.pick(U64), interfaceDrops: r.pick(U64),
    flowsActive: r.pick(U64), transactions: r.pick(U64), spoolBytes: r.pick(U64), captureTimeS: r.pick(I64),
  });
}

const reference = (sequence: bigint, summaries: Summary[], st: SensorStats | undefined) =>
  Buffer.from(toBinary(IngestRequestSchema, create(IngestRequestSchema, { sequence, summaries, stats: st })));

describe('encodeIngestRecord', () => {
  test('writes what toBinary writes, after the header', () => {
    const r = rng(11);
    for (let k = 0; k < 3000; k++) {
      const sequence = r.pick([0n, 1n, 200n, 2n ** 40n, 2n ** 64n - 1n]);
      const summaries = Array.from({ length: r.int(5) }, () => summary(r));
      const st = stats(r);
      const header = r.pick([0, 8]);
      const got = encodeIngestRecord(sequence, summaries, st, header);
      assert.ok(got !== null, `#${k} declined`);
      const want = reference(sequence, summaries, st);
      assert.equal(got.length, header + want.length, `#${k}: length`);
      assert.ok(got.subarray(header).equals(want), `#${k}: bytes`);
    }
  });

  test('leaves to toBinary what it does not take: unknown fields, plain objects, out-of-range values, lone surrogates', () => {
    const r = rng(12);
    const base = () => summary(r);
    const cases: Summary[] = [];
    let s = base();
    s.$unknown = [{ no: 99, wireType: 0, data: new Uint8Array([1]) }];
    cases.push(s);
    s = base();
    s.serverPort = -1;
    cases.push(s);
    s = base();
    s.intervalS = 2 ** 32;
    cases.push(s);
    s = base();
    s.count = 2n ** 64n;
    cases.push(s);
    s = base();
    s.signature = 'bad \ud800 half';
    cases.push(s);
    s = base();
    s.metrics.push(create(MetricSchema, { name: 'x' }));
    s.metrics.at(-1)!.$unknown = [{ no: 50, wireType: 0, data: new Uint8Array([0]) }];
    cases.push(s);
    cases.push({ ...base(), $typeName: 'other' } as unknown as Summary);
    for (const [i, c] of cases.entries()) assert.equal(encodeIngestRecord(1n, [c], undefined, 8), null, `case ${i}`);
    assert.equal(encodeIngestRecord(-1n, [], undefined, 8), null);
  });
});
