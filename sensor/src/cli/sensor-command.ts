import { execFileSync } from 'node:child_process';
import { chownSync, createWriteStream, readdirSync, readFileSync, type WriteStream } from 'node:fs';
import { hostname } from 'node:os';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readCaptureFile, type CaptureFileSummary } from '../capture/pcap-file-source.ts';
import { LiveCapture, LiveCaptureError, type LiveCaptureStats } from '../capture/live-source.ts';
import type { OutputRecord, SummaryRecord } from '../output/records.ts';
import { ChannelCredentials } from 'nice-grpc';
import { Shipper } from '../ship/collector-client.ts';
import { splitIntoBatches } from '../ship/batches.ts';
import { Spool } from '../ship/spool.ts';
import { toSummaryMessage } from '../ship/summary-message.ts';
import { create } from '@bufbuild/protobuf';
import { SensorStatsSchema } from '../../../proto/src/gen/wiretime/v1/summary_pb.ts';
import { DEFAULT_SENSOR_OPTIONS, Pipeline, type SensorOptions } from '../pipeline.ts';
import { IntervalAggregator } from '../aggregate/interval-aggregator.ts';
import { SignatureSet } from '../classify/signature-set.ts';
import { parsePortFilter } from './port-filter.ts';

export const SENSOR_HELP = `Usage: wiretime sensor -r FILE [options] [filter]
       wiretime sensor -i INTERFACE [options] [BPF filter]

Reads a pcap or pcapng capture, or captures live from a network interface, and cuts its
TCP and UDP conversations into timed request/response transactions (HTTP/1.x, DNS, any
other TCP protocol by turn-taking), names them with signature rules and summarises them
per interval.

Options:
  -r, --read FILE            capture file to read (pcap or pcapng); "-" or a FIFO reads a
                             stream, e.g. tcpdump -w - | wiretime sensor -r -
  -i, --interface NAME       capture live on this interface (e.g. a mirror port; "any" for
                             all), with the kernel's timestamps, until SIGINT or SIGTERM.
                             Needs root (or cap_net_raw,cap_net_admin) and libpcap-dev at
                             install time (apt-get install -y libpcap-dev, then npm ci)
  -s, --snaplen BYTES        live: bytes kept of each packet (default 262144)
  --kernel-buffer-mib MIB    live: kernel capture buffer (default 64)
  -p, --no-promiscuous       live: do not put the interface into promiscuous mode
  -u, --user USER            live: once the interface is open, run as USER (its groups;
                             the spool directory is handed to it)
  -g, --group GROUP          live: once the interface is open, run as GROUP
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

Filter (optional, trailing words):
  with -r, a subset of tcpdump's syntax:
    tcp | udp | [tcp|udp] port N | portrange N-M, with not / and / or
    e.g.  wiretime sensor -r web.pcap --transactions - tcp port 80 or port 8080
  with -i, any BPF expression (pcap-filter(7), as tcpdump), applied in the kernel:
    e.g.  wiretime sensor -i eth1 -u wiretime -g wiretime --collector central:7070 tcp and net 10.1.0.0/16
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
        interface: { type: 'string', short: 'i' },
        snaplen: { type: 'string', short: 's' },
        'kernel-buffer-mib': { type: 'string' },
        'no-promiscuous': { type: 'boolean', short: 'p' },
        user: { type: 'string', short: 'u' },
        group: { type: 'string', short: 'g' },
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
  if (v.read === undefined && v.interface === undefined) {
    process.stderr.write(`wiretime sensor: -r FILE is required, or -i INTERFACE for live capture\n\n${SENSOR_HELP}`);
    return 2;
  }
  const options: Partial<SensorOptions> = {};
  let live: LiveSettings | null = null;
  try {
    if (v.read !== undefined && v.interface !== undefined) throw new Error('-r FILE and -i INTERFACE exclude each other');
    for (const name of ['snaplen', 'kernel-buffer-mib', 'no-promiscuous', 'user', 'group'] as const) {
      if (v.interface === undefined && v[name] !== undefined) throw new Error(`--${name} applies to live capture (-i) only`);
    }
    if (v.interface !== undefined) {
      if (v.interface === '') throw new Error('-i: expected an interface name');
      const snaplen = v.snaplen === undefined ? 262_144 : positiveNumber('--snaplen', v.snaplen);
      if (!Number.isInteger(snaplen) || snaplen < 64 || snaplen > 262_144) throw new Error(`--snaplen ${v.snaplen}: expected whole bytes, 64..262144`);
      const buffer_mib = v['kernel-buffer-mib'] === undefined ? 64 : positiveNumber('--kernel-buffer-mib', v['kernel-buffer-mib']);
      if (!Number.isInteger(buffer_mib) || buffer_mib > 2047) throw new Error(`--kernel-buffer-mib ${v['kernel-buffer-mib']}: expected whole MiB, 1..2047`);
      if (v.user === '' || v.group === '') throw new Error('-u/-g: expected a user or group name');
      if ((v.user !== undefined || v.group !== undefined) && process.getuid?.() !== 0) {
        throw new Error('-u/-g: the sensor is not running as root, there are no privileges to drop');
      }
      live = {
        interface: v.interface, bpf_filter: args.positionals.join(' '), snaplen_bytes: snaplen, buffer_bytes: buffer_mib << 20,
        promiscuous: v['no-promiscuous'] !== true, user: v.user ?? null, group: v.group ?? null,
      };
    }
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
    // Live: the filter is BPF, compiled by libpcap and run in the kernel.
    if (args.positionals.length > 0 && live === null) options.filter = parsePortFilter(args.positionals.join(' '));
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
  let capture: LiveCapture | null = null;
  const spool_dir = v.spool ?? 'wiretime-spool';
  if (v.collector !== undefined) {
    try {
      if (!/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(v.collector)) throw new Error(`--collector ${v.collector}: expected HOST:PORT`);
      const token = v['token-file'] === undefined ? null : (readFileSync(v['token-file'], 'utf8').split('\n')[0] ?? '').trim();
      const max = v['spool-max-bytes'] === undefined ? undefined : Math.floor(positiveNumber('--spool-max-bytes', v['spool-max-bytes']));
      const spool = await Spool.open({ dir: spool_dir, ...(max === undefined ? {} : { max_bytes: max }) });
      const sensor_id = v['sensor-id'] ?? hostname();
      if ((v['tls-cert'] === undefined) !== (v['tls-key'] === undefined)) throw new Error('--tls-cert and --tls-key go together');
      if (v['tls-cert'] !== undefined && v['tls-ca'] === undefined) throw new Error('--tls-cert needs --tls-ca (a client certificate is sent over TLS only)');
      const credentials = v['tls-ca'] === undefined ? undefined
        : ChannelCredentials.createSsl(readFileSync(v['tls-ca']), v['tls-key'] === undefined ? null : readFileSync(v['tls-key']),
          v['tls-cert'] === undefined ? null : readFileSync(v['tls-cert']));
      const shipper = new Shipper(spool, { address: v.collector, sensor_id, token, ...(credentials === undefined ? {} : { credentials }) });
      shipper.start();
      shipping = new Shipping(spool, shipper, () => capture?.stats() ?? null);
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
  let wake: (() => void) | null = null;
  const onSignal = (): void => {
    stop = true;
    wake?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let summary: CaptureFileSummary | null = null;
  let live_stats: LiveCaptureStats | null = null;
  let capture_error: string | null = null;
  if (live !== null) {
    const settings = live;
    // Records would otherwise wait for 64 KiB of output: a quiet link still shows its transactions.
    const flusher = setInterval(() => { for (const w of outputs.values()) w.flush(); }, 1000);
    try {
      try {
        capture = await LiveCapture.open({
          interface: settings.interface, filter: settings.bpf_filter, snaplen_bytes: settings.snaplen_bytes,
          buffer_bytes: settings.buffer_bytes, promiscuous: settings.promiscuous,
        }, pipeline);
      } catch (err) {
        const message = (err as Error).message;
        process.stderr.write(`wiretime sensor: -i ${settings.interface}: ${message}\n`);
        await shipping?.finish(pipeline, 0);
        for (const w of outputs.values()) await w.close();
        // A filter libpcap cannot compile is a usage error; the rest are the capture's.
        return err instanceof LiveCaptureError && err.kind === 'open_failed' && message.startsWith('filter "') ? 2 : 1;
      }
      if (settings.user !== null || settings.group !== null) {
        try {
          dropPrivileges(settings.user, settings.group, shipping === null ? [] : [spool_dir]);
        } catch (err) {
          process.stderr.write(`wiretime sensor: ${(err as Error).message}\n`);
          await capture.terminate();
          await shipping?.finish(pipeline, 0);
          return 2;
        }
      }
      process.stderr.write(`wiretime sensor: listening on ${settings.interface}, link type ${capture.linktype}, ` +
        `snapshot length ${settings.snaplen_bytes} bytes, ${capture.nanosecond_timestamps ? 'nanosecond' : 'microsecond'} timestamps` +
        `${settings.user !== null || settings.group !== null ? `, running as uid ${process.getuid?.()} gid ${process.getgid?.()}` : ''}\n`);
      if (!stop) {
        await Promise.race([new Promise<void>((resolve) => { wake = resolve; }), capture.done.catch(() => undefined)]);
      }
      try {
        live_stats = await capture.stop();
      } catch (err) {
        capture_error = (err as Error).message;
        live_stats = capture.stats();
      }
    } finally {
      clearInterval(flusher);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  } else {
    // `-r -` reads a capture from standard input (tcpdump -w - | wiretime sensor -r -).
    const input = v.read === '-' ? '/dev/stdin' : v.read!;
    const progress = progressReporter(input);
    try {
      summary = await readCaptureFile(input, pipeline, { on_progress: await progress, should_stop: () => stop });
    } catch (err) {
      process.stderr.write(`wiretime sensor: ${(err as Error).message}\n`);
      return 1;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
  const stats = pipeline.finish(summary);
  if (live_stats !== null) stats.kernel_drops = live_stats.kernel_drops;
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
    ...(live_stats === null ? {} : { live_capture: { ...live_stats, error: capture_error } }),
  };
  const statsLine = JSON.stringify(statistics, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x)) + '\n';
  if (statsDest === '-') writerFor('-').writeRaw(statsLine);
  else if (statsDest === 'stderr') process.stderr.write(statsLine);
  else writerFor(statsDest).writeRaw(statsLine);
  for (const w of outputs.values()) await w.close();
  if (summary !== null && summary.error !== null) {
    process.stderr.write(`wiretime sensor: ${summary.error.message} (the packets before it were analysed)\n`);
    return 1;
  }
  if (capture_error !== null) {
    process.stderr.write(`wiretime sensor: -i ${live!.interface}: ${capture_error} (the packets before it were analysed)\n`);
    return 1;
  }
  return 0;
}

/** Live capture settings from the command line. */
interface LiveSettings {
  interface: string;
  bpf_filter: string;
  snaplen_bytes: number;
  buffer_bytes: number;
  promiscuous: boolean;
  user: string | null;
  group: string | null;
}

/**
 * Gives up root once the capture is open (PasTmon ran as user pastmon): supplementary
 * groups, group, then user, for every thread of the process (setuid applies process-wide
 * on Linux); the open capture keeps working. `own` (the spool) is handed to the user first
 * so that the sensor can still write there. Throws when a name is unknown or root remains.
 */
function dropPrivileges(user: string | null, group: string | null, own: string[]): void {
  const lookup = (flag: '-u' | '-g', name: string): number => {
    if (/^\d+$/.test(name)) return Number(name);
    try {
      return Number(execFileSync('id', [flag, '--', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    } catch {
      throw new Error(`-u ${name}: no such user`);
    }
  };
  const uid = user === null ? null : lookup('-u', user);
  let gid: number | null = null;
  if (group !== null) {
    try {
      process.setgid!(/^\d+$/.test(group) ? Number(group) : group);
    } catch (err) {
      throw new Error(`-g ${group}: ${(err as Error).message.includes('does not exist') ? 'no such group' : (err as Error).message}`);
    }
    gid = process.getgid!();
  } else if (user !== null) {
    gid = lookup('-g', user);
  }
  if (uid !== null) {
    for (const dir of own) {
      chownSync(dir, uid, gid ?? -1);
      for (const entry of readdirSync(dir, { recursive: true })) chownSync(join(dir, String(entry)), uid, gid ?? -1);
    }
  }
  if (gid !== null) {
    // process.initgroups is in Node (initgroups(3)) but not in its type definitions.
    const proc = process as unknown as { initgroups: (user: string, extra_group: number) => void };
    if (user !== null && !/^\d+$/.test(user)) proc.initgroups(user, gid);
    else process.setgroups!([gid]);
    process.setgid!(gid);
  }
  if (uid !== null) process.setuid!(uid);
  if (process.getuid!() === 0 || process.geteuid!() === 0 || (gid !== null && (process.getgid!() !== gid || process.getegid!() !== gid))) {
    throw new Error('could not give up root');
  }
}

/**
 * Closed interval summaries on their way to the collector: gathered as the aggregator
 * emits them, appended to the spool in batches (in order, one append at a time), shipped
 * by the Shipper; at the end, waits a bounded time for the acknowledgements.
 */
class Shipping {
  private readonly spool: Spool;
  private readonly shipper: Shipper;
  private outbox: SummaryRecord[] = [];
  private appending: Promise<void> = Promise.resolve();
  /** the live capture's counters (kernel and interface drops); null for files */
  private readonly capture_stats: () => LiveCaptureStats | null;
  refused_batches = 0;

  constructor(spool: Spool, shipper: Shipper, capture_stats: () => LiveCaptureStats | null) {
    this.spool = spool;
    this.shipper = shipper;
    this.capture_stats = capture_stats;
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
    const live = this.capture_stats();
    const stats = create(SensorStatsSchema, {
      packets: BigInt(s.packets), bytes: BigInt(s.bytes),
      kernelDrops: BigInt(live?.kernel_drops ?? 0), interfaceDrops: BigInt(live?.interface_drops ?? 0),
      flowsActive: BigInt(s.flows.active), transactions: BigInt(s.transactions.total),
      spoolBytes: BigInt(spool.depth_bytes), captureTimeS: BigInt(last),
    });
    for (const batch of splitIntoBatches(all.map(toSummaryMessage))) {
      this.appending = this.appending.then(async () => {
        if ((await this.spool.append(batch, stats)) === null) this.refused_batches++;
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
