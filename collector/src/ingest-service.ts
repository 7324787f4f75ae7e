import { ServerError, Status, type CallContext } from 'nice-grpc';
import type { IngestRequest } from '../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { IngestResponseSchema } from '../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import { validateBatch } from './validate-batch.ts';

/** What the ingest service needs of storage (collector/src/store/summary-store.ts). */
export interface BatchStore {
  storeBatch(batch: IngestRequest): Promise<'stored' | 'duplicate'>;
}

/** Token → the one sensor id it may write as. */
export type SensorTokens = ReadonlyMap<string, string>;

export interface IngestCounters {
  batches_stored: number;
  batches_duplicate: number;
  batches_invalid: number;
  summaries_stored: number;
  unauthenticated: number;
  store_unavailable: number;
}

/**
 * The collector's side of `IngestService.Ingest`: each batch is authenticated (the
 * bearer token in the call's metadata names the only sensor it may write as), validated
 * field by field, stored in one transaction, and only then acknowledged. A replayed batch
 * is acknowledged without being stored twice. A storage failure ends the stream with
 * UNAVAILABLE before any ack: the sensor keeps the batch in its spool and comes back.
 */
export function ingestService(store: BatchStore, tokens: SensorTokens | null, counters: IngestCounters,
  log: (event: string, fields: Record<string, unknown>) => void) {
  return {
    async *ingest(requests: AsyncIterable<IngestRequest>, context: CallContext): AsyncIterable<MessageInitShape<typeof IngestResponseSchema>> {
      const allowed = authenticate(context, tokens);
      if (allowed === undefined) {
        counters.unauthenticated++;
        log('unauthenticated', { peer: context.peer });
        throw new ServerError(Status.UNAUTHENTICATED, 'missing or unknown bearer token (metadata "authorization: Bearer <token>")');
      }
      for await (const batch of requests) {
        if (allowed !== null && batch.sensorId !== allowed) {
          counters.unauthenticated++;
          log('wrong_sensor', { peer: context.peer, sensor_id: batch.sensorId });
          throw new ServerError(Status.PERMISSION_DENIED, `this token writes as sensor "${allowed}", not "${batch.sensorId}"`);
        }
        const problem = validateBatch(batch);
        if (problem !== null) {
          counters.batches_invalid++;
          log('invalid_batch', { sensor_id: batch.sensorId, sequence: String(batch.sequence), problem });
          throw new ServerError(Status.INVALID_ARGUMENT, `batch ${batch.sequence}: ${problem}`);
        }
        let result: 'stored' | 'duplicate';
        try {
          result = await store.storeBatch(batch);
        } catch (err) {
          counters.store_unavailable++;
          log('store_unavailable', { sensor_id: batch.sensorId, sequence: String(batch.sequence), error: (err as Error).message });
          throw new ServerError(Status.UNAVAILABLE, `storage is unavailable (${(err as Error).message}); the batch was not stored, send it again`);
        }
        if (result === 'stored') {
          counters.batches_stored++;
          counters.summaries_stored += batch.summaries.length;
        } else counters.batches_duplicate++;
        yield { ackedSequence: batch.sequence };
      }
    },
  };
}

/** The sensor id the call may write as; null: any (no tokens configured); undefined: refused. */
function authenticate(context: CallContext, tokens: SensorTokens | null): string | null | undefined {
  if (tokens === null) return null;
  const header = context.metadata.get('authorization') ?? '';
  const m = /^Bearer (.+)$/.exec(header);
  if (m === null) return undefined;
  return tokens.get(m[1]!);
}
