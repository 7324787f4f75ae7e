/**
 * A batch the collector refuses as invalid (INVALID_ARGUMENT "batch N: …", as the real
 * collector's ingest service words it) must not hold up the batches after it: the shipper
 * sets it aside in the spool's rejected/ folder with the reason, and goes on.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ServerError, Status, createServer } from 'nice-grpc';
import { IngestService, type IngestRequest } from '@wiretime/proto/gen/wiretime/v1/ingest_pb.ts';
import { niceService } from '@wiretime/proto/nice-grpc.ts';
import { Shipper } from './collector-client.ts';
import { Spool } from './spool.ts';

test('an invalid batch is set aside with its reason; the batches after it are delivered', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wiretime-reject-'));
  const stored: bigint[] = [];
  const server = createServer();
  server.add(niceService(IngestService), {
    async *ingest(requests: AsyncIterable<IngestRequest>) {
      for await (const b of requests) {
        if (b.summaries[0]?.signature === 'BAD') throw new ServerError(Status.INVALID_ARGUMENT, `batch ${b.sequence}: summaries[0].server: "x" is not an IP address`);
        if (!stored.includes(b.sequence)) stored.push(b.sequence);
        yield { ackedSequence: b.sequence };
      }
    },
  });
  const port = await server.listen('127.0.0.1:0');
  const spool = await Spool.open({ dir });
  const shipper = new Shipper(spool, { address: `127.0.0.1:${port}`, sensor_id: 's', backoff_initial_ms: 5, backoff_max_ms: 20 });
  const warnings: string[] = [];
  const onWarning = (w: Error) => { warnings.push(w.message); };
  process.on('warning', onWarning);
  try {
    for (const signature of ['GET', 'BAD', 'POST', 'PUT']) {
      await spool.append([{ intervalStartS: 1_767_225_600n, intervalS: 300, server: '10.0.0.1', serverPort: 80, transport: 'tcp', protocol: 'http', signature, count: 1n } as never]);
    }
    shipper.start();
    for (let i = 0; i < 200 && spool.stats().acked_sequence < 4n; i++) await sleep(20);
    await shipper.stop();
    assert.deepEqual(stored, [1n, 3n, 4n]);
    assert.equal(spool.stats().acked_sequence, 4n);
    assert.equal(spool.stats().rejected_batches, 1);
    assert.deepEqual(readdirSync(join(dir, 'rejected')).sort(), ['2.batch', '2.reason']);
    assert.match(readFileSync(join(dir, 'rejected', '2.reason'), 'utf8'), /batch 2: summaries\[0\]\.server/);
    assert.ok(warnings.some((w) => w.includes('refused batch 2')));
  } finally {
    process.off('warning', onWarning);
    await spool.close();
    await server.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
});
