import { createServer } from 'nice-grpc';
import { HealthDefinition, HealthServiceImpl, HealthState } from 'nice-grpc-server-health';
import { ServerReflection, ServerReflectionService } from 'nice-grpc-server-reflection';
import { create, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { file_wiretime_v1_summary } from '../../proto/src/gen/wiretime/v1/summary_pb.ts';
import { file_wiretime_v1_ingest } from '../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import { IngestService } from '../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import { niceService } from '../../proto/src/nice-grpc.ts';
import { ingestService, type BatchStore, type IngestCounters, type SensorTokens } from './ingest-service.ts';

export interface CollectorOptions {
  /** host:port to listen on; port 0 picks a free one */
  listen: string;
  /** token → sensor id; null accepts any sensor (a closed network only) */
  tokens: SensorTokens | null;
  /** largest message accepted, bytes */
  max_message_bytes: number;
}

export const DEFAULT_COLLECTOR_OPTIONS: CollectorOptions = {
  listen: '127.0.0.1:7070',
  tokens: null,
  max_message_bytes: 16 * 1024 * 1024,
};

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
  const server = createServer({
    'grpc.max_receive_message_length': o.max_message_bytes,
    'grpc.max_send_message_length': o.max_message_bytes,
  });
  server.add(niceService(IngestService), ingestService(store, o.tokens, counters, log));
  // Server reflection, so that grpcurl can list and call the service without the .proto files.
  const protoset = toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: [file_wiretime_v1_summary.proto, file_wiretime_v1_ingest.proto] }));
  server.add(ServerReflectionService, ServerReflection(protoset, [IngestService.typeName]));
  // grpc.health.v1: load balancers and `grpc_health_probe` see SERVING until the drain starts.
  const health = HealthState();
  server.add(HealthDefinition, HealthServiceImpl(health));
  const port = await server.listen(o.listen);
  health.setStatus('healthy');
  health.setStatus('healthy', IngestService.typeName);
  log('listening', { address: o.listen, port });
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
