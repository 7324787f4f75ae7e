/**
 * The ingest service through a real gRPC server on a loopback port: authentication,
 * validation and acknowledgement. Storage here is a small in-memory double that records
 * what it is given; the PostgreSQL and PGlite stores have their own tests.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createChannel, createClient, Metadata } from 'nice-grpc';
import { HealthDefinition } from 'nice-grpc-server-health';
import { ServerReflectionService } from 'nice-grpc-server-reflection';
import reflection from 'nice-grpc-server-reflection/lib/proto/grpc/reflection/v1/reflection_pb.js';
import { IngestService, type IngestRequest } from '../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import { niceService } from '../../proto/src/nice-grpc.ts';
import { startCollector, parseTokens, type RunningCollector } from './collector-server.ts';
import type { BatchStore } from './ingest-service.ts';

class MemoryStore implements BatchStore {
  readonly batches = new Map<string, IngestRequest>();
  failing = false;
  /** storeBatch never answers (a database that hangs) */
  hanging = false;
  async storeBatch(batch: IngestRequest): Promise<'stored' | 'duplicate'> {
    if (this.failing) throw new Error('connection refused');
    if (this.hanging) return new Promise(() => {});
    const key = `${batch.sensorId}/${batch.sequence}`;
    if (this.batches.has(key)) return 'duplicate';
    this.batches.set(key, batch);
    return 'stored';
  }
}

const TOKEN_A = 'token-for-farm-a-0123456789';
const TOKEN_B = 'token-for-farm-b-0123456789';
const store = new MemoryStore();
let collector: RunningCollector;

const summary = (over: Record<string, unknown> = {}) => ({
  intervalStartS: 1_767_225_600n, intervalS: 300, server: '10.2.0.1', serverPort: 80, transport: 'tcp', protocol: 'http', signature: 'GET', count: 2n,
  outcomes: [{ outcome: 'ok', count: 2n }],
  metrics: [{ name: 'ttfr_ns', count: 2n, sum: 30e6, min: 10e6, max: 20e6 }],
  ...over,
});

async function send(token: string | null, batches: object[]): Promise<bigint[]> {
  const channel = createChannel(`127.0.0.1:${collector.port}`);
  const c = createClient(niceService(IngestService), channel);
  const metadata = new Metadata();
  if (token !== null) metadata.set('authorization', `Bearer ${token}`);
  async function* stream() { for (const b of batches) yield b; }
  const acks: bigint[] = [];
  try {
    for await (const ack of c.ingest(stream(), { metadata })) acks.push(ack.ackedSequence);
  } finally {
    channel.close();
  }
  return acks;
}

before(async () => {
  collector = await startCollector(store, { listen: '127.0.0.1:0', tokens: parseTokens(`farm-a ${TOKEN_A}\nfarm-b ${TOKEN_B}\n`, 'tokens') });
});
after(() => collector.close());

describe('ingest over gRPC', () => {
  test('batches are stored and acknowledged in order; a replayed batch is acknowledged, not stored twice', async () => {
    const acks = await send(TOKEN_A, [
      { sensorId: 'farm-a', streamId: 'stream-1', sequence: 1n, summaries: [summary()] },
      { sensorId: 'farm-a', streamId: 'stream-1', sequence: 2n, summaries: [summary({ signature: 'POST' })] },
      { sensorId: 'farm-a', streamId: 'stream-1', sequence: 2n, summaries: [summary({ signature: 'POST' })] },
    ]);
    assert.deepEqual(acks, [1n, 2n, 2n]);
    assert.equal(store.batches.get('farm-a/2')!.summaries[0]!.signature, 'POST');
    assert.equal(collector.counters.batches_stored, 2);
    assert.equal(collector.counters.batches_duplicate, 1);
  });

  test('no token, an unknown token, or writing as another sensor is refused', async () => {
    await assert.rejects(send(null, [{ sensorId: 'farm-a', streamId: 'stream-1', sequence: 9n }]), /UNAUTHENTICATED/);
    await assert.rejects(send('not-a-token-at-all-xxxx', [{ sensorId: 'farm-a', streamId: 'stream-1', sequence: 9n }]), /UNAUTHENTICATED/);
    await assert.rejects(send(TOKEN_B, [{ sensorId: 'farm-a', streamId: 'stream-1', sequence: 9n }]), /PERMISSION_DENIED.*farm-b/);
    assert.equal(store.batches.has('farm-a/9'), false);
  });

  test('a malformed batch is refused with INVALID_ARGUMENT naming the field; earlier batches stay acknowledged', async () => {
    const acks: bigint[] = [];
    const channel = createChannel(`127.0.0.1:${collector.port}`);
    const c = createClient(niceService(IngestService), channel);
    const metadata = new Metadata({ authorization: `Bearer ${TOKEN_B}` });
    async function* stream() {
      yield { sensorId: 'farm-b', streamId: 'stream-1', sequence: 1n, summaries: [summary()] };
      yield { sensorId: 'farm-b', streamId: 'stream-1', sequence: 2n, summaries: [summary(), summary({ server: 'not-an-address' })] };
    }
    await assert.rejects(async () => { for await (const a of c.ingest(stream(), { metadata })) acks.push(a.ackedSequence); },
      /INVALID_ARGUMENT: batch 2: summaries\[1\]\.server: "not-an-address" is not an IP address/);
    channel.close();
    assert.deepEqual(acks, [1n]);
    assert.equal(store.batches.has('farm-b/2'), false);
  });

  test('a batch without a stream id, or with one the spool cannot have written, is refused naming stream_id', async () => {
    await assert.rejects(send(TOKEN_B, [{ sensorId: 'farm-b', sequence: 4n, summaries: [summary()] }]),
      /INVALID_ARGUMENT: batch 4: stream_id: "" is not a stream id/);
    await assert.rejects(send(TOKEN_B, [{ sensorId: 'farm-b', streamId: 'a b', sequence: 4n, summaries: [summary()] }]),
      /INVALID_ARGUMENT: batch 4: stream_id: "a b" is not a stream id/);
    assert.equal(store.batches.has('farm-b/4'), false);
  });

  test('sketch bytes that are not a DDSketch are refused before anything is stored', async () => {
    const bad = summary({ metrics: [{ name: 'ttfr_ns', count: 2n, sum: 30e6, min: 10e6, max: 20e6, sketch: new Uint8Array([0xff, 0x01, 0x02]) }] });
    await assert.rejects(send(TOKEN_B, [{ sensorId: 'farm-b', streamId: 'stream-1', sequence: 3n, summaries: [bad] }]), /summaries\[0\]\.metrics\[0\]\.sketch: /);
    assert.equal(store.batches.has('farm-b/3'), false);
  });

  test('storage down: UNAVAILABLE and no acknowledgement, so the sensor keeps the batch', async () => {
    store.failing = true;
    try {
      await assert.rejects(send(TOKEN_A, [{ sensorId: 'farm-a', streamId: 'stream-1', sequence: 3n, summaries: [summary()] }]), /UNAVAILABLE.*not stored/);
    } finally {
      store.failing = false;
    }
    assert.deepEqual(await send(TOKEN_A, [{ sensorId: 'farm-a', streamId: 'stream-1', sequence: 3n, summaries: [summary()] }]), [3n]);
  });

  test('grpc.health.v1 reports the ingest service SERVING', async () => {
    const channel = createChannel(`127.0.0.1:${collector.port}`);
    const health = createClient(HealthDefinition, channel);
    try {
      assert.equal((await health.check({ service: 'wiretime.v1.IngestService' })).status, 1); // SERVING (grpc/health/v1/health.proto)
      assert.equal((await health.check({ service: '' })).status, 1);
    } finally {
      channel.close();
    }
  });

  test('server reflection lists IngestService and describes it (what grpcurl asks)', async () => {
    const channel = createChannel(`127.0.0.1:${collector.port}`);
    const client = createClient(ServerReflectionService, channel);
    async function* ask() {
      const list = new reflection.ServerReflectionRequest();
      list.setListServices('');
      yield list;
      const symbol = new reflection.ServerReflectionRequest();
      symbol.setFileContainingSymbol('wiretime.v1.IngestService');
      yield symbol;
    }
    const answers: reflection.ServerReflectionResponse[] = [];
    try {
      for await (const a of client.serverReflectionInfo(ask())) answers.push(a);
    } finally {
      channel.close();
    }
    const names = answers[0]!.getListServicesResponse()!.getServiceList().map((x) => x.getName()).sort();
    assert.deepEqual(names, ['wiretime.v1.IngestService']);
    const files = answers[1]!.getFileDescriptorResponse()!.getFileDescriptorProtoList_asU8();
    // FileDescriptorProto field 1 is the file name: wiretime/v1/ingest.proto comes first.
    assert.ok(files.length >= 1);
    assert.ok(Buffer.from(files[0]!).toString('latin1').includes('wiretime/v1/ingest.proto'));
  });
});

test('a database that hangs ends the stream with UNAVAILABLE after the store deadline, without an ack', async () => {
  const hanging = new MemoryStore();
  hanging.hanging = true;
  const c = await startCollector(hanging, { listen: '127.0.0.1:0', store_timeout_ms: 300 });
  const channel = createChannel(`127.0.0.1:${c.port}`);
  const client = createClient(niceService(IngestService), channel);
  async function* one() { yield { sensorId: 'farm-a', streamId: 'stream-1', sequence: 1n, summaries: [summary()] }; }
  const started = Date.now();
  try {
    const acks: bigint[] = [];
    await assert.rejects((async () => { for await (const a of client.ingest(one())) acks.push(a.ackedSequence); })(),
      /UNAVAILABLE: storage is unavailable \(not stored within 300 ms\)/);
    assert.deepEqual(acks, []);
    assert.ok(Date.now() - started < 5_000);
    assert.equal(c.counters.store_unavailable, 1);
  } finally {
    channel.close();
    await c.close();
  }
});

test('batches stored several at a time are acknowledged in sequence order; a batch that fails is not acknowledged, nor any after it', async () => {
  class SlowStore extends MemoryStore {
    delays = new Map<bigint, number>();
    fail = new Set<bigint>();
    order: bigint[] = [];
    override async storeBatch(batch: IngestRequest): Promise<'stored' | 'duplicate'> {
      await new Promise((r) => setTimeout(r, this.delays.get(batch.sequence) ?? 0));
      if (this.fail.has(batch.sequence)) throw new Error(`disk full at ${batch.sequence}`);
      const r = await super.storeBatch(batch);
      this.order.push(batch.sequence);
      return r;
    }
  }
  const slow = new SlowStore();
  const c = await startCollector(slow, { listen: '127.0.0.1:0', batches_in_flight: 4 });
  const channel = createChannel(`127.0.0.1:${c.port}`);
  const client = createClient(niceService(IngestService), channel);
  const run = async (seqs: bigint[]) => {
    async function* batches() { for (const s of seqs) yield { sensorId: 'farm-a', streamId: 'stream-9', sequence: s, summaries: [summary()] }; }
    const acks: bigint[] = [];
    try {
      for await (const a of client.ingest(batches())) acks.push(a.ackedSequence);
      return { acks, error: null };
    } catch (err) {
      return { acks, error: (err as Error).message };
    }
  };
  try {
    slow.delays.set(1n, 300); // 1 is slow, 2 and 3 finish first
    assert.deepEqual(await run([1n, 2n, 3n]), { acks: [1n, 2n, 3n], error: null });
    assert.deepEqual(slow.order, [2n, 3n, 1n]);

    slow.order = [];
    slow.fail.add(4n);
    slow.delays.set(4n, 200);
    const failed = await run([4n, 5n]);
    assert.deepEqual(failed.acks, []);
    assert.match(failed.error ?? '', /UNAVAILABLE: storage is unavailable \(disk full at 4\); batch 4 was not stored/);
    assert.deepEqual(slow.order, [5n], '5 was stored while 4 failed');
    slow.fail.clear();
    assert.deepEqual(await run([4n, 5n]), { acks: [4n, 5n], error: null }, 'the replay stores 4; 5 is a duplicate, acknowledged');
    assert.equal(slow.batches.size, 5);
  } finally {
    channel.close();
    await c.close();
  }
});
