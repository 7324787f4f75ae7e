import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { SensorStatsSchema, SummarySchema, type Summary } from '@wiretime/proto/gen/wiretime/v1/summary_pb.ts';
import type { IngestRequest } from '@wiretime/proto/gen/wiretime/v1/ingest_pb.ts';
import { Spool, peekSequence } from './spool.ts';

function summaries(tag: string, n = 1): Summary[] {
  return Array.from({ length: n }, (_, i) => create(SummarySchema, {
    intervalStartS: 1_767_225_600n, intervalS: 60, server: '10.0.0.1', serverPort: 80, transport: 'tcp', protocol: 'http', signature: `${tag}_${i}`, count: 3n,
    metrics: [{ name: 'ttfr_ns', count: 3n, sum: 6e6, min: 1e6, max: 3e6, sketch: new Uint8Array([1, 2, 3]) }],
  }));
}

async function collect<T = IngestRequest>(it: AsyncIterable<T> | T[]): Promise<T[]> {
  const out: T[] = [];
  for await (const r of it) out.push(r);
  return out;
}

const segmentFiles = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('seg-')).sort();

let dir = '';
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'wiretime-spool-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('Spool', () => {
  it('appends, reopens and gives back the pending batches in order', async () => {
    const spool = await Spool.open({ dir });
    const stats = create(SensorStatsSchema, { packets: 10n, transactions: 2n });
    assert.equal(await spool.append(summaries('a', 2), stats), 1n);
    assert.equal(await spool.append(summaries('b')), 2n);
    assert.equal(await spool.append(summaries('c')), 3n);
    assert.deepEqual((await collect(spool.pending(1n))).map((r) => r.sequence), [2n, 3n]);
    await spool.close();

    const again = await Spool.open({ dir });
    const all = await collect(again.pending(0n));
    assert.deepEqual(all.map((r) => r.sequence), [1n, 2n, 3n]);
    assert.deepEqual(all.map((r) => r.summaries.map((s) => s.signature)), [['a_0', 'a_1'], ['b_0'], ['c_0']]);
    assert.equal(all[0]!.stats?.packets, 10n);
    assert.equal(all[0]!.summaries[0]!.metrics[0]!.sum, 6e6);
    assert.deepEqual({ ...again.stats(), depth_bytes: 0 }, { depth_batches: 3, depth_bytes: 0, last_sequence: 3n, acked_sequence: 0n, refused_batches: 0, rejected_batches: 0, torn_records: 0 });
    assert.ok(again.stats().depth_bytes > 0);
    await again.close();
    await assert.rejects(again.append([]), /closed/);
  });

  it('reads pending batches from where they start, without rereading the ones before', async () => {
    const spool = await Spool.open({ dir });
    for (const tag of ['a', 'b', 'c', 'd', 'e']) await spool.append(summaries(tag));
    // damage the first record on disk behind the spool's back: only a reader that rereads it notices
    const [file] = segmentFiles(dir);
    const bytes = readFileSync(join(dir, file!));
    bytes[12] = bytes[12]! ^ 0xff;
    writeFileSync(join(dir, file!), bytes);
    assert.deepEqual((await collect(spool.pendingRecords(2n))).map((r) => r.sequence), [3n, 4n, 5n]);
    assert.deepEqual((await collect(spool.pending(4n))).map((r) => r.summaries[0]!.signature), ['e_0']);
    await assert.rejects(collect(spool.pending(0n)), /damaged record/);
    await spool.close();
  });

  it('keeps one random stream id for its lifetime; a spool created again gets another', async () => {
    const spool = await Spool.open({ dir });
    const id = spool.stream_id;
    assert.match(id, /^[0-9A-Za-z_-]{22}$/); // 128 random bits, base64url
    assert.equal(await spool.append(summaries('a')), 1n);
    await spool.close();
    const again = await Spool.open({ dir });
    assert.equal(again.stream_id, id);
    assert.equal(readFileSync(join(dir, 'stream'), 'utf8').trim(), id);
    await again.close();

    rmSync(dir, { recursive: true, force: true });
    const fresh = await Spool.open({ dir });
    assert.notEqual(fresh.stream_id, id);
    assert.equal(await fresh.append(summaries('b')), 1n, 'sequences start again at 1, in a new stream');
    await fresh.close();
  });

  it('refuses to open when its stream file is damaged, rather than start a stream the collector would confuse', async () => {
    writeFileSync(join(dir, 'stream'), 'not a stream id!\n');
    await assert.rejects(Spool.open({ dir }), /stream does not hold a stream id/);
  });

  it('deletes fully acknowledged segments, persists the ack point, and continues the sequence after reopening', async () => {
    const spool = await Spool.open({ dir, segment_bytes: 300 });
    for (let i = 0; i < 10; i++) await spool.append(summaries(`s${i}`));
    const before = segmentFiles(dir);
    assert.ok(before.length >= 3, `several segments: ${before}`);
    await spool.acknowledge(6n);
    const after = segmentFiles(dir);
    assert.ok(after.length < before.length);
    assert.equal(readFileSync(join(dir, 'acked'), 'utf8').trim(), '6');
    assert.deepEqual((await collect(spool.pending(spool.stats().acked_sequence))).map((r) => r.sequence), [7n, 8n, 9n, 10n]);
    assert.equal(spool.stats().depth_batches, 4);
    await spool.close();

    const again = await Spool.open({ dir, segment_bytes: 300 });
    assert.equal(again.stats().acked_sequence, 6n);
    assert.equal(again.stats().last_sequence, 10n);
    assert.deepEqual(segmentFiles(dir), after);
    assert.deepEqual((await collect(again.pending(again.stats().acked_sequence))).map((r) => r.sequence), [7n, 8n, 9n, 10n]);
    assert.equal(await again.append(summaries('next')), 11n);
    await again.acknowledge(11n);
    assert.deepEqual(segmentFiles(dir), [], 'all acknowledged: no segment left');
    assert.equal(again.stats().depth_batches, 0);
    assert.equal(again.stats().depth_bytes, 0);
    await again.close();

    // every segment gone: the sequence still continues from the ack point
    const third = await Spool.open({ dir, segment_bytes: 300 });
    assert.equal(third.stats().last_sequence, 11n);
    assert.equal(await third.append(summaries('later')), 12n);
    assert.deepEqual((await collect(third.pending(0n))).map((r) => r.sequence), [12n]);
    await third.close();
  });

  it('ignores an acknowledgement at or below the ack point and clamps one past the last sequence', async () => {
    const spool = await Spool.open({ dir });
    await spool.append(summaries('a'));
    await spool.append(summaries('b'));
    await spool.acknowledge(1n);
    await spool.acknowledge(0n);
    assert.equal(spool.stats().acked_sequence, 1n);
    await spool.acknowledge(99n);
    assert.equal(spool.stats().acked_sequence, 2n);
    assert.equal(await spool.append(summaries('c')), 3n);
    await spool.close();
  });

  it('drops a torn last record (cut mid-write), counts it, keeps the earlier ones and appends after them', async () => {
    const spool = await Spool.open({ dir });
    for (let i = 0; i < 4; i++) await spool.append(summaries(`t${i}`, 3));
    await spool.close();
    const [file] = segmentFiles(dir);
    const path = join(dir, file!);
    const size = statSync(path).size;
    const lastRecord = size / 4; // all four records are the same size
    truncateSync(path, size - Math.floor(lastRecord / 2));

    const again = await Spool.open({ dir });
    assert.equal(again.stats().torn_records, 1);
    assert.equal(again.stats().last_sequence, 3n);
    assert.equal(statSync(path).size, size - lastRecord, 'file cut back to the last good record');
    assert.deepEqual((await collect(again.pending(0n))).map((r) => r.summaries[0]!.signature), ['t0_0', 't1_0', 't2_0']);
    assert.equal(await again.append(summaries('new')), 4n);
    await again.close();

    const third = await Spool.open({ dir });
    assert.equal(third.stats().torn_records, 0);
    assert.deepEqual((await collect(third.pending(0n))).map((r) => r.summaries[0]!.signature), ['t0_0', 't1_0', 't2_0', 'new_0']);
    await third.close();
  });

  it('drops a last record whose bytes do not match its CRC, and a lone partial header', async () => {
    const spool = await Spool.open({ dir });
    for (let i = 0; i < 3; i++) await spool.append(summaries(`c${i}`));
    await spool.close();
    const path = join(dir, segmentFiles(dir)[0]!);
    const bytes = readFileSync(path);
    bytes[bytes.length - 3]! ^= 0xff; // flip a byte in the last record's payload
    writeFileSync(path, Buffer.concat([bytes, Buffer.from([7, 0])]));
    const again = await Spool.open({ dir });
    assert.equal(again.stats().torn_records, 1);
    assert.deepEqual((await collect(again.pending(0n))).map((r) => r.sequence), [1n, 2n]);
    await again.close();
  });

  it('refuses batches past max_bytes, counts them, says so once per episode', async () => {
    const full: number[] = [];
    const spool = await Spool.open({ dir, max_bytes: 1000, segment_bytes: 400, on_full: (b) => full.push(b) });
    let stored = 0;
    for (let i = 0; i < 20; i++) if ((await spool.append(summaries(`f${i}`))) !== null) stored++;
    const s = spool.stats();
    assert.ok(stored > 0 && stored < 20);
    assert.equal(s.refused_batches, 20 - stored);
    assert.equal(s.last_sequence, BigInt(stored), 'a refused batch takes no sequence');
    assert.ok(s.depth_bytes <= 1000);
    assert.equal(full.length, 1);
    assert.equal(full[0], s.depth_bytes);

    // space freed by acknowledgement: appends resume; a new episode is told again
    await spool.acknowledge(s.last_sequence);
    assert.equal(await spool.append(summaries('again')), BigInt(stored + 1));
    for (let i = 0; i < 20; i++) await spool.append(summaries(`g${i}`));
    assert.equal(full.length, 2);
    await spool.close();
  });

  it('reads the sequence straight from the wire bytes', () => {
    assert.equal(peekSequence(new Uint8Array([0x10, 0x96, 0x01])), 150n);
    assert.equal(peekSequence(new Uint8Array([0x0a, 0x01, 0x61, 0x10, 0x05])), 5n);
    assert.equal(peekSequence(new Uint8Array([0x0a, 0x09, 0x61])), null);
    assert.equal(peekSequence(new Uint8Array([0x1a, 0x00])), null);
  });
});
