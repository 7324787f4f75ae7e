import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { hostname } from 'node:os';
import { stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { readCaptureFile } from '../capture/pcap-file-source.ts';
import type { OutputRecord, SummaryRecord } from '../output/records.ts';
import { ChannelCredentials } from 'nice-grpc';
import { Shipper } from '../ship/collector-client.ts';
import { Spool } from '../ship/spool.ts';
import { toSummaryMessage } from '../ship/summary-message.ts';
import { create } from '@bufbuild/protobuf';
import { SensorStatsSchema } from '../../../proto/src/gen/wiretime/v1/summary_pb.ts';
import { DEFAULT_SENSOR_OPTIONS, Pipeline, type SensorOptions } from '../pipeline.ts';
import { IntervalAggregator } from '../aggregate/interval-aggregator.ts';
import { SignatureSet } from '../classify/signature-set.ts';
import { parsePortFilter } from './port-filter.ts';

export const SENSOR_HELP = `Usage: wiretime sensor -r FILE [options] [filter]

Reads a pcap or pcapng capture and cuts its TCP and UDP conversations into timed
request/response transactions (HTTP/1.x, DNS, any other TCP protocol by turn-taking),
names them with signature rules and summarises them per interval.

Options:
  -r, --read FILE            capture file to read (pcap or pcapng); "-" or a FIFO reads a
                             stream, e.g. tcpdump -w - | wiretime sensor -r -
  --transactions DEST        write one JSON line per transaction and per TCP connection
                             to DEST ("-" for stdout)
  --stats DEST               where the statistics block goes: "-" (stdout, default),
                             "stderr", or a file
  --idle-timeout SECONDS     finish flows idle this long, in capture time (default ${DEFAULT_SENSOR_OPTIONS.idle_timeout_s})
  --max-flows N              most flows tracked at once (default ${DEFAULT_SENSOR_OPTIONS.max_flows})
  --analyzer PORT=ID         treat server port PORT as protocol ID (http, dns, tcp);
                             repeatable. Protocols are otherwise recognised by payload.
  --signatures FILE          PasTmon signature rules naming transactions (repeatable;
                             tried in the order given, first match wins; docs/signatures.md)
  --max-names-per-rule N     distinct names one rule may create per interval (default 1000);
                             the rest are counted under NAME:other
  --summaries DEST           write one JSON line per closed interval summary ("-" for stdout)
  --interval SECONDS         summary interval, aligned to it (default 300)
  --grace SECONDS            an interval closes this long after its end, capture time
                             (default: the idle timeout, so that timed-out requests still land in it)
  --sensor-id NAME           the sensor's name in summaries (default: the host name)
  --collector HOST:PORT      ship closed intervals to a collector over gRPC (implies summaries)
  --spool DIR                durable spool of batches not yet acknowledged (default ./wiretime-spool)
  --spool-max-bytes N        spool size limit; past it batches are refused and counted (default 1 GiB)
  --token-file FILE          the sensor's token for the collector (first line)
  --tls-ca FILE              connect with TLS, trusting the collector's certificate if this
                             PEM CA signed it (the host name in --collector must match it)
  --tls-cert FILE            the sensor's PEM client certificate (mutual TLS; its subject CN
                             is the sensor id the collector lets it write as), with --tls-key
  --tls-key FILE             PEM private key of --tls-cert
  --ship-timeout SECONDS     at end of file, wait this long for the collector's acks (default 30);
                             what is not acknowledged stays in the spool for the next run
  -h, --help                 this help

Filter (optional, trailing words, a subset of tcpdump's syntax):
  tcp | udp | [tcp|udp] port N | portrange N-M, with not / and / or
  e.g.  wiretime sensor -r web.pcap --transactions - tcp port 80 or port 8080
`;

/** `wiretime sensor`: returns the exit code (0 ok, 1 damaged capture, 2 usage). */
export async function sensorCommand(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        read: { type: 'string', short: 'r' },
        transactions: { type: 'string' },
        stats: { type: 'string' },
        'idle-timeout': { type: 'string' },
        'max-flows': { type: 'string' },
        analyzer: { type: 'string', multiple: true },
        signatures: { type: 'string', multiple: true },
        'max-names-per-rule': { type: 'string' },
        summaries: { type: 'string' },
        interval: { type: 'string' },
        grace: { type: 'string' },
        'sensor-id': { type: 'string' },
        collector: { type: 'string' },
        spool: { type: 'string' },
        'spool-max-bytes': { type: 'string' },
        'token-file': { type: 'string' },
        'tls-ca': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'ship-timeout': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    process.stderr.write(`wiretime sensor: ${(err as Error).message}\n\n${SENSOR_HELP}`);
    return 2;
  }
  const v = args.values;
  if (v.help) {
    process.stdout.write(SENSOR_HELP);
    return 0;
  }
  if (v.read === undefined) {
    process.stderr.write(`wiretime sensor: -r FILE is required (live capture comes with -i in a later release)\n\n${SENSOR_HELP}`);
    return 2;
  }
  const options: Partial<SensorOptions> = {};
  try {
    if (v['idle-timeout'] !== undefined) options.idle_timeout_s = positiveNumber('--idle-timeout', v['idle-timeout']);
    if (v['max-flows'] !== undefined) options.max_flows = Math.floor(positiveNumber('--max-flows', v['max-flows']));
    if (v.analyzer !== undefined) {
      options.port_analyzers = {};
      for (const spec of v.analyzer) {
        const m = /^(\d{1,5})=([a-z0-9_-]+)$/.exec(spec);
        if (m === null || Number(m[1]) > 65535) throw new Error(`--analyzer ${spec}: expected PORT=ID, e.g. 8001=http`);
        options.port_analyzers[Number(m[1])] = m[2]!;
      }
    }
    if (args.positionals.length > 0) options.filter = parsePortFilter(args.positionals.join(' '));
    // Rule files are checked before any output file is created.
    if (v.signatures !== undefined) {
      const max = v['max-names-per-rule'] === undefined ? undefined : Math.floor(positiveNumber('--max-names-per-rule', v['max-names-per-rule']));
      options.classifier = SignatureSet.fromFiles(v.signatures, max === undefined ? {} : { max_names_per_rule: max });
    }
  } catch (err) {
    process.stderr.write(`wiretime sensor: ${(err as Error).message}\n`);
    return 2;
  }

  // Outputs: transaction records and interval summaries, each to stdout or a file.
  const outputs = new Map<string, LineWriter>();
  const writerFor = (dest: string): LineWriter => {
    let w = outputs.get(dest);
    if (w === undefined) {
      w = new LineWriter(openOutput(dest));
      outputs.set(dest, w);
    }
    return w;
  };
  const txWriter = v.transactions === undefined ? null : writerFor(v.transactions);
  const summaryWriter = v.summaries === undefined ? null : writerFor(v.summaries);
  const statsDest = v.stats ?? '-';

  const signatures = (options.classifier ?? null) as SignatureSet | null;
  let aggregator: IntervalAggregator | null = null;
  let pipeline: Pipeline;
  // Shipping: closed intervals go to a durable spool, and from there to the collector.
  let shipping: Shipping | null = null;
  if (v.collector !== undefined) {
    try {
      if (!/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(v.collector)) throw new Error(`--collector ${v.collector}: expected HOST:PORT`);
      const token = v['token-file'] === undefined ? null : (readFileSync(v['token-file'], 'utf8').split('\n')[0] ?? '').trim();
      const max = v['spool-max-bytes'] === undefined ? undefined : Math.floor(positiveNumber('--spool-max-bytes', v['spool-max-bytes']));
      const spool = await Spool.open({ dir: v.spool ?? 'wiretime-spool', ...(max === undefined ? {} : { max_bytes: max }) });
      const sensor_id = v['sensor-id'] ?? hostname();
      if ((v['tls-cert'] === undefined) !== (v['tls-key'] === undefined)) throw new Error('--tls-cert and --tls-key go together');
      if (v['tls-cert'] !== undefined && v['tls-ca'] === undefined) throw new Error('--tls-cert needs --tls-ca (a client certificate is sent over TLS only)');
      const credentials = v['tls-ca'] === undefined ? undefined
        : ChannelCredentials.createSsl(readFileSync(v['tls-ca']), v['tls-key'] === undefined ? null : readFileSync(v['tls-key']),
          v['tls-cert'] === undefined ? null : readFileSync(v['tls-cert']));
      const shipper = new Shipper(spool, { address: v.collector, sensor_id, token, ...(credentials === undefined ? {} : { credentials }) });
      shipper.start();
      shipping = new Shipping(spool, shipper);
    } catch (err) {
      process.stderr.write(`wiretime sensor: ${(err as Error).message}\n`);
      return 2;
    }
  }
  try {
    if (summaryWriter !== null || shipping !== null) {
      const interval_s = v.interval === undefined ? undefined : positiveNumber('--interval', v.interval);
      if (interval_s !== undefined && !Number.isInteger(interval_s)) throw new Error(`--interval ${v.interval}: expected whole seconds`);
      // By default an interval waits as long as a transaction may: the idle timeout.
      const grace_s = v.grace === undefined ? options.idle_timeout_s ?? DEFAULT_SENSOR_OPTIONS.idle_timeout_s : Number(v.grace);
      if (!(grace_s >= 0)) throw new Error(`--grace ${v.grace}: expected seconds >= 0`);
      const ship = shipping;
      aggregator = new IntervalAggregator({ sensor_id: v['sensor-id'], interval_s, grace_s }, (summary) => {
        summaryWriter?.write(summary);
        ship?.add(summary);
      });
    }
    const agg = aggregator;
    const sigs = signatures;
    if (agg !== null || sigs !== null) {
      const interval_s = agg?.options.interval_s ?? 300;
      let interval_index = -1;
      options.on_clock = (now_s) => {
        // The per-rule name budget is per interval, like the summaries.
        const index = Math.floor(now_s / interval_s);
        if (index !== interval_index) {
          if (interval_index >= 0) sigs?.startInterval();
          interval_index = index;
        }
        agg?.advanceTo(now_s);
        shipping?.flush(pipeline);
      };
    }
    // The aggregator takes the metrics straight from the pipeline; records are built
    // only for raw output.
    options.metrics_sink = agg;
    pipeline = new Pipeline(options, txWriter === null ? null : (r: OutputRecord) => {
      if (r.type !== 'statistics') txWriter.write(r);
    });
  } catch (err) {
    process.stderr.write(`wiretime sensor: ${(err as Error).message}\n`);
    return 2;
  }

  let stop = false;
  const onSignal = (): void => { stop = true; };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // `-r -` reads a capture from standard input (tcpdump -w - | wiretime sensor -r -).
  const input = v.read === '-' ? '/dev/stdin' : v.read;
  const progress = progressReporter(input);
  let summary;
  try {
    summary = await readCaptureFile(input, pipeline, { on_progress: await progress, should_stop: () => stop });
  } catch (err) {
    process.stderr.write(`wiretime sensor: ${(err as Error).message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const stats = pipeline.finish(summary);
  // The last, partial interval is flushed at end of file and on SIGINT/SIGTERM.
  aggregator?.flush();
  let shipped: object | null = null;
  if (shipping !== null) {
    const timeout_s = v['ship-timeout'] === undefined ? 30 : Number(v['ship-timeout']);
    shipped = await shipping.finish(pipeline, (Number.isFinite(timeout_s) && timeout_s >= 0 ? timeout_s : 30) * 1000);
  }
  const statistics = {
    type: 'statistics',
    ...stats,
    ...(signatures === null ? {} : { signatures: signatures.stats() }),
    ...(aggregator === null ? {} : { summaries: aggregator.stats() }),
    ...(shipped === null ? {} : { shipping: shipped }),
  };
  const statsLine = JSON.stringify(statistics, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x)) + '\n';
  if (statsDest === '-') writerFor('-').writeRaw(statsLine);
  else if (statsDest === 'stderr') process.stderr.write(statsLine);
  else writerFor(statsDest).writeRaw(statsLine);
  for (const w of outputs.values()) await w.close();
  if (summary.error !== null) {
    process.stderr.write(`wiretime sensor: ${summary.error.message} (the packets before it were analysed)\n`);
    return 1;
  }
  return 0;
}

/**
 * Closed interval summaries on their way to the collector: gathered as the aggregator
 * emits them, appended to the spool in batches (in order, one append at a time), shipped
 * by the Shipper; at the end, waits a bounded time for the acknowledgements.
 */
class Shipping {
  /** summaries per batch (the collector accepts up to 10 000) */
  private static readonly BATCH = 1000;
  private readonly spool: Spool;
  private readonly shipper: Shipper;
  private outbox: SummaryRecord[] = [];
  private appending: Promise<void> = Promise.resolve();
  refused_batches = 0;

  constructor(spool: Spool, shipper: Shipper) {
    this.spool = spool;
    this.shipper = shipper;
  }

  add(summary: SummaryRecord): void {
    this.outbox.push(summary);
  }

  /** Appends what the aggregator emitted, with the sensor's counters so the centre knows it is alive. */
  flush(pipeline: Pipeline): void {
    if (this.outbox.length === 0) return;
    const all = this.outbox;
    this.outbox = [];
    const s = pipeline.statistics();
    const spool = this.spool.stats();
    const last = s.last_packet === null ? 0 : Math.floor(Date.parse(s.last_packet) / 1000);
    const stats = create(SensorStatsSchema, {
      packets: BigInt(s.packets), bytes: BigInt(s.bytes), kernelDrops: 0n, interfaceDrops: 0n,
      flowsActive: BigInt(s.flows.active), transactions: BigInt(s.transactions.total),
      spoolBytes: BigInt(spool.depth_bytes), captureTimeS: BigInt(last),
    });
    for (let i = 0; i < all.length; i += Shipping.BATCH) {
      const chunk = all.slice(i, i + Shipping.BATCH).map(toSummaryMessage);
      this.appending = this.appending.then(async () => {
        if ((await this.spool.append(chunk, stats)) === null) this.refused_batches++;
      });
    }
  }

  /** Appends what is left, waits up to `timeout_ms` for every batch to be acknowledged, stops. */
  async finish(pipeline: Pipeline, timeout_ms: number): Promise<object> {
    this.flush(pipeline);
    await this.appending;
    this.shipper.wake();
    const deadline = Date.now() + timeout_ms;
    while (this.spool.stats().acked_sequence < this.spool.stats().last_sequence && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await this.shipper.stop();
    const result = { ...this.shipper.stats(), spool: this.spool.stats(), refused_batches: this.refused_batches };
    await this.spool.close();
    return result;
  }
}

function positiveNumber(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} ${text}: expected a positive number`);
  return n;
}

function openOutput(dest: string): NodeJS.WritableStream {
  return dest === '-' ? process.stdout : createWriteStream(dest);
}

/** Batches JSON lines into large writes (stdout to a pipe or file is synchronous on Linux). */
class LineWriter {
  private readonly out: NodeJS.WritableStream;
  private buf = '';
  constructor(out: NodeJS.WritableStream) {
    this.out = out;
  }
  write(record: object): void {
    this.buf += JSON.stringify(record) + '\n';
    if (this.buf.length > 1 << 16) this.flush();
  }
  writeRaw(line: string): void {
    this.buf += line;
  }
  flush(): void {
    if (this.buf.length > 0) {
      this.out.write(this.buf);
      this.buf = '';
    }
  }
  async close(): Promise<void> {
    this.flush();
    if (this.out !== process.stdout) await new Promise<void>((resolve) => (this.out as WriteStream).end(() => resolve()));
  }
}

/** A progress line on stderr for large files, only when stderr is a terminal. */
async function progressReporter(path: string): Promise<((read: number, total: number) => void) | undefined> {
  if (!process.stderr.isTTY) return undefined;
  let size = 0;
  try {
    size = (await stat(path)).size;
  } catch {
    return undefined;
  }
  if (size < 64 * 1024 * 1024) return undefined;
  let last = -1;
  return (read, total) => {
    const pct = Math.floor((read / Math.max(1, total)) * 100);
    if (pct !== last) {
      last = pct;
      process.stderr.write(`\rreading ${path}: ${pct}% (${(read / 1048576).toFixed(0)} of ${(total / 1048576).toFixed(0)} MiB)${pct >= 100 ? '\n' : ''}`);
    }
  };
}
