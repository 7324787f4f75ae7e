// The fast ingest decoder (ingest-rows.ts) against the path it stands in for: protobuf-es's
// fromBinary, validateBatch, and the rows storeBatch writes (summary-store.ts referenceRows).
// On generated batches — valid ones, ones made invalid one field at a time, and byte-level
// damage (truncation, flipped bytes, unknown fields, wrong wire types, groups, fields given
// twice or in another order) — whenever the fast path accepts a batch, protobuf-es decodes it,
// validateBatch accepts it, and the COPY payloads are byte for byte those of storeBatch.
// Whenever it declines, the caller takes the protobuf-es path, so refusals and their messages
// are the old ones by construction; the test also checks that it declines only rarely on
// well-formed batches (it must not silently become the slow path).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { IngestRequestSchema, type IngestRequest } from '../../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import { MetricSchema, SensorStatsSchema, SummarySchema, type Metric, type Summary } from '../../../proto/src/gen/wiretime/v1/summary_pb.ts';
import { encodeSketchBytes, newSketch } from '../../../sensor/src/aggregate/sketch.ts';
import { validateBatch } from '../validate-batch.ts';
import { IngestRowsDecoder, patchIds } from './ingest-rows.ts';
import { referenceRows } from './summary-store.ts';
import { prng } from '../../../test/support/prng.ts';

/** seeded (test/support/prng.ts), with the draws the tests use */
function rng(seed: number) {
  const next = prng(seed);
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
    chance: (p: number) => next() < p,
  };
}
type Rng = ReturnType<typeof rng>;

/** A dimension id from the key alone, so both paths get the same ids whatever order they ask in. */
function idOf(key: string): bigint {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return BigInt(h >>> 0) + 1n;
}

const SKETCHES: Uint8Array[] = [];
for (let k = 0; k < 8; k++) {
  const s = newSketch();
  for (let i = 0; i < 20 + k * 30; i++) s.accept(1000 * (1 + i * (k + 1)) * (1 + (i % 7) / 3));
  SKETCHES.push(encodeSketchBytes(s));
}
const TIMING = ['ttfr_ns', 'ttlr_ns', 'rtt_ns', 'request_ns', 'connect_ns'];
const OTHER = ['response_bytes', 'request_bytes', 'status_5xx', 'retransmits'];
const SERVERS = ['10.1.2.3', '192.168.0.1', '2001:db8::1', '::1', 'fe80::1', '2001:db8:0:0:1:0:0:1', '0.0.0.0'];
const DOUBLES = [0, -0, 1, -1, 0.5, 123456.789, 1e21, 1.5e300, 5e-324, 1e-7, 2 ** 31, -(2 ** 31), 2 ** 53, 9007199254740993, 0.1 + 0.2, 1 / 3];

function double(r: Rng): number {
  switch (r.int(4)) {
    case 0: return r.pick(DOUBLES);
    case 1: return r.int(1e9);
    case 2: return (r.next() - 0.3) * 10 ** r.int(12);
    default: return 1000 + r.next() * 1e7;
  }
}

function validSummary(r: Rng, i: number): Summary {
  const intervalS = r.pick([1, 60, 300, 3600, 86_400]);
  const start = 1_767_225_600 + intervalS * (i % 50 + r.int(3) * 1000);
  const count = r.chance(0.05) ? r.pick([0, 1, 2 ** 40]) : 1 + r.int(100_000);
  const outcomes = [];
  let left = count;
  for (let k = r.int(4); k > 0; k--) {
    const n = r.int(left + 1);
    left -= n;
    outcomes.push({ outcome: r.pick(['ok', 'error', 'timeout', 'closed', 'refused_2']), count: BigInt(n) });
  }
  const names = [...TIMING, ...OTHER].filter(() => r.chance(0.6));
  const metrics = names.map((name) => {
    const mcount = r.chance(0.1) ? 0 : r.int(count + 1);
    let min = double(r), max = double(r);
    if (min > max) [min, max] = [max, min];
    return create(MetricSchema, {
      name,
      count: BigInt(mcount),
      sum: double(r),
      min,
      max,
      sketch: name.endsWith('_ns') && r.chance(0.8) ? r.pick(SKETCHES) : new Uint8Array(0),
      negativeClamped: r.chance(0.1) ? r.pick([1n, 7n, 2n ** 60n, 2n ** 64n - 1n]) : 0n,
    });
  });
  return create(SummarySchema, {
    intervalStartS: BigInt(start),
    intervalS,
    server: r.pick(SERVERS),
    serverPort: r.pick([0, 80, 443, 5432, 65_535]),
    transport: r.pick(['tcp', 'udp']),
    protocol: r.pick(['http', 'dns', 'pgsql', 'tcp']),
    signature: r.pick(['GET_/a', 'POST /x?y="1"\\z', 'A', '~ ~', `SIG_${r.int(5)}`, 'x'.repeat(200)]),
    count: BigInt(count),
    outcomes,
    metrics,
    partial: r.chance(0.2),
  });
}

function validBatch(r: Rng, n: number): IngestRequest {
  const summaries: Summary[] = [];
  for (let i = 0; i < n; i++) {
    // now and then a key repeated within the batch (stored once: the first)
    summaries.push(i > 0 && r.chance(0.05) ? create(SummarySchema, { ...summaries[r.int(i)]!, count: 5n, outcomes: [], metrics: [] }) : validSummary(r, i));
  }
  return create(IngestRequestSchema, {
    sensorId: r.pick(['sensor-a', 'farm b', '~', 'x'.repeat(200)]),
    streamId: r.pick(['s', 'AbC-_9', 'z'.repeat(64)]),
    sequence: BigInt(1 + r.int(1e6)),
    summaries,
    stats: r.chance(0.5) ? { packets: 1n, bytes: 2n ** 62n, kernelDrops: 3n, captureTimeS: r.pick([0n, 1_767_225_600n, -5n]) } : undefined,
  });
}

/** One field made invalid (or merely unusual) in a valid batch. */
const BREAK: ((b: IngestRequest, r: Rng) => void)[] = [
  (b) => { b.sensorId = ''; },
  (b) => { b.sensorId = ' lead'; },
  (b) => { b.sensorId = 'x'.repeat(201); },
  (b) => { b.sensorId = 'tab\there'; },
  (b) => { b.sensorId = 'sensör'; },
  (b) => { b.streamId = ''; },
  (b) => { b.streamId = 'a b'; },
  (b) => { b.streamId = 'z'.repeat(65); },
  (b) => { b.sequence = 0n; },
  (b) => { b.sequence = 2n ** 63n; },
  (b) => { b.sequence = 2n ** 64n - 1n; },
  (b) => { b.stats = create(SensorStatsSchema, { packets: 2n ** 63n }); },
  (b, r) => { s(b, r).intervalS = 0; },
  (b, r) => { s(b, r).intervalS = 366 * 86_400 + 1; },
  (b, r) => { s(b, r).intervalS = 366 * 86_400; s(b, r).intervalStartS = 0n; },
  (b, r) => { s(b, r).intervalStartS += 1n; },
  (b, r) => { s(b, r).intervalStartS = 946_684_800n - 300n; },
  (b, r) => { s(b, r).intervalStartS = 4_102_444_800n + 300n; },
  (b, r) => { s(b, r).intervalStartS = -300n; },
  (b, r) => { s(b, r).intervalStartS = 946_684_800n; s(b, r).intervalS = 1; },
  (b, r) => { s(b, r).intervalStartS = 4_102_444_800n; s(b, r).intervalS = 1; },
  (b, r) => { s(b, r).server = 'not-an-address'; },
  (b, r) => { s(b, r).server = ''; },
  (b, r) => { s(b, r).server = '10.0.0.256'; },
  (b, r) => { s(b, r).server = '１0.0.0.1'; },
  (b, r) => { s(b, r).serverPort = 65_536; },
  (b, r) => { s(b, r).serverPort = 2 ** 32 - 1; },
  (b, r) => { s(b, r).transport = 'sctp'; },
  (b, r) => { s(b, r).transport = 'TCP'; },
  (b, r) => { s(b, r).transport = 'tc'; },
  (b, r) => { s(b, r).transport = ''; },
  (b, r) => { s(b, r).protocol = ''; },
  (b, r) => { s(b, r).protocol = 'p'.repeat(33); },
  (b, r) => { s(b, r).protocol = 'p'.repeat(32); },
  (b, r) => { s(b, r).signature = ''; },
  (b, r) => { s(b, r).signature = 'x'.repeat(201); },
  (b, r) => { s(b, r).signature = 'GET_é'; },
  (b, r) => { s(b, r).signature = 'line\n'; },
  (b, r) => { s(b, r).signature = '\x7f'; },
  (b, r) => { s(b, r).outcomes.push({ $typeName: 'wiretime.v1.OutcomeCount', outcome: 'Bad', count: 0n }); },
  (b, r) => { s(b, r).outcomes.push({ $typeName: 'wiretime.v1.OutcomeCount', outcome: '', count: 0n }); },
  (b, r) => { s(b, r).outcomes.push({ $typeName: 'wiretime.v1.OutcomeCount', outcome: 'ok', count: 2n ** 60n }); },
  (b, r) => { s(b, r).outcomes.push({ $typeName: 'wiretime.v1.OutcomeCount', outcome: 'o'.repeat(65), count: 0n }); },
  (b, r) => { s(b, r).outcomes.push({ $typeName: 'wiretime.v1.OutcomeCount', outcome: 'o'.repeat(64), count: 0n }); },
  (b, r) => { const x = s(b, r); x.outcomes = [{ $typeName: 'wiretime.v1.OutcomeCount', outcome: 'ok', count: x.count }, { $typeName: 'wiretime.v1.OutcomeCount', outcome: 'ok', count: 1n }]; },
  (b, r) => { const x = s(b, r); x.outcomes = [{ $typeName: 'wiretime.v1.OutcomeCount', outcome: 'ok', count: x.count }, { $typeName: 'wiretime.v1.OutcomeCount', outcome: 'ok', count: 0n }]; },
  (b, r) => { m(b, r).name = 'Bad'; },
  (b, r) => { m(b, r).name = ''; },
  (b, r) => { m(b, r).name = '9x'; },
  (b, r) => { const x = s(b, r); if (x.metrics.length > 0) x.metrics.push(x.metrics[0]!); },
  (b, r) => { const x = s(b, r); const y = m(b, r); y.count = x.count + 1n; },
  (b, r) => { m(b, r).count = 2n ** 53n; },
  (b, r) => { m(b, r).sum = NaN; },
  (b, r) => { m(b, r).min = Infinity; },
  (b, r) => { m(b, r).max = -Infinity; },
  (b, r) => { const y = m(b, r); y.count = 1n; y.min = 2; y.max = 1; },
  (b, r) => { const y = m(b, r); y.count = 0n; y.min = 2; y.max = 1; },
  (b, r) => { const y = m(b, r); y.count = 1n; y.min = 2; y.max = 2; },
  (b, r) => { m(b, r).negativeClamped = 2n ** 64n - 1n; },
  (b, r) => { const y = m(b, r); y.name = 'response_bytes_x'; y.sketch = SKETCHES[0]!; },
  (b, r) => { const y = m(b, r); y.name = 'zz_ns'; y.sketch = new Uint8Array([0xff, 1, 2]); },
  (b, r) => { const y = m(b, r); y.name = 'zz_ns'; y.sketch = SKETCHES[1]!.subarray(0, SKETCHES[1]!.length - 3); },
  (b) => { b.summaries = []; },
  (b) => { b.summaries = Array.from({ length: 10_001 }, () => create(SummarySchema)); },
];
/** Valid batches of a shape the fast path leaves to protobuf-es (a count of 2^53 or more, more than 64 outcomes). */
const UNUSUAL: ((b: IngestRequest, r: Rng) => void)[] = [
  (b, r) => { s(b, r).count = 2n ** 53n; },
  (b, r) => { s(b, r).count = 2n ** 63n; },
  (b, r) => { s(b, r).count = 2n ** 64n - 1n; },
  (b, r) => { const x = s(b, r); x.outcomes = Array.from({ length: 70 }, () => ({ $typeName: 'wiretime.v1.OutcomeCount', outcome: 'ok', count: 0n })); },
];
function s(b: IngestRequest, r: Rng): Summary {
  if (b.summaries.length === 0) b.summaries.push(validSummary(r, 0));
  return b.summaries[r.int(b.summaries.length)]!;
}
function m(b: IngestRequest, r: Rng): Metric {
  const x = s(b, r);
  if (x.metrics.length === 0) x.metrics.push(create(MetricSchema, { name: 'zz_ns', count: 0n }));
  return x.metrics[r.int(x.metrics.length)]!;
}

/** Unknown fields protobuf-es must skip, and fields it must take last-one-wins or merged. */
function unknownField(r: Rng): Uint8Array {
  const w = new BinaryWriter();
  const no = 12 + r.int(100);
  switch (r.int(5)) {
    case 0: w.tag(no, WireType.Varint).uint64(r.pick([0n, 1n, 2n ** 64n - 1n])); break;
    case 1: w.tag(no, WireType.Bit64).double(1.5); break;
    case 2: w.tag(no, WireType.Bit32).fixed32(7); break;
    case 3: w.tag(no, WireType.LengthDelimited).bytes(new Uint8Array(r.int(20))); break;
    default: w.tag(no, WireType.StartGroup).tag(1, WireType.Varint).uint32(5).tag(no, WireType.EndGroup);
  }
  return w.finish();
}

/** Byte-level damage to an encoded batch. */
function mangle(bytes: Uint8Array, r: Rng): Uint8Array {
  const b = new Uint8Array(bytes);
  switch (r.int(9)) {
    case 0: return b.subarray(0, r.int(b.length));
    case 1: {
      const i = r.int(b.length);
      b[i] = r.int(256);
      return b;
    }
    case 2: {
      const i = r.int(b.length);
      b[i] = b[i]! ^ (1 << r.int(8));
      return b;
    }
    case 3: return Buffer.concat([b, unknownField(r)]);
    case 4: return Buffer.concat([unknownField(r), b]);
    case 5: {
      // the fields of a second request: a protobuf message may carry fields again, later ones win
      const w = new BinaryWriter();
      switch (r.int(5)) {
        case 0: w.tag(1, WireType.LengthDelimited).string(r.pick(['other', 'bad id', ''])); break;
        case 1: w.tag(2, WireType.Varint).uint64(r.pick([0n, 9n])); break;
        case 2: w.tag(4, WireType.LengthDelimited).bytes(new BinaryWriter().tag(1, WireType.Varint).uint64(77n).tag(8, WireType.Varint).int64(-1n).finish()); break;
        case 3: w.tag(5, WireType.LengthDelimited).string(r.pick(['s2', ''])); break;
        default: w.tag(3, WireType.LengthDelimited).bytes(toBinary(SummarySchema, validSummary(r, 99)));
      }
      return Buffer.concat([b, w.finish()]);
    }
    case 6: {
      // a known field with the wrong wire type
      const w = new BinaryWriter();
      w.tag(r.pick([1, 2, 3, 4, 5]), r.pick([WireType.Varint, WireType.Bit64, WireType.LengthDelimited, WireType.Bit32]));
      w.raw(new Uint8Array([r.int(128), r.int(256), r.int(256), r.int(256), r.int(256), r.int(256), r.int(256), r.int(256)]));
      return Buffer.concat([b, w.finish()]);
    }
    case 7: {
      // an overlong varint or a bad tag
      return Buffer.concat([b, new Uint8Array(r.pick([[0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], [0x00, 0x01], [0x0f], [0xff]]))]);
    }
    default: {
      // a summary with unknown fields inside it, or inside one of its metrics
      const x = validSummary(r, 7);
      const u = unknownField(r);
      const w = new BinaryWriter();
      const inner = toBinary(SummarySchema, x);
      if (x.metrics.length > 0 && r.chance(0.5)) {
        const mb = Buffer.concat([toBinary(MetricSchema, x.metrics[0]!), u]);
        const rest = create(SummarySchema, { ...x, metrics: x.metrics.slice(1) });
        w.tag(3, WireType.LengthDelimited).bytes(Buffer.concat([toBinary(SummarySchema, rest), new BinaryWriter().tag(10, WireType.LengthDelimited).bytes(mb).finish()]));
      } else {
        w.tag(3, WireType.LengthDelimited).bytes(Buffer.concat([u, inner]));
      }
      return Buffer.concat([b, w.finish()]);
    }
  }
}

interface Tally { accepted: number; valid: number; invalid: number; malformed: number; declinedValid: number }

/** Both paths on one request; asserts that an acceptance is the reference's. */
function check(decoder: IngestRowsDecoder, bytes: Uint8Array, tally: Tally, what: string): boolean {
  let ref: IngestRequest | null = null;
  try {
    ref = fromBinary(IngestRequestSchema, bytes);
  } catch {
    ref = null;
  }
  const problem = ref === null ? null : validateBatch(ref);
  if (ref === null) tally.malformed++;
  else if (problem !== null) tally.invalid++;
  else tally.valid++;
  const head = decoder.readHead(bytes);
  if (head !== null && ref !== null) {
    assert.equal(head.sensorId, ref.sensorId, what);
    assert.equal(head.streamId, ref.streamId, what);
    assert.equal(head.sequence, ref.sequence, what);
    assert.equal(head.summaryCount, ref.summaries.length, what);
    assert.deepEqual(head.stats === undefined ? undefined : toBinary(IngestRequestSchema, create(IngestRequestSchema, { stats: head.stats })),
      ref.stats === undefined ? undefined : toBinary(IngestRequestSchema, create(IngestRequestSchema, { stats: ref.stats })), `${what}: stats`);
  }
  const rows = head === null ? null : decoder.decode(head);
  if (rows === null) {
    if (ref !== null && problem === null) {
      tally.declinedValid++;
      if (process.env['DEBUG_DECLINED']) console.log('declined valid:', what);
    }
    return false;
  }
  tally.accepted++;
  assert.ok(ref !== null, `${what}: accepted bytes protobuf-es cannot decode`);
  assert.equal(problem, null, `${what}: accepted a batch validateBatch refuses`);
  if (ref === null) return false;
  const want = referenceRows(ref, idOf, idOf);
  patchIds(rows, idOf, idOf);
  assert.equal(rows.rows, want.rows, `${what}: rows`);
  assert.ok(rows.facts.equals(want.facts), `${what}: summaries_l1 payload differs at byte ${firstDifference(rows.facts, want.facts)}`);
  assert.equal(rows.sketches === null, want.sketches === null, `${what}: sketches`);
  if (rows.sketches !== null) assert.ok(rows.sketches.equals(want.sketches!), `${what}: summary_sketches payload differs at byte ${firstDifference(rows.sketches, want.sketches!)}`);
  assert.deepEqual([...rows.servers], [...want.servers], `${what}: servers`);
  assert.deepEqual([...rows.signatures], [...want.signatures], `${what}: signatures`);
  assert.deepEqual([...rows.days].sort(), [...want.days].sort(), `${what}: days`);
  assert.deepEqual(toBinary(IngestRequestSchema, rows.request()), toBinary(IngestRequestSchema, ref), `${what}: request()`);
  rows.release(); // the next batches reuse its buffers
  return true;
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

describe('IngestRowsDecoder against protobuf-es + validateBatch + storeBatch rows', () => {
  test('valid batches: accepted, with the rows storeBatch writes', () => {
    const r = rng(1);
    const decoder = new IngestRowsDecoder();
    const tally: Tally = { accepted: 0, valid: 0, invalid: 0, malformed: 0, declinedValid: 0 };
    for (let k = 0; k < 400; k++) {
      const batch = validBatch(r, 1 + r.int(12));
      const bytes = toBinary(IngestRequestSchema, batch);
      check(decoder, bytes, tally, `valid #${k}`);
    }
    assert.equal(tally.valid, 400, 'the generator makes valid batches');
    assert.equal(tally.accepted, 400, 'the fast path takes every valid batch of ordinary shape');
  });

  test('the sensor\'s encoding (sensor_id and stream_id appended after the summaries) is taken as it is', () => {
    const r = rng(2);
    const decoder = new IngestRowsDecoder();
    const tally: Tally = { accepted: 0, valid: 0, invalid: 0, malformed: 0, declinedValid: 0 };
    for (let k = 0; k < 50; k++) {
      const batch = validBatch(r, 5);
      const record = toBinary(IngestRequestSchema, create(IngestRequestSchema, { sequence: batch.sequence, summaries: batch.summaries, stats: batch.stats }));
      const identity = toBinary(IngestRequestSchema, create(IngestRequestSchema, { sensorId: batch.sensorId, streamId: batch.streamId }));
      assert.ok(check(decoder, Buffer.concat([record, identity]), tally, `sensor #${k}`));
    }
  });

  test('batches with one field made invalid or unusual: never accepted unless valid, and then with the same rows', () => {
    const r = rng(3);
    const decoder = new IngestRowsDecoder();
    const tally: Tally = { accepted: 0, valid: 0, invalid: 0, malformed: 0, declinedValid: 0 };
    const all = [...BREAK, ...UNUSUAL];
    for (let k = 0; k < 3000; k++) {
      const batch = validBatch(r, 1 + r.int(6));
      const which = k % all.length;
      all[which]!(batch, r);
      const declined = tally.declinedValid;
      check(decoder, toBinary(IngestRequestSchema, batch), tally, `break ${which} #${k}`);
      if (which < BREAK.length) assert.equal(tally.declinedValid, declined, `break ${which} #${k}: a valid batch of ordinary shape was left to protobuf-es`);
    }
    assert.ok(tally.invalid > 2000 && tally.valid > 300, JSON.stringify(tally));
  });

  test('damaged bytes: never accepted unless protobuf-es decodes them to a valid batch, and then with the same rows', () => {
    const r = rng(4);
    const decoder = new IngestRowsDecoder();
    const tally: Tally = { accepted: 0, valid: 0, invalid: 0, malformed: 0, declinedValid: 0 };
    for (let k = 0; k < 4000; k++) {
      let bytes: Uint8Array = toBinary(IngestRequestSchema, validBatch(r, 1 + r.int(4)));
      for (let n = 1 + r.int(2); n > 0; n--) bytes = mangle(bytes, r);
      check(decoder, bytes, tally, `mangled #${k}`);
    }
    assert.ok(tally.malformed > 300 && tally.accepted > 500, JSON.stringify(tally));
  });

  test('stats given twice merge as protobuf-es merges them; the last sequence wins', () => {
    const decoder = new IngestRowsDecoder();
    const tally: Tally = { accepted: 0, valid: 0, invalid: 0, malformed: 0, declinedValid: 0 };
    const a = toBinary(IngestRequestSchema, create(IngestRequestSchema, { sensorId: 's', streamId: 't', sequence: 5n, stats: { packets: 1n, bytes: 2n } }));
    const b = toBinary(IngestRequestSchema, create(IngestRequestSchema, { sequence: 6n, stats: { bytes: 3n, captureTimeS: 9n } }));
    assert.ok(check(decoder, Buffer.concat([a, b]), tally, 'merge'));
    const head = decoder.readHead(Buffer.concat([a, b]))!;
    assert.equal(head.sequence, 6n);
    assert.deepEqual([head.stats!.packets, head.stats!.bytes, head.stats!.captureTimeS], [1n, 3n, 9n]);
  });
});
