/**
 * The shipper against a REAL nice-grpc IngestService on a loopback port: an in-memory,
 * idempotent store keyed by (sensor, sequence) that acks every batch it is sent.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { create } from '@bufbuild/protobuf';
import { ServerError, Status, createServer, type CallContext, type Server } from 'nice-grpc';
import { IngestService, type IngestRequest } from '@wiretime/proto/gen/wiretime/v1/ingest_pb.ts';
import { SummarySchema, type Summary } from '@wiretime/proto/gen/wiretime/v1/summary_pb.ts';
import { niceService } from '@wiretime/proto/nice-grpc.ts';
import { Shipper } from './collector-client.ts';
import { Spool } from './spool.ts';

interface StoreOptions {
  /** required bearer token; undefined accepts anything */
  token?: string;
  /** ack only batches up to this sequence (store the rest) */
  ack_up_to?: bigint;
  /** called after each batch is handled */
  on_batch?: (b: IngestRequest) => void;
}

/** What the collector stored and what it was sent. */
class Store {
  rows: { sensor: string; sequence: bigint; signature: string }[] = [];
  received: bigint[] = [];
  authorizations: (string | undefined)[] = [];
  private keys = new Set<string>();
  constructor(public options: StoreOptions = {}) {}

  async *ingest(requests: AsyncIterable<IngestRequest>, context: CallContext) {
    const auth = context.metadata.get('authorization');
    this.authorizations.push(auth);
    if (this.options.token !== undefined && auth !== `Bearer ${this.options.token}`) throw new ServerError(Status.UNAUTHENTICATED, 'bad token');
    for await (const b of requests) {
      this.received.push(b.sequence);
      const key = `${b.sensorId}\u0000${b.sequence}`;
      if (!this.keys.has(key)) {
        this.keys.add(key);
        this.rows.push({ sensor: b.sensorId, sequence: b.sequence, signature: b.summaries[0]?.signature ?? '' });
      }
      this.options.on_batch?.(b);
      if (this.options.ack_up_to === undefined || b.sequence <= this.options.ack_up_to) yield { ackedSequence: b.sequence };
    }
  }

  sequences(): bigint[] {
    return this.rows.map((r) => r.sequence);
  }
}

async function serve(store: Store, port = 0): Promise<{ server: Server; port: number }> {
  const server = createServer();
  server.add(niceService(IngestService), { ingest: (requests, context) => store.ingest(requests, context) });
  return { server, port: await server.listen(`127.0.0.1:${port}`) };
}

/** A loopback port nobody listens on (yet). */
async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitFor(what: string, cond: () => boolean, timeout_ms = 5000): Promise<void> {
  const end = Date.now() + timeout_ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function batch(i: number): Summary[] {
  return [create(SummarySchema, { intervalStartS: 1_767_225_600n + BigInt(i) * 60n, intervalS: 60, server: '10.0.0.1', serverPort: 80, transport: 'tcp', protocol: 'http', signature: `B${i}`, count: 1n })];
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => BigInt(from + i));

let dir = '';
const cleanup: (() => unknown)[] = [];
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'wiretime-ship-')); });
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  rmSync(dir, { recursive: true, force: true });
});

function ship(spool: Spool, port: number, options: Partial<ConstructorParameters<typeof Shipper>[1]> = {}): Shipper {
  const shipper = new Shipper(spool, { address: `127.0.0.1:${port}`, sensor_id: 'farm-a', backoff_initial_ms: 20, backoff_max_ms: 100, ...options });
  cleanup.push(() => shipper.stop(0));
  shipper.start();
  return shipper;
}

async function openSpool(options: { segment_bytes?: number } = {}): Promise<Spool> {
  const spool = await Spool.open({ dir, ...options });
  cleanup.push(() => spool.close());
  return spool;
}

describe('Shipper', () => {
  it('(a) delivers batches appended before the collector existed, in order, once it starts', async () => {
    const port = await freePort();
    const spool = await openSpool();
    for (let i = 1; i <= 5; i++) await spool.append(batch(i));
    const shipper = ship(spool, port);
    await waitFor('a few failed attempts', () => shipper.stats().reconnects >= 2);
    assert.equal(shipper.stats().connected, false);
    assert.match(shipper.stats().last_error ?? '', /UNAVAILABLE/);
    for (let i = 6; i <= 8; i++) await spool.append(batch(i));

    const store = new Store();
    const { server } = await serve(store, port);
    cleanup.push(() => server.forceShutdown());
    await waitFor('8 batches acknowledged', () => spool.stats().acked_sequence === 8n);
    for (let i = 9; i <= 10; i++) await spool.append(batch(i));
    await waitFor('10 batches acknowledged', () => spool.stats().acked_sequence === 10n);
    assert.deepEqual(store.sequences(), range(1, 10));
    assert.deepEqual(store.rows.map((r) => r.signature), range(1, 10).map((i) => `B${i}`));
    assert.ok(store.rows.every((r) => r.sensor === 'farm-a'));
    assert.equal(spool.stats().depth_batches, 0);
    const s = shipper.stats();
    assert.equal(s.connected, true);
    assert.equal(s.last_ack_sequence, 10n);
    assert.ok(s.sent_batches >= 10);
    assert.deepEqual(store.authorizations, [undefined], 'one stream, and no token sent when there is none');
  });

  it('(b) survives a collector killed mid-stream of 200 batches: each stored once, in order, spool emptied', async () => {
    const spool = await openSpool({ segment_bytes: 2000 });
    const store = new Store();
    let first = await serve(store);
    const port = first.port;
    let killed = false;
    store.options.on_batch = () => {
      if (!killed && store.rows.length === 70) {
        killed = true;
        first.server.forceShutdown();
      }
    };
    const shipper = ship(spool, port, { backoff_initial_ms: 50, backoff_max_ms: 200 });
    for (let i = 1; i <= 200; i++) {
      assert.equal(await spool.append(batch(i)), BigInt(i));
      if (i % 10 === 0) await sleep(3);
    }
    await waitFor('the collector killed', () => killed);
    await sleep(1000);
    assert.ok(shipper.stats().reconnects >= 1);
    assert.ok(spool.stats().acked_sequence < 200n);
    first = await serve(store, port);
    cleanup.push(() => first.server.forceShutdown());
    await waitFor('all 200 acknowledged', () => spool.stats().acked_sequence === 200n, 8000);
    assert.deepEqual(store.sequences(), range(1, 200), 'every batch exactly once, in order');
    assert.equal(spool.stats().depth_batches, 0);
    assert.equal(spool.stats().depth_bytes, 0, 'acknowledged segments deleted');
    // batch 70 was stored but its ack died with the collector: sent again, acked, not stored twice
    assert.ok(store.received.filter((q) => q === 70n).length >= 2, 'the unacknowledged batch was replayed');
    assert.ok(store.received.length > 200);
  });

  it('(c) after a sensor crash, a new spool and shipper on the same directory resend what was not acknowledged', async () => {
    const store = new Store({ ack_up_to: 3n });
    const { server, port } = await serve(store);
    cleanup.push(() => server.forceShutdown());
    const spool = await Spool.open({ dir });
    for (let i = 1; i <= 8; i++) await spool.append(batch(i));
    const shipper = new Shipper(spool, { address: `127.0.0.1:${port}`, sensor_id: 'farm-a', backoff_initial_ms: 20, backoff_max_ms: 100 });
    shipper.start();
    await waitFor('8 stored, 3 acknowledged', () => store.rows.length === 8 && spool.stats().acked_sequence === 3n);
    // "crash": cut the stream without waiting for acks, drop the spool
    await shipper.stop(0);
    await spool.close();

    store.options.ack_up_to = undefined;
    const again = await openSpool();
    assert.equal(again.stats().acked_sequence, 3n);
    assert.equal(again.stats().depth_batches, 5);
    await again.append(batch(9));
    ship(again, port);
    await waitFor('all acknowledged', () => again.stats().acked_sequence === 9n);
    assert.deepEqual(store.sequences(), range(1, 9), 'nothing lost, nothing stored twice');
    assert.deepEqual(store.received.slice(8), range(4, 9), 'the restart resent from the persisted ack point, not from 1');
    assert.equal(again.stats().depth_batches, 0);
  });

  it('(d) with a wrong token it backs off and keeps the batches; the right token delivers them', async () => {
    const store = new Store({ token: 'right' });
    const { server, port } = await serve(store);
    cleanup.push(() => server.forceShutdown());
    const spool = await openSpool();
    for (let i = 1; i <= 3; i++) await spool.append(batch(i));
    const delays: number[] = [];
    const wrong = ship(spool, port, { token: 'wrong', backoff_initial_ms: 10, backoff_max_ms: 40, on_backoff: (d) => delays.push(d) });
    await waitFor('four refusals', () => wrong.stats().reconnects >= 4);
    await wrong.stop();
    const s = wrong.stats();
    assert.match(s.last_error ?? '', /UNAUTHENTICATED/);
    assert.match(s.last_error ?? '', /bad token/);
    assert.equal(s.last_ack_sequence, 0n);
    assert.deepEqual(store.rows, []);
    assert.equal(store.authorizations[0], 'Bearer wrong');
    assert.deepEqual(spool.stats().depth_batches, 3, 'the batches are kept');
    assert.ok(delays[3]! >= 20, `backing off: ${delays}`);

    ship(spool, port, { token: 'right' });
    await waitFor('delivered', () => spool.stats().acked_sequence === 3n);
    assert.deepEqual(store.sequences(), range(1, 3));
  });

  it('(e) the backoff doubles from the initial delay, is capped, is jittered, and starts over after acks', async () => {
    const spool = await openSpool();
    const exact = new Shipper(spool, { address: '127.0.0.1:1', sensor_id: 'x', backoff_initial_ms: 10, backoff_max_ms: 80, random: () => 1 });
    assert.deepEqual([0, 1, 2, 3, 4, 5, 60, 2000].map((a) => exact.backoff(a)), [10, 20, 40, 80, 80, 80, 80, 80]);
    const low = new Shipper(spool, { address: '127.0.0.1:1', sensor_id: 'x', backoff_initial_ms: 10, backoff_max_ms: 80, random: () => 0 });
    assert.deepEqual([0, 1, 2, 3, 4].map((a) => low.backoff(a)), [5, 10, 20, 40, 40]);
    const jittered = new Shipper(spool, { address: '127.0.0.1:1', sensor_id: 'x', backoff_initial_ms: 10, backoff_max_ms: 80 });
    for (let a = 0; a < 50; a++) {
      const d = jittered.backoff(a);
      const cap = Math.min(80, 10 * 2 ** a);
      assert.ok(d >= cap / 2 && d <= cap, `attempt ${a}: ${d}`);
    }

    // live: against a port nobody listens on
    const port = await freePort();
    const delays: number[] = [];
    const shipper = ship(spool, port, { backoff_initial_ms: 5, backoff_max_ms: 40, random: () => 1, on_backoff: (d) => delays.push(d) });
    await waitFor('7 attempts', () => delays.length >= 7);
    assert.deepEqual(delays.slice(0, 7), [5, 10, 20, 40, 40, 40, 40]);
    assert.ok(shipper.stats().reconnects >= 6);
    assert.equal(shipper.stats().backoff_ms, 40);

    // a collector appears and acknowledges: the next failure waits the initial delay again
    const store = new Store();
    const { server } = await serve(store, port);
    await spool.append(batch(1));
    await waitFor('acknowledged', () => spool.stats().acked_sequence === 1n);
    const seen = delays.length;
    server.forceShutdown();
    await waitFor('the next failure', () => delays.length > seen);
    assert.equal(delays[seen], 5);
  });

  it('stop() lets the collector acknowledge what it was sent', async () => {
    const store = new Store();
    const { server, port } = await serve(store);
    cleanup.push(() => server.forceShutdown());
    const slow = store.ingest.bind(store);
    store.ingest = async function* (requests, context) {
      for await (const r of slow(requests, context)) {
        await sleep(30);
        yield r;
      }
    };
    const spool = await openSpool();
    const shipper = ship(spool, port);
    for (let i = 1; i <= 5; i++) await spool.append(batch(i));
    await waitFor('all sent', () => shipper.stats().sent_batches === 5);
    await shipper.stop();
    assert.equal(spool.stats().acked_sequence, 5n);
    assert.equal(shipper.stats().connected, false);
    assert.equal(shipper.stats().last_error, null);
  });

  it('gives up on a stream whose acks are overdue and replays on a new one', async () => {
    const store = new Store({ ack_up_to: 0n });
    const { server, port } = await serve(store);
    cleanup.push(() => server.forceShutdown());
    const spool = await openSpool();
    await spool.append(batch(1));
    await spool.append(batch(2));
    const shipper = ship(spool, port, { ack_timeout_ms: 100 });
    await waitFor('an overdue ack', () => (shipper.stats().last_error ?? '').includes('DEADLINE_EXCEEDED'));
    store.options.ack_up_to = undefined;
    await waitFor('acknowledged on a later stream', () => spool.stats().acked_sequence === 2n);
    assert.deepEqual(store.sequences(), [1n, 2n]);
    assert.ok(shipper.stats().reconnects >= 1);
    assert.deepEqual(store.received.slice(0, 2), [1n, 2n]);
  });

  it('keeps no more than max_in_flight batches outstanding', async () => {
    const store = new Store({ ack_up_to: 0n });
    const { server, port } = await serve(store);
    cleanup.push(() => server.forceShutdown());
    const spool = await openSpool();
    for (let i = 1; i <= 10; i++) await spool.append(batch(i));
    const shipper = ship(spool, port, { max_in_flight: 4 });
    await waitFor('4 sent', () => store.received.length === 4);
    await sleep(100);
    assert.equal(store.received.length, 4);
    assert.equal(shipper.stats().sent_batches, 4);
  });
});
