import { ServerCredentials } from '@grpc/grpc-js';
import { createServer, ServerError, Status, type CallContext, type ServerMiddlewareCall } from 'nice-grpc';
import { HealthDefinition, HealthServiceImpl, HealthState } from 'nice-grpc-server-health';
import { ServerReflection, ServerReflectionService } from 'nice-grpc-server-reflection';
import { create, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { file_wiretime_v1_report, ReportService } from '../../proto/src/gen/wiretime/v1/report_pb.ts';
import { niceService } from '../../proto/src/nice-grpc.ts';
import { QueryService, type QueryLimits } from './query-service.ts';
import type { ReportStore } from './store/report-store.ts';

/** Token → the name of the client that presents it (a tokens file: "NAME TOKEN" per line). */
export type ClientTokens = ReadonlyMap<string, string>;

export interface ReporterOptions {
  /** the database to answer from; its lifetime is the caller's */
  store: ReportStore;
  /** host:port to listen on; port 0 picks a free one */
  listen: string;
  /** token → client name; null answers every caller (a closed network only) */
  tokens: ClientTokens | null;
  /** largest message received or sent, bytes */
  max_message_bytes: number;
  /** bounds on windows, points and rows */
  limits?: Partial<QueryLimits>;
  /** TLS (PEM certificate chain and key); null listens in plaintext (a closed network only) */
  tls?: { cert_chain: Buffer; private_key: Buffer } | null;
}

export const DEFAULT_REPORTER_LISTEN = '127.0.0.1:7071';

export interface RunningReporter {
  /** the port actually bound */
  readonly port: number;
  /** the query service the server answers with (also callable in-process) */
  readonly service: QueryService;
  /** stops accepting calls and waits for the ones in flight */
  close(): Promise<void>;
}

/** A status for an error that is not a ServerError: database time-outs, lost connections, bugs. */
export function statusOf(err: unknown): ServerError {
  if (err instanceof ServerError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const code = typeof e?.code === 'string' ? e.code : '';
  // SQLSTATE 57014 query_canceled: statement_timeout
  if (code === '57014') return new ServerError(Status.DEADLINE_EXCEEDED, `the query took longer than the reporter allows (${message}); narrow the window or the filter`);
  // class 08 connection exceptions, 57P operator intervention, 53 insufficient resources; pg's own connection errors
  if (/^(08|57P|53)/.test(code) || /ECONNREFUSED|ECONNRESET|Connection terminated|timeout exceeded when trying to connect/i.test(message)) {
    return new ServerError(Status.UNAVAILABLE, `database unavailable: ${message}`);
  }
  return new ServerError(Status.INTERNAL, `query failed: ${message}`);
}

/**
 * Starts the reporter's gRPC server: ReportService (behind bearer-token authentication when
 * tokens are given), grpc.health.v1 and server reflection (both open, so that probes and
 * grpcurl work). Every database error becomes a gRPC status (statusOf).
 */
export async function startReporter(options: Partial<ReporterOptions> & { store: ReportStore },
  log: (event: string, fields: Record<string, unknown>) => void = () => undefined): Promise<RunningReporter> {
  const o = { listen: DEFAULT_REPORTER_LISTEN, tokens: null, max_message_bytes: 16 * 1024 * 1024, ...options };
  const service = new QueryService(o.store, o.limits);
  const tokens = o.tokens;
  const server = createServer({
    'grpc.max_receive_message_length': o.max_message_bytes,
    'grpc.max_send_message_length': o.max_message_bytes,
  });

  async function* guard<Req, Res>(call: ServerMiddlewareCall<Req, Res>, context: CallContext) {
    if (tokens !== null) {
      const m = /^Bearer (.+)$/.exec(context.metadata.get('authorization') ?? '');
      if (m === null || !tokens.has(m[1]!)) {
        log('unauthenticated', { peer: context.peer, method: call.method.path });
        throw new ServerError(Status.UNAUTHENTICATED, 'missing or unknown bearer token (metadata "authorization: Bearer <token>")');
      }
    }
    try {
      return yield* call.next(call.request, context);
    } catch (err) {
      const s = statusOf(err);
      if (s.code !== Status.INVALID_ARGUMENT && s.code !== Status.CANCELLED) log('query_failed', { method: call.method.path, code: Status[s.code], error: s.details });
      throw s;
    }
  }

  server.with(guard).add(niceService(ReportService), {
    listSensors: (req) => service.listSensors(req),
    listServers: (req) => service.listServers(req),
    listProtocols: (req) => service.listProtocols(req),
    listSignatures: (req) => service.listSignatures(req),
    getSeries: (req, context) => service.getSeries(req, context.signal),
    getTop: (req, context) => service.getTop(req, context.signal),
    compare: (req, context) => service.compare(req, context.signal),
  });
  // Server reflection: grpcurl lists and calls the service without the .proto files.
  const protoset = toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: [file_wiretime_v1_report.proto] }));
  server.add(ServerReflectionService, ServerReflection(protoset, [ReportService.typeName]));
  const health = HealthState();
  server.add(HealthDefinition, HealthServiceImpl(health));
  const credentials = o.tls ? ServerCredentials.createSsl(null, [{ cert_chain: o.tls.cert_chain, private_key: o.tls.private_key }], false) : ServerCredentials.createInsecure();
  const port = await server.listen(o.listen, credentials);
  health.setStatus('healthy');
  health.setStatus('healthy', ReportService.typeName);
  log('listening', { address: o.listen, port });
  return {
    port,
    service,
    close: async () => {
      health.setStatus('unhealthy');
      health.setStatus('unhealthy', ReportService.typeName);
      await server.shutdown();
    },
  };
}
