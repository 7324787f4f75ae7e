/**
 * The protobuf-es → nice-grpc bridge against a real gRPC server on a loopback port, and
 * the generated code checked fresh against the .proto files.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChannel, createClient, createServer, ServerError, Status } from 'nice-grpc';
import { IngestService, type IngestRequest } from './gen/wiretime/v1/ingest_pb.ts';
import { niceService } from './nice-grpc.ts';

const PROTO = join(import.meta.dirname, '..');
const BIN = join(PROTO, '..', 'node_modules', '.bin');
const server = createServer();
let port = 0;
/** What the server was sent, batch by batch. */
const seen: { sensor: string; sequence: bigint; summaries: number; first_signature: string }[] = [];

before(async () => {
  server.add(niceService(IngestService), {
    async *ingest(requests: AsyncIterable<IngestRequest>) {
      for await (const batch of requests) {
        if (batch.sensorId === '') throw new ServerError(Status.INVALID_ARGUMENT, 'sensor_id: empty');
        seen.push({ sensor: batch.sensorId, sequence: batch.sequence, summaries: batch.summaries.length, first_signature: batch.summaries[0]?.signature ?? '' });
        yield { ackedSequence: batch.sequence };
      }
    },
  });
  port = await server.listen('127.0.0.1:0');
});
after(() => server.shutdown());

test('a client stream of batches is acknowledged batch by batch by a real server on a loopback port', async () => {
  const definition = niceService(IngestService);
  assert.equal(definition.ingest.path, '/wiretime.v1.IngestService/Ingest');
  assert.equal(definition.ingest.requestStream, true);
  assert.equal(definition.ingest.responseStream, true);

  const channel = createChannel(`127.0.0.1:${port}`);
  const client = createClient(definition, channel);
  async function* batches() {
    for (let i = 1n; i <= 3n; i++) {
      yield {
        sensorId: 'farm-a',
        sequence: i,
        summaries: [{ intervalStartS: 1_767_225_600n, intervalS: 300, server: '10.2.0.1', serverPort: 80, transport: 'tcp', protocol: 'http', signature: `GET_${i}`, count: 2n,
          metrics: [{ name: 'ttfr_ns', count: 2n, sum: 30e6, min: 10e6, max: 20e6 }] }],
      };
    }
  }
  const acks: bigint[] = [];
  for await (const ack of client.ingest(batches())) acks.push(ack.ackedSequence);
  channel.close();
  assert.deepEqual(acks, [1n, 2n, 3n]);
  assert.deepEqual(seen, [
    { sensor: 'farm-a', sequence: 1n, summaries: 1, first_signature: 'GET_1' },
    { sensor: 'farm-a', sequence: 2n, summaries: 1, first_signature: 'GET_2' },
    { sensor: 'farm-a', sequence: 3n, summaries: 1, first_signature: 'GET_3' },
  ]);
});

test('a server error reaches the client with its status and message', async () => {
  const channel = createChannel(`127.0.0.1:${port}`);
  const client = createClient(niceService(IngestService), channel);
  async function* one() { yield { sensorId: '', sequence: 1n }; }
  await assert.rejects(async () => { for await (const _ of client.ingest(one())) { /* none */ } }, (err: unknown) => {
    assert.ok(err instanceof Error);
    assert.match(err.message, /INVALID_ARGUMENT/);
    assert.match(err.message, /sensor_id: empty/);
    return true;
  });
  channel.close();
});

test('buf lint is clean and buf generate reproduces the committed code', () => {
  execFileSync(join(BIN, 'buf'), ['lint'], { cwd: PROTO });
  const out = mkdtempSync(join(tmpdir(), 'wiretime-gen-'));
  try {
    execFileSync(join(BIN, 'buf'), ['generate', '--template', JSON.stringify({
      version: 'v2', plugins: [{ local: join(BIN, 'protoc-gen-es'), out, opt: ['target=ts', 'import_extension=ts'] }],
    })], { cwd: PROTO });
    const dir = 'wiretime/v1';
    const files = readdirSync(join(out, dir)).sort();
    assert.deepEqual(files, readdirSync(join(PROTO, 'src/gen', dir)).sort());
    for (const f of files) {
      assert.equal(readFileSync(join(out, dir, f), 'utf8'), readFileSync(join(PROTO, 'src/gen', dir, f), 'utf8'), `${dir}/${f} is stale: run npm run generate`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('nice-grpc hands message bytes to grpc-js and back without copying them (patches-grpc)', async () => {
  // A batch is megabytes: nice-grpc 2.1.18 copied every message once on each side
  // (Buffer.from), which patches-grpc/nice-grpc+2.1.18.patch removes. Bytes that are already
  // a Buffer pass as they are; any other Uint8Array becomes a Buffer over the same memory.
  const path = 'nice-grpc/lib/service-definitions/index.js';
  const defs = (await import(path)) as {
    normalizeServiceDefinition(d: object): Record<string, object>;
    toGrpcJsMethodDefinition(d: object): { requestSerialize(v: unknown): Buffer; requestDeserialize(b: Buffer): unknown; responseSerialize(v: unknown): Buffer };
  };
  let received: unknown = null;
  const method = {
    path: '/wiretime.test.Raw/Send', requestStream: true, responseStream: false, options: {},
    requestSerialize: (v: Uint8Array) => v, requestDeserialize: (b: Uint8Array) => (received = b),
    responseSerialize: (v: Uint8Array) => v, responseDeserialize: (b: Uint8Array) => b,
  };
  const grpc = defs.toGrpcJsMethodDefinition(defs.normalizeServiceDefinition({ send: method })['send']!);
  const plain = new Uint8Array(new ArrayBuffer(64), 8, 16).fill(7);
  const sent = grpc.requestSerialize(plain);
  assert.ok(Buffer.isBuffer(sent));
  assert.equal(sent.buffer, plain.buffer, 'a Uint8Array is viewed, not copied');
  assert.equal(sent.byteOffset, 8);
  assert.equal(sent.length, 16);
  const buffer = Buffer.from('a message as grpc-js hands it over');
  assert.equal(grpc.requestSerialize(buffer), buffer, 'a Buffer passes as it is');
  grpc.requestDeserialize(buffer);
  assert.equal(received, buffer, 'the service sees the very Buffer grpc-js decoded');
});
