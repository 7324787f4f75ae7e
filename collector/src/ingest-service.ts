import { ServerError, Status, type CallContext } from 'nice-grpc';
import type { IngestRequest } from '../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { IngestResponseSchema } from '../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import { validateBatch } from './validate-batch.ts';

/** Set by the collector's server interceptor from a verified client certificate (collector-server.ts). */
export const CLIENT_CERT_CN_KEY = 'wiretime-verified-client-cn';

/** What the ingest service needs of storage (collector/src/store/summary-store.ts). */
export interface BatchStore {
  storeBatch(batch: IngestRequest): Promise<'stored' | 'duplicate'>;
}

/** Token → the one sensor id it may write as. */
export type SensorTokens = ReadonlyMap<string, string>;

/** How calls are authenticated and bounded. */
export interface IngestPolicy {
  /** token → sensor; null: no token needed */
  tokens: SensorTokens | null;
  /** a verified client certificate is required, and its CN is the sensor (collector-server.ts) */
  require_client_cert: boolean;
  /** storing one batch may take this long before the stream ends with UNAVAILABLE */
  store_timeout_ms: number;
  /** batches of one stream being stored at once (each its own transaction); 1 = one after another */
  batches_in_flight: number;
}

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
export function ingestService(store: BatchStore, policy: IngestPolicy, counters: IngestCounters,
  log: (event: string, fields: Record<string, unknown>) => void) {
  return {
    async *ingest(requests: AsyncIterable<IngestRequest>, context: CallContext): AsyncIterable<MessageInitShape<typeof IngestResponseSchema>> {
      const allowed = authenticate(context, policy);
      if (typeof allowed === 'object' && allowed !== null) {
        counters.unauthenticated++;
        log('unauthenticated', { peer: context.peer, reason: allowed.refused });
        throw new ServerError(Status.UNAUTHENTICATED, allowed.refused);
      }
      // Batches are stored up to `policy.batches_in_flight` at a time (each in its own
      // transaction, on its own connection), so that decoding and validating the next batch,
      // and the database's work on two of them, overlap; acks still go out in sequence order,
      // each as soon as its batch and every one before it are stored. A batch stored out of
      // order is harmless: if one before it fails, the stream ends unacknowledged from there,
      // and the replay of the later one is a duplicate, acknowledged without being stored again.
      const it = requests[Symbol.asyncIterator]();
      let next: Promise<IteratorResult<IngestRequest>> | null = it.next();
      next.catch(() => undefined);
      const inflight: { batch: IngestRequest; done: Promise<'stored' | 'duplicate'> }[] = [];
      const settled = async (f: (typeof inflight)[number]): Promise<MessageInitShape<typeof IngestResponseSchema>> => {
        let result: 'stored' | 'duplicate';
        try {
          result = await f.done;
        } catch (err) {
          counters.store_unavailable++;
          log('store_unavailable', { sensor_id: f.batch.sensorId, sequence: String(f.batch.sequence), error: (err as Error).message });
          throw new ServerError(Status.UNAVAILABLE, `storage is unavailable (${(err as Error).message}); batch ${f.batch.sequence} was not stored, send it again`);
        }
        if (result === 'stored') {
          counters.batches_stored++;
          counters.summaries_stored += f.batch.summaries.length;
        } else counters.batches_duplicate++;
        return { ackedSequence: f.batch.sequence };
      };
      const NEVER = new Promise<never>(() => undefined);
      while (next !== null || inflight.length > 0) {
        const head = inflight[0];
        const event = await Promise.race([
          next !== null && inflight.length < policy.batches_in_flight ? next.then((r) => ({ message: r })) : NEVER,
          head !== undefined ? head.done.then(() => ({ stored: true }), () => ({ stored: true })) : NEVER,
        ]);
        if ('stored' in event) {
          yield await settled(inflight.shift()!);
          continue;
        }
        if (event.message.done === true) {
          next = null;
          continue;
        }
        const batch = event.message.value;
        next = it.next();
        next.catch(() => undefined);
        let refusal: ServerError | null = null;
        if (allowed !== null && batch.sensorId !== allowed) {
          counters.unauthenticated++;
          log('wrong_sensor', { peer: context.peer, sensor_id: batch.sensorId });
          refusal = new ServerError(Status.PERMISSION_DENIED, `these credentials write as sensor "${allowed}", not "${batch.sensorId}"`);
        } else {
          const problem = validateBatch(batch);
          if (problem !== null) {
            counters.batches_invalid++;
            log('invalid_batch', { sensor_id: batch.sensorId, sequence: String(batch.sequence), problem });
            refusal = new ServerError(Status.INVALID_ARGUMENT, `batch ${batch.sequence}: ${problem}`);
          }
        }
        if (refusal !== null) {
          // the batches before it are still acknowledged once stored
          while (inflight.length > 0) yield await settled(inflight.shift()!);
          throw refusal;
        }
        const done = storeWithDeadline(store, batch, policy.store_timeout_ms);
        done.catch(() => undefined); // handled when its turn comes
        inflight.push({ batch, done });
      }
    },
  };
}

/**
 * A database that hangs (a lock, a network partition without a reset) must not hold the
 * sensor's stream forever: past the deadline the stream ends and the sensor replays. If the
 * transaction commits after all, the replay is a duplicate, acknowledged.
 */
async function storeWithDeadline(store: BatchStore, batch: IngestRequest, timeout_ms: number): Promise<'stored' | 'duplicate'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      store.storeBatch(batch),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not stored within ${timeout_ms} ms`)), timeout_ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The sensor id the call may write as, from its token and/or its verified client
 * certificate; null: any (neither configured); { refused }: not authenticated, and why.
 */
function authenticate(context: CallContext, policy: IngestPolicy): string | null | { refused: string } {
  let by_token: string | null = null;
  if (policy.tokens !== null) {
    const m = /^Bearer (.+)$/.exec(context.metadata.get('authorization') ?? '');
    const sensor = m === null ? undefined : policy.tokens.get(m[1]!);
    if (sensor === undefined) return { refused: 'missing or unknown bearer token (metadata "authorization: Bearer <token>")' };
    by_token = sensor;
  }
  let by_cert: string | null = null;
  if (policy.require_client_cert) {
    by_cert = context.metadata.get(CLIENT_CERT_CN_KEY) ?? null;
    // grpc-js refuses the TLS handshake without a certificate from the client CA; a
    // certificate with no subject CN names no sensor.
    if (by_cert === null) return { refused: 'the client certificate has no subject CN naming the sensor' };
  }
  if (by_token !== null && by_cert !== null && by_token !== by_cert) {
    return { refused: `the token is sensor "${by_token}"'s, the client certificate is "${by_cert}"'s` };
  }
  return by_token ?? by_cert;
}
