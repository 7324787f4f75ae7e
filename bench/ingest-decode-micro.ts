// Micro-benchmark (not part of npm run bench): the collector's per-batch CPU from request bytes to
// COPY payloads, protobuf-es path (fromBinary + validateBatch + storeBatch's rows) against the
// fast decoder (collector/src/store/ingest-rows.ts), on the ingest bench's summaries.
//   node --import tsx bench/ingest-decode-micro.ts [summaries] [rounds]
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { IngestRequestSchema } from '../proto/src/gen/wiretime/v1/ingest_pb.ts';
import { splitIntoBatches } from '../sensor/src/ship/batches.ts';
import { validateBatch } from '../collector/src/validate-batch.ts';
import { IngestRowsDecoder, patchIds } from '../collector/src/store/ingest-rows.ts';
import { referenceRows } from '../collector/src/store/summary-store.ts';
import { summaryStream } from './ingest.ts';

const n = Number(process.argv[2] ?? 5000), rounds = Number(process.argv[3] ?? 5);
const batches = splitIntoBatches([...summaryStream(n)]).map((summaries, i) =>
  Buffer.from(toBinary(IngestRequestSchema, create(IngestRequestSchema, { sensorId: 'bench', streamId: 'stream-1', sequence: BigInt(i + 1), summaries }))));
const id = () => 7n;
const decoder = new IngestRowsDecoder();
for (let r = 0; r < rounds; r++) {
  let t = process.hrtime.bigint();
  for (const b of process.env['FAST_ONLY'] ? [] : batches) {
    const req = fromBinary(IngestRequestSchema, b);
    if (validateBatch(req) !== null) throw new Error('invalid');
    referenceRows(req, id, id);
  }
  const slow = Number(process.hrtime.bigint() - t) / 1e3 / n;
  t = process.hrtime.bigint();
  for (const b of batches) {
    const rows = decoder.decode(decoder.readHead(b)!);
    if (rows === null) throw new Error('declined');
    patchIds(rows, id, id);
    rows.release();
  }
  const fast = Number(process.hrtime.bigint() - t) / 1e3 / n;
  console.log(`round ${r + 1}: protobuf-es path ${slow.toFixed(1)} µs/summary, fast decoder ${fast.toFixed(1)} µs/summary`);
}
