import { ServerError, Status, type CallContext } from 'nice-grpc';
import { fromBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { IngestRequestSchema, IngestService, type IngestRequest, type IngestResponseSchema } from '../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import { niceService } from '../../proto/src/nice-grpc.ts';
import { IngestRowsDecoder, type IngestHead, type IngestRows } from './store/ingest-rows.ts';
import { validateBatch } from './validate-batch.ts';

/** Set by the collector's server interceptor from a verified client certificate (collector-server.ts). */
export const CLIENT_CERT_CN_KEY = 'wiretime-verified-client-cn';

/** What the ingest service needs of storage (collector/src/store/summary-store.ts). */
export interface BatchStore {
  storeBatch(batch: IngestRequest): Promise<'stored' | 'duplicate'>;
  /**
   * When present, batches the fast decoder (store/ingest-rows.ts) could turn into COPY rows
   * come here instead of `storeBatch`, with the same idempotency and the same rows.
   */
  storeRows?(rows: IngestRows): Promise<'stored' | 'duplicate'>;
}

/**
 * IngestService as the collector serves it: requests arrive as their wire bytes, which the
 * service decodes itself (the fast path of store/ingest-rows.ts, else protobuf-es).
 */
const INGEST = niceService(IngestService);
export const RAW_INGEST_SERVICE = {
  ingest: { ...INGEST.ingest, requestDeserialize: (bytes: Uint8Array): Uint8Array => bytes },
} as const;

/** What the service keeps of a batch being stored. */
interface BatchKey { sensorId: string; sequence: bigint; summaryCount: number }

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
  const decoder = store.storeRows !== undefined ? new IngestRowsDecoder() : null;
  return {
    async *ingest(requests: AsyncIterable<Uint8Array>, context: CallContext): AsyncIterable<MessageInitShape<typeof IngestResponseSchema>> {
      const allowed = authenticate(context, policy);
      if (typeof allowed === 'object' && allowed !== null) {
        counters.unauthenticated++;
        log('unauthenticated', { peer: context.peer, reason: allowed.refused });
        throw new ServerError(Status.UNAUTHENTICATED, allowed.refused);
      }
      // Batches are stored up to `policy.batches_in_flight` at a time (each in its own
      // transaction, on its own connection), so that decoding and validating the next batch,
      // and the database's work on two of them, overlap: the next batch is decoded while the
      // stores are busy and waits (`ready`) for one to finish. Acks still go out in sequence order,
      // each as soon as its batch and every one before it are stored. A batch stored out of
      // order is harmless: if one before it fails, the stream ends unacknowledged from there,
      // and the replay of the later one is a duplicate, acknowledged without being stored again.
      const it = requests[Symbol.asyncIterator]();
      let next: Promise<IteratorResult<Uint8Array>> | null = it.next();
      next.catch(() => undefined);
      const inflight: { batch: BatchKey; done: Promise<'stored' | 'duplicate'> }[] = [];
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
          counters.summaries_stored += f.batch.summaryCount;
        } else counters.batches_duplicate++;
        return { ackedSequence: f.batch.sequence };
      };
      const NEVER = new Promise<never>(() => undefined);
      /** a batch decoded and validated, waiting for a store slot */
      let ready: { batch: BatchKey; store: () => Promise<'stored' | 'duplicate'> } | null = null;
      const start = (r: { batch: BatchKey; store: () => Promise<'stored' | 'duplicate'> }) => {
        const done = storeWithDeadline(r.store, policy.store_timeout_ms);
        done.catch(() => undefined); // handled when its turn comes
        inflight.push({ batch: r.batch, done });
      };
      while (next !== null || inflight.length > 0 || ready !== null) {
        if (ready !== null && inflight.length < policy.batches_in_flight) {
          start(ready);
          ready = null;
          continue;
        }
        const first = inflight[0];
        const event: { message: IteratorResult<Uint8Array> } | { stored: boolean } = await Promise.race([
          next !== null && ready === null ? next.then((r) => ({ message: r })) : NEVER,
          first !== undefined ? first.done.then(() => ({ stored: true }), () => ({ stored: true })) : NEVER,
        ]);
        if ('stored' in event) {
          yield await settled(inflight.shift()!);
          continue;
        }
        if (event.message.done === true) {
          next = null;
          continue;
        }
        const bytes: Uint8Array = event.message.value;
        next = it.next();
        next.catch(() => undefined);
        // The fast path reads the top level (sensor, stream, sequence); a request it does not
        // take is decoded by protobuf-es, whose failure ends the call as grpc-js's own
        // deserialization failure did (INTERNAL), before any check of the content.
        const head: IngestHead | null = decoder?.readHead(bytes) ?? null;
        let request: IngestRequest | null = head === null ? deserialize(bytes) : null;
        const batch: BatchKey = head ?? { sensorId: request!.sensorId, sequence: request!.sequence, summaryCount: request!.summaries.length };
        let refusal: ServerError | null = null;
        let rows: IngestRows | null = null;
        if (allowed !== null && batch.sensorId !== allowed) {
          request ??= deserialize(bytes);
          counters.unauthenticated++;
          log('wrong_sensor', { peer: context.peer, sensor_id: batch.sensorId });
          refusal = new ServerError(Status.PERMISSION_DENIED, `these credentials write as sensor "${allowed}", not "${batch.sensorId}"`);
        } else {
          rows = head !== null ? decoder!.decode(head) : null;
          // not taken by the fast path: protobuf-es and validateBatch decide, as they always did
          const problem = rows !== null ? null : validateBatch((request ??= deserialize(bytes)));
          if (problem !== null) {
            counters.batches_invalid++;
            log('invalid_batch', { sensor_id: batch.sensorId, sequence: String(batch.sequence), problem });
            refusal = new ServerError(Status.INVALID_ARGUMENT, `batch ${batch.sequence}: ${problem}`);
          }
        }
        if (refusal !== null) {
          // the batches before it are still acknowledged once stored
          while (inflight.length > 0 || ready !== null) {
            if (ready !== null && inflight.length < policy.batches_in_flight) {
              start(ready);
              ready = null;
            } else {
              yield await settled(inflight.shift()!);
            }
          }
          throw refusal;
        }
        ready = { batch, store: rows !== null ? () => store.storeRows!(rows) : () => store.storeBatch(request!) };
      }
    },
  };
}

/**
 * A database that hangs (a lock, a network partition without a reset) must not hold the
 * sensor's stream forever: past the deadline the stream ends and the sensor replays. If the
 * transaction commits after all, the replay is a duplicate, acknowledged.
 */
async function storeWithDeadline(store: () => Promise<'stored' | 'duplicate'>, timeout_ms: number): Promise<'stored' | 'duplicate'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      store(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not stored within ${timeout_ms} ms`)), timeout_ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * protobuf-es's decoding of a request; a request it cannot decode ends the call with what
 * grpc-js answers when a method's deserializer throws (server-interceptors.js): INTERNAL,
 * with the reason only under GRPC_NODE_DEBUG_SEND_ERROR_DETAILS=true.
 */
function deserialize(bytes: Uint8Array): IngestRequest {
  try {
    return fromBinary(IngestRequestSchema, bytes);
  } catch (err) {
    const details = (process.env['GRPC_NODE_DEBUG_SEND_ERROR_DETAILS'] ?? 'false') === 'true'
      ? `Error deserializing request: ${(err as Error).message}` : 'Error deserializing request';
    throw new ServerError(Status.INTERNAL, details);
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
