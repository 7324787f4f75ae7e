/**
 * TLS and mutual TLS between sensors and the collector, with certificates made by
 * deploy/certs/make-certs.sh (openssl), a real gRPC server on a loopback port, and the
 * sensor's own Shipper and Spool. What a sensor may write is decided by its certificate.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { ChannelCredentials, createChannel, createClient, Metadata } from 'nice-grpc';
import { IngestService, type IngestRequest } from '../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import { SummarySchema } from '../../proto/src/gen/wiretime/v1/summary_pb.ts';
import { niceService } from '../../proto/src/nice-grpc.ts';
import { Shipper } from '../../sensor/src/ship/collector-client.ts';
import { Spool } from '../../sensor/src/ship/spool.ts';
import { startCollector, parseTokens, type RunningCollector } from './collector-server.ts';
import { CLIENT_CERT_CN_KEY, type BatchStore } from './ingest-service.ts';

const ROOT = join(import.meta.dirname, '../..');

class MemoryStore implements BatchStore {
  readonly batches = new Map<string, IngestRequest>();
  async storeBatch(batch: IngestRequest): Promise<'stored' | 'duplicate'> {
    const key = `${batch.sensorId}/${batch.streamId}/${batch.sequence}`;
    if (this.batches.has(key)) return 'duplicate';
    this.batches.set(key, batch);
    return 'stored';
  }
}

const summary = () => create(SummarySchema, {
  intervalStartS: 1_767_225_600n, intervalS: 300, server: '10.2.0.1', serverPort: 443, transport: 'tcp', protocol: 'http', signature: 'GET', count: 1n,
  outcomes: [{ outcome: 'ok', count: 1n }], metrics: [{ name: 'ttfr_ns', count: 1n, sum: 5e6, min: 5e6, max: 5e6 }],
});

let dir = '';
let certs = '';
let other_ca = '';
const pem = (name: string, from = certs) => readFileSync(join(from, name));

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'wiretime-tls-'));
  certs = join(dir, 'pki');
  other_ca = join(dir, 'other-pki');
  execFileSync(join(ROOT, 'deploy/certs/make-certs.sh'), [certs, '127.0.0.1', 'farm-a', 'farm-b']);
  execFileSync(join(ROOT, 'deploy/certs/make-certs.sh'), [other_ca, '127.0.0.1', 'farm-a']); // same names, another CA
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** One batch sent as `sensor_id` over a channel with these credentials; resolves with the acks. */
async function send(port: number, credentials: ChannelCredentials, sensor_id: string, metadata = new Metadata()): Promise<bigint[]> {
  const channel = createChannel(`127.0.0.1:${port}`, credentials);
  const client = createClient(niceService(IngestService), channel);
  async function* one() { yield { sensorId: sensor_id, streamId: 's1', sequence: 1n, summaries: [summary()] }; }
  const acks: bigint[] = [];
  try {
    for await (const a of client.ingest(one(), { metadata, signal: AbortSignal.timeout(5_000) })) acks.push(a.ackedSequence);
  } finally {
    channel.close();
  }
  return acks;
}

const client = (name: string | null, from = certs) => ChannelCredentials.createSsl(pem('ca.crt'), name === null ? null : pem(`${name}.key`, from), name === null ? null : pem(`${name}.crt`, from));

describe('collector with mutual TLS', () => {
  const store = new MemoryStore();
  let collector: RunningCollector;
  before(async () => {
    collector = await startCollector(store, { listen: '127.0.0.1:0', tls: { cert_chain: pem('collector.crt'), private_key: pem('collector.key'), client_ca: pem('ca.crt') } });
  });
  after(() => collector.close());

  test('a sensor writes as the sensor its certificate names', async () => {
    assert.deepEqual(await send(collector.port, client('farm-a'), 'farm-a'), [1n]);
    assert.equal(store.batches.has('farm-a/s1/1'), true);
  });

  test('a certificate cannot write as another sensor, not even by sending the identity header itself', async () => {
    await assert.rejects(send(collector.port, client('farm-a'), 'farm-b'), /PERMISSION_DENIED: these credentials write as sensor "farm-a", not "farm-b"/);
    const spoof = new Metadata();
    spoof.set(CLIENT_CERT_CN_KEY, 'farm-b');
    await assert.rejects(send(collector.port, client('farm-a'), 'farm-b', spoof), /PERMISSION_DENIED/);
    assert.equal(store.batches.has('farm-b/s1/1'), false);
  });

  test('no client certificate, or one from another CA, or plaintext: no connection', async () => {
    await assert.rejects(send(collector.port, client(null), 'farm-a'), /UNAVAILABLE/);
    await assert.rejects(send(collector.port, client('farm-a', other_ca), 'farm-a'), /UNAVAILABLE/);
    await assert.rejects(send(collector.port, ChannelCredentials.createInsecure(), 'farm-a'), /UNAVAILABLE/);
    assert.equal(store.batches.size, 1);
  });

  test("the sensor's shipper delivers its spool over mutual TLS", async () => {
    const spool = await Spool.open({ dir: join(dir, 'spool-b') });
    const shipper = new Shipper(spool, { address: `127.0.0.1:${collector.port}`, sensor_id: 'farm-b', credentials: client('farm-b'), backoff_initial_ms: 50, backoff_max_ms: 200 });
    try {
      shipper.start();
      for (let i = 0; i < 3; i++) await spool.append([summary()]);
      for (let t = 0; t < 200 && spool.stats().acked_sequence < 3n; t++) await new Promise((r) => setTimeout(r, 25));
      assert.equal(spool.stats().acked_sequence, 3n);
      assert.deepEqual([...store.batches.keys()].filter((k) => k.startsWith('farm-b/')), [1, 2, 3].map((n) => `farm-b/${spool.stream_id}/${n}`));
    } finally {
      await shipper.stop();
      await spool.close();
    }
  });
});

describe('collector with mutual TLS and tokens', () => {
  const store = new MemoryStore();
  let collector: RunningCollector;
  const TOKEN_A = 'token-of-farm-a-0123456789';
  before(async () => {
    collector = await startCollector(store, {
      listen: '127.0.0.1:0',
      tokens: parseTokens(`farm-a ${TOKEN_A}\n`, 'tokens'),
      tls: { cert_chain: pem('collector.crt'), private_key: pem('collector.key'), client_ca: pem('ca.crt') },
    });
  });
  after(() => collector.close());

  test('token and certificate must name the same sensor', async () => {
    const m = new Metadata();
    m.set('authorization', `Bearer ${TOKEN_A}`);
    assert.deepEqual(await send(collector.port, client('farm-a'), 'farm-a', m), [1n]);
    await assert.rejects(send(collector.port, client('farm-b'), 'farm-a', m), /UNAUTHENTICATED: the token is sensor "farm-a"'s, the client certificate is "farm-b"'s/);
    await assert.rejects(send(collector.port, client('farm-a'), 'farm-a'), /UNAUTHENTICATED: missing or unknown bearer token/);
  });
});

describe('collector with server TLS only', () => {
  const store = new MemoryStore();
  let collector: RunningCollector;
  before(async () => {
    collector = await startCollector(store, { listen: '127.0.0.1:0', tls: { cert_chain: pem('collector.crt'), private_key: pem('collector.key'), client_ca: null } });
  });
  after(() => collector.close());

  test('a sensor that trusts the CA connects; one that trusts another CA does not', async () => {
    assert.deepEqual(await send(collector.port, ChannelCredentials.createSsl(pem('ca.crt')), 'farm-a'), [1n]);
    await assert.rejects(send(collector.port, ChannelCredentials.createSsl(pem('ca.crt', other_ca)), 'farm-a'), /UNAVAILABLE/);
  });
});
