import { Metadata as GrpcMetadata, ServerCredentials, ServerInterceptingCall, type ServerInterceptor } from '@grpc/grpc-js';
import { createServer } from 'nice-grpc';
import { HealthDefinition, HealthServiceImpl, HealthState } from 'nice-grpc-server-health';
import { ServerReflection, ServerReflectionService } from 'nice-grpc-server-reflection';
import { create, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { file_wiretime_v1_summary } from '../../proto/src/gen/wiretime/v1/summary_pb.ts';
import { file_wiretime_v1_ingest } from '../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import { IngestService } from '../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import { CLIENT_CERT_CN_KEY, RAW_INGEST_SERVICE, ingestService, type BatchStore, type IngestCounters, type SensorTokens } from './ingest-service.ts';

export interface CollectorOptions {
  /** host:port to listen on; port 0 picks a free one */
  listen: string;
  /** token → sensor id; null accepts any sensor (a closed network only) */
  tokens: SensorTokens | null;
  /** largest message accepted, bytes */
  max_message_bytes: number;
  /** TLS; null listens in plaintext (a closed network only) */
  tls: CollectorTls | null;
  /** a batch not stored within this ends the stream with UNAVAILABLE (the sensor sends it again) */
  store_timeout_ms: number;
  /** HTTP/2 pings to each sensor's connection this often; one unanswered for 20 s closes it */
  keepalive_ms: number;
  /**
   * batches of one stream stored at once, each in its own transaction (ingest-service.ts).
   * With 4 MiB batches, 3 shipped 2 700–2 960 summaries/s on the ingest bench where 2 shipped
   * 2 270–2 680 (same window, alternating; 2 cores), the database's and the collector's work
   * on the batches overlapping more.
   */
  batches_in_flight: number;
}

/** PEM material of the collector's TLS listener. */
export interface CollectorTls {
  cert_chain: Buffer;
  private_key: Buffer;
  /**
   * CA certificates that sign sensors' client certificates. When set, every connection must
   * present one (mutual TLS), and its subject CN is the only sensor id the connection may
   * write as; with tokens as well, token and certificate must name the same sensor.
   */
  client_ca: Buffer | null;
}

export const DEFAULT_COLLECTOR_OPTIONS: CollectorOptions = {
  listen: '127.0.0.1:7070',
  tokens: null,
  max_message_bytes: 16 * 1024 * 1024,
  tls: null,
  store_timeout_ms: 30_000,
  keepalive_ms: 60_000,
  batches_in_flight: 3,
};

/**
 * nice-grpc's CallContext does not carry the TLS auth context, so this grpc-js server
 * interceptor copies a verified client certificate's subject CN into the call's metadata
 * under CLIENT_CERT_CN_KEY, after deleting whatever a client may have sent under that key:
 * a client cannot claim an identity this way.
 */
const clientCertInterceptor: ServerInterceptor = (_method, call) => new ServerInterceptingCall(call, {
  start(next) {
    next({
      onReceiveMetadata(metadata: GrpcMetadata, pass: (m: GrpcMetadata) => void) {
        metadata.remove(CLIENT_CERT_CN_KEY);
        const cn = call.getAuthContext().sslPeerCertificate?.subject?.CN;
        // tls.PeerCertificate types CN as string; a certificate with several CNs gives an array
        if (typeof cn === 'string' && cn !== '') metadata.set(CLIENT_CERT_CN_KEY, cn);
        pass(metadata);
      },
    });
  },
});

export interface RunningCollector {
  /** the port actually bound */
  readonly port: number;
  readonly counters: IngestCounters;
  /** stops accepting calls and waits for the ones in flight (graceful drain) */
  close(): Promise<void>;
}

/** Starts the ingest gRPC server over a store. The store's lifetime is the caller's. */
export async function startCollector(store: BatchStore, options: Partial<CollectorOptions>,
  log: (event: string, fields: Record<string, unknown>) => void = () => undefined): Promise<RunningCollector> {
  const o = { ...DEFAULT_COLLECTOR_OPTIONS, ...options };
  const counters: IngestCounters = { batches_stored: 0, batches_duplicate: 0, batches_invalid: 0, summaries_stored: 0, unauthenticated: 0, store_unavailable: 0 };
  // nice-grpc hands its options to grpc-js's Server, which takes `interceptors` beside the channel options.
  const server = createServer({
    'grpc.max_receive_message_length': o.max_message_bytes,
    'grpc.max_send_message_length': o.max_message_bytes,
    'grpc.keepalive_time_ms': o.keepalive_ms,
    'grpc.keepalive_timeout_ms': 20_000,
    interceptors: [clientCertInterceptor],
  } as Parameters<typeof createServer>[0]);
  const require_cert = o.tls !== null && o.tls.client_ca !== null;
  server.add(RAW_INGEST_SERVICE, ingestService(store, { tokens: o.tokens, require_client_cert: require_cert, store_timeout_ms: o.store_timeout_ms, batches_in_flight: o.batches_in_flight }, counters, log));
  // Server reflection, so that grpcurl can list and call the service without the .proto files.
  const protoset = toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: [file_wiretime_v1_summary.proto, file_wiretime_v1_ingest.proto] }));
  server.add(ServerReflectionService, ServerReflection(protoset, [IngestService.typeName]));
  // grpc.health.v1: load balancers and `grpc_health_probe` see SERVING until the drain starts.
  const health = HealthState();
  server.add(HealthDefinition, HealthServiceImpl(health));
  const credentials = o.tls === null
    ? ServerCredentials.createInsecure()
    : ServerCredentials.createSsl(o.tls.client_ca, [{ cert_chain: o.tls.cert_chain, private_key: o.tls.private_key }], require_cert);
  const port = await server.listen(o.listen, credentials);
  health.setStatus('healthy');
  health.setStatus('healthy', IngestService.typeName);
  log('listening', { address: o.listen, port, tls: o.tls === null ? 'off' : require_cert ? 'mutual' : 'server' });
  return {
    port,
    counters,
    close: async () => {
      health.setStatus('unhealthy');
      health.setStatus('unhealthy', IngestService.typeName);
      await server.shutdown();
    },
  };
}

/**
 * A tokens file: one sensor a line, "SENSOR_ID TOKEN", `#` comments. Refused with the
 * line number when a line is malformed or a token is given twice.
 */
export function parseTokens(text: string, file: string): Map<string, string> {
  const tokens = new Map<string, string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const parts = line.split(/\s+/);
    if (parts.length !== 2) throw new Error(`${file}:${i + 1}: expected "SENSOR_ID TOKEN"`);
    const [sensor, token] = parts as [string, string];
    if (token.length < 16) throw new Error(`${file}:${i + 1}: token for ${sensor} is shorter than 16 characters`);
    if (tokens.has(token)) throw new Error(`${file}:${i + 1}: token given twice`);
    tokens.set(token, sensor);
  });
  return tokens;
}
