import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { toJsonString, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { ChannelCredentials, ClientError, createChannel, createClient, Metadata, Status } from 'nice-grpc';
import {
  CompareResponseSchema, GetSeriesResponseSchema, GetTopResponseSchema, GroupBy, ListProtocolsResponseSchema,
  ListSensorsResponseSchema, ListServersResponseSchema, ListSignaturesResponseSchema, ReportService,
} from '../../../proto/src/gen/wiretime/v1/report_pb.ts';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { FilterSchema } from '../../../proto/src/gen/wiretime/v1/report_pb.ts';
import { niceService } from '../../../proto/src/nice-grpc.ts';
import { DEFAULT_REPORTER_LISTEN } from '../server.ts';
import {
  formatCompare, formatProtocols, formatSensors, formatSeries, formatServers, formatSignatures, formatTop, STATISTIC_BY_NAME,
} from './report-format.ts';

export const REPORT_HELP = `Usage: wiretime report <what> [options]

Asks a running reporter (wiretime reporter) over gRPC and prints a table (--json: the
answer as JSON, for scripts).

What:
  sensors      sensors, when they were last heard from, their last statistics
  servers      servers (address, port, transport)
  protocols    protocols and how many signatures each has
  signatures   signatures (--protocol P, --name-contains TEXT)
  series       a statistic of a metric over time, with a text chart
  top          the slowest signatures or servers over a window
  compare      per signature or server: the statistic before and after (an upgrade)

Connection:
  --reporter HOST:PORT   reporter address (default ${DEFAULT_REPORTER_LISTEN})
  --token-file FILE      file holding the bearer token (first line)
  --tls-ca FILE          connect with TLS, trusting the reporter's certificate if this PEM CA
                         signed it (the host name in --reporter must match the certificate)
  --timeout-ms N         give up (and cancel the call) after N ms (default 30000)
  --json                 print the answer as JSON

Selection (series, top, compare; each optional):
  --protocol P  --signature NAME  --server ADDRESS|CIDR  --port N  --transport tcp|udp

Values (series, top, compare):
  --metric NAME          e.g. ttfr_ns (default), ttlr_ns, rtt_ns, response_bytes
  --stat S               count, avg, min, max, p50, p90, p95 (default), p99

Windows: times are RFC 3339 (2026-01-31T12:00:00Z), seconds since the epoch, "now", or
relative to now: -90m, -6h, -7d.
  --from T --to T        series and top (default: the last 24 hours)
  --resolution D         series: bucket width, e.g. 300, 5m, 1h, 1d (default: the reporter picks)
  --points N             series: at most N points (default 500)
  --no-chart             series: the table only
  --by signature|server  top and compare (default signature)
  --limit N              rows (top: 10, compare: 50, lists: 100 a page)
  --min-count N          top and compare: leave out groups with fewer values
  --before T..T          compare: the first window, e.g. -14d..-7d
  --after T..T           compare: the second window, e.g. -7d..now
  --page-token T         lists: the next page (printed under a full page)
  --protocol P, --name-contains TEXT (signatures), --server, --port, --transport (servers),
  --prefix TEXT (sensors)
`;

/** A time argument: RFC 3339, epoch seconds, "now", or "-N(s|m|h|d)" before now. Whole seconds. */
export function parseTime(text: string, now_s: number, what: string): number {
  if (text === 'now') return now_s;
  let m = /^-(\d+)(s|m|h|d|w)$/.exec(text);
  if (m) return now_s - Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[m[2] as 's']!;
  if (/^\d{9,11}$/.test(text)) return Number(text);
  m = /^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?)?$/.exec(text);
  const ms = m ? Date.parse(m[1] === undefined ? `${text}T00:00:00Z` : m[4] === undefined ? `${text.replace(' ', 'T')}Z` : text.replace(' ', 'T')) : NaN;
  if (!Number.isFinite(ms)) throw new Error(`${what}: ${JSON.stringify(text)} is not a time (2026-01-31T12:00:00Z, epoch seconds, now, -6h, -7d)`);
  return Math.floor(ms / 1000);
}

/** A duration argument: seconds, or N followed by s, m, h, d. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+)(s|m|h|d)?$/.exec(text);
  if (!m) throw new Error(`${what}: ${JSON.stringify(text)} is not a duration (300, 5m, 1h, 1d)`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[(m[2] ?? 's') as 's']!;
}

function parseRange(text: string, now_s: number, what: string): { startS: bigint; endS: bigint } {
  const i = text.indexOf('..');
  if (i < 0) throw new Error(`${what}: ${JSON.stringify(text)} is not FROM..TO (e.g. -14d..-7d)`);
  return { startS: BigInt(parseTime(text.slice(0, i), now_s, what)), endS: BigInt(parseTime(text.slice(i + 2), now_s, what)) };
}

function parseCount(text: string | undefined, what: string): number {
  if (text === undefined) return 0;
  if (!/^\d{1,9}$/.test(text)) throw new Error(`${what}: ${JSON.stringify(text)} is not a whole number`);
  return Number(text);
}

const OPTIONS = {
  reporter: { type: 'string' },
  'token-file': { type: 'string' },
  'tls-ca': { type: 'string' },
  'timeout-ms': { type: 'string' },
  json: { type: 'boolean' },
  protocol: { type: 'string' },
  signature: { type: 'string' },
  server: { type: 'string' },
  port: { type: 'string' },
  transport: { type: 'string' },
  metric: { type: 'string' },
  stat: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  resolution: { type: 'string' },
  points: { type: 'string' },
  'no-chart': { type: 'boolean' },
  by: { type: 'string' },
  limit: { type: 'string' },
  'min-count': { type: 'string' },
  before: { type: 'string' },
  after: { type: 'string' },
  'page-token': { type: 'string' },
  'name-contains': { type: 'string' },
  prefix: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const WHAT = ['sensors', 'servers', 'protocols', 'signatures', 'series', 'top', 'compare'] as const;

/** `wiretime report …`: one call to the reporter, printed; returns the exit code. */
export async function reportCommand(argv: string[], out: (text: string) => void = (t) => process.stdout.write(t)): Promise<number> {
  let args;
  try {
    args = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  } catch (err) {
    process.stderr.write(`wiretime report: ${(err as Error).message}\n\n${REPORT_HELP}`);
    return 2;
  }
  const v = args.values;
  if (v.help) {
    out(REPORT_HELP);
    return 0;
  }
  const what = args.positionals[0];
  if (args.positionals.length !== 1 || !WHAT.includes(what as typeof WHAT[number])) {
    process.stderr.write(`wiretime report: say what to report: ${WHAT.join(', ')}\n\n${REPORT_HELP}`);
    return 2;
  }
  let call: (client: ReturnType<typeof createClient<ReturnType<typeof niceService<typeof ReportService.method>>>>) => Promise<string>;
  let token: string | null = null;
  let timeout_ms = 30_000;
  try {
    const now_s = Math.floor(Date.now() / 1000);
    if (v['token-file'] !== undefined) {
      token = readFileSync(v['token-file'], 'utf8').split('\n')[0]!.trim();
      if (token === '') throw new Error(`--token-file: ${v['token-file']} holds no token on its first line`);
    }
    if (v['timeout-ms'] !== undefined) timeout_ms = parseCount(v['timeout-ms'], '--timeout-ms') || 30_000;
    const filter: MessageInitShape<typeof FilterSchema> = {
      protocol: v.protocol ?? '', signature: v.signature ?? '', server: v.server ?? '', transport: v.transport ?? '',
      ...(v.port !== undefined ? { serverPort: parseCount(v.port, '--port') } : {}),
    };
    const metric = v.metric ?? 'ttfr_ns';
    const statName = v.stat ?? 'p95';
    const statistic = STATISTIC_BY_NAME[statName];
    if (statistic === undefined) throw new Error(`--stat: ${JSON.stringify(statName)} is not one of ${Object.keys(STATISTIC_BY_NAME).join(', ')}`);
    const window = () => ({
      startS: BigInt(parseTime(v.from ?? '-24h', now_s, '--from')),
      endS: BigInt(parseTime(v.to ?? 'now', now_s, '--to')),
    });
    const by = v.by === undefined || v.by === 'signature' ? GroupBy.SIGNATURE : v.by === 'server' ? GroupBy.SERVER : null;
    if (by === null) throw new Error(`--by: ${JSON.stringify(v.by)} is not signature or server`);
    const limit = parseCount(v.limit, '--limit');
    const min_count = BigInt(parseCount(v['min-count'], '--min-count'));
    const page_token = v['page-token'] ?? '';
    const show = <D extends DescMessage>(schema: D, msg: MessageShape<D>, text: () => string): string =>
      v.json ? toJsonString(schema, msg, { prettySpaces: 2 }) + '\n' : text();
    switch (what as typeof WHAT[number]) {
      case 'sensors':
        call = async (c) => { const r = await c.listSensors({ sensorIdPrefix: v.prefix ?? '', pageSize: limit, pageToken: page_token }, opts()); return show(ListSensorsResponseSchema, r, () => formatSensors(r)); };
        break;
      case 'servers':
        call = async (c) => {
          const r = await c.listServers({ server: v.server ?? '', transport: v.transport ?? '', pageSize: limit, pageToken: page_token, ...(v.port !== undefined ? { serverPort: parseCount(v.port, '--port') } : {}) }, opts());
          return show(ListServersResponseSchema, r, () => formatServers(r));
        };
        break;
      case 'protocols':
        call = async (c) => { const r = await c.listProtocols({ pageSize: limit, pageToken: page_token }, opts()); return show(ListProtocolsResponseSchema, r, () => formatProtocols(r)); };
        break;
      case 'signatures':
        call = async (c) => {
          const r = await c.listSignatures({ protocol: v.protocol ?? '', nameContains: v['name-contains'] ?? '', pageSize: limit, pageToken: page_token }, opts());
          return show(ListSignaturesResponseSchema, r, () => formatSignatures(r));
        };
        break;
      case 'series': {
        const w = window();
        const resolution = v.resolution === undefined ? 0 : parseDuration(v.resolution, '--resolution');
        const points = parseCount(v.points, '--points');
        call = async (c) => {
          const r = await c.getSeries({ filter, metric, statistic, window: w, resolutionS: resolution, maxPoints: points }, opts());
          return show(GetSeriesResponseSchema, r, () => formatSeries(r, metric, statistic, !v['no-chart']));
        };
        break;
      }
      case 'top': {
        const w = window();
        call = async (c) => {
          const r = await c.getTop({ filter, groupBy: by, metric, statistic, window: w, limit, minCount: min_count }, opts());
          return show(GetTopResponseSchema, r, () => formatTop(r, metric, statistic));
        };
        break;
      }
      case 'compare': {
        if (v.before === undefined || v.after === undefined) throw new Error('compare needs --before FROM..TO and --after FROM..TO');
        const before = parseRange(v.before, now_s, '--before'), after = parseRange(v.after, now_s, '--after');
        call = async (c) => {
          const r = await c.compare({ filter, groupBy: by, metric, statistic, before, after, limit, minCount: min_count }, opts());
          return show(CompareResponseSchema, r, () => formatCompare(r, metric, statistic));
        };
        break;
      }
    }
  } catch (err) {
    process.stderr.write(`wiretime report: ${(err as Error).message}\n`);
    return 2;
  }
  function opts() {
    // nice-grpc has no deadline without a middleware: the call is cancelled when the time is up
    return { signal: AbortSignal.timeout(timeout_ms), ...(token !== null ? { metadata: Metadata({ authorization: `Bearer ${token}` }) } : {}) };
  }
  let credentials: ChannelCredentials;
  try {
    credentials = v['tls-ca'] === undefined ? ChannelCredentials.createInsecure() : ChannelCredentials.createSsl(readFileSync(v['tls-ca']));
  } catch (err) {
    process.stderr.write(`wiretime report: --tls-ca: ${(err as Error).message}\n`);
    return 2;
  }
  const channel = createChannel(v.reporter ?? DEFAULT_REPORTER_LISTEN, credentials);
  try {
    out(await call(createClient(niceService(ReportService), channel)));
    return 0;
  } catch (err) {
    if (err instanceof ClientError) {
      process.stderr.write(`wiretime report: ${Status[err.code]}: ${err.details}\n`);
      return err.code === Status.INVALID_ARGUMENT ? 2 : 1;
    }
    const name = (err as Error).name;
    if (name === 'AbortError' || name === 'TimeoutError') {
      process.stderr.write(`wiretime report: no answer within ${timeout_ms} ms (--timeout-ms)\n`);
      return 1;
    }
    process.stderr.write(`wiretime report: ${(err as Error).message}\n`);
    return 1;
  } finally {
    channel.close();
  }
}
