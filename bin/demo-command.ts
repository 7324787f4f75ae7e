/**
 * `wiretime demo`: the whole chain in one command on the embedded database, with no
 * PostgreSQL server and no libpcap: a collector and a reporter in this process over one PGlite
 * database, and a sensor process that reads a capture shipped in the repository
 * (test/fixtures/demo/webmail.pcap: real servers and clients recorded on loopback, see
 * test/fixtures/PROVENANCE.md) and ships its summaries to the collector over gRPC. Then it asks
 * the reporter, over gRPC like any client, for the slowest pages, the slowest servers and the
 * slowest page's time series, prints them, and leaves the reporter running with its address
 * printed so that `wiretime report …` can ask more. Ctrl-C stops it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { ClientError, createChannel, createClient, Status } from 'nice-grpc';
import { GroupBy, ReportService, Statistic } from '../proto/src/gen/wiretime/v1/report_pb.ts';
import { niceService } from '../proto/src/nice-grpc.ts';
import { startCollector } from '../collector/src/collector-server.ts';
import { SummaryStore } from '../collector/src/store/summary-store.ts';
import { startReporter } from '../reporter/src/server.ts';
import { ReportStore } from '../reporter/src/store/report-store.ts';
import { formatCompare, formatSeries, formatTop } from '../reporter/src/cli/report-format.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const DEMO_CAPTURE = join(ROOT, 'test/fixtures/demo/webmail.pcap');
export const DEMO_SIGNATURES = join(ROOT, 'sigs/pastmon-http-sigs.inc');

export const DEMO_HELP = `Usage: wiretime demo [options]

Runs a sensor, a collector and a reporter on the embedded database (PGlite; no PostgreSQL
server, no libpcap needed), feeds them a capture shipped in the repository (a webmail front
end, its IMAP server and its PostgreSQL, recorded on loopback), prints the slowest pages and
servers and a time series, and leaves the reporter running for 'wiretime report'.

Options:
  -r FILE              another capture to feed instead
  --signatures FILE    signature rules (default: PasTmon's webmail example, sigs/pastmon-http-sigs.inc)
  --interval SECONDS   summary interval (default 60: the demo capture lasts 10 minutes)
  --listen HOST:PORT   the reporter's address (default 127.0.0.1:7071; port 0 picks one)
  --data-dir DIR       keep the database in DIR (default: a temporary directory, removed at exit)
  --no-wait            exit after printing instead of leaving the reporter running
  -h, --help           this help
`;

interface SensorStats {
  packets: number;
  first_packet: string | null;
  last_packet: string | null;
  transactions: { total: number };
  shipping?: { spool: { acked_sequence: number; last_sequence: number } };
}

/** Runs the demo; returns the exit code. */
export async function demoCommand(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        r: { type: 'string', short: 'r' },
        signatures: { type: 'string' },
        interval: { type: 'string' },
        listen: { type: 'string' },
        'data-dir': { type: 'string' },
        'no-wait': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    process.stderr.write(`wiretime demo: ${(err as Error).message}\n\n${DEMO_HELP}`);
    return 2;
  }
  const v = args.values;
  if (v.help) {
    process.stdout.write(DEMO_HELP);
    return 0;
  }
  const say = (text: string) => process.stdout.write(text);
  const capture = v.r ?? DEMO_CAPTURE;
  const interval = v.interval ?? '60';
  const listen = v.listen ?? '127.0.0.1:7071';
  const scratch = mkdtempSync(join(tmpdir(), 'wiretime-demo-'));
  const data_dir = v['data-dir'] ?? join(scratch, 'db');
  const log = (event: string, fields: Record<string, unknown>) => {
    if (event !== 'listening') process.stderr.write(JSON.stringify({ component: 'demo', event, ...fields }) + '\n');
  };

  say(`wiretime demo: embedded database in ${data_dir} (PGlite: PostgreSQL in WebAssembly; starting takes a few seconds)\n`);
  let store: SummaryStore | null = null;
  let collector: Awaited<ReturnType<typeof startCollector>> | null = null;
  let reporter: Awaited<ReturnType<typeof startReporter>> | null = null;
  try {
    store = await SummaryStore.open(null, data_dir);
    collector = await startCollector(store, { listen: '127.0.0.1:0' }, log);
    say(`collector: listening on 127.0.0.1:${collector.port}\n`);

    // The sensor: a process of its own, shipping over gRPC like a sensor on another host.
    say(`sensor: reading ${capture.startsWith(ROOT) ? capture.slice(ROOT.length) : capture}, ${interval} s intervals, signatures ${v.signatures ?? 'sigs/pastmon-http-sigs.inc'}\n`);
    const stats = await runSensor([join(ROOT, 'bin/wiretime.js'), 'sensor', '-r', capture, '--signatures', v.signatures ?? DEMO_SIGNATURES,
      '--interval', interval, '--grace', '0', '--sensor-id', 'demo', '--collector', `127.0.0.1:${collector.port}`,
      '--spool', join(scratch, 'spool'), '--summaries', '/dev/null', '--ship-timeout', '60']);
    const spool = stats.shipping?.spool;
    say(`sensor: ${stats.packets.toLocaleString('en-US')} packets, ${stats.transactions.total.toLocaleString('en-US')} transactions, ` +
      `${collector.counters.summaries_stored.toLocaleString('en-US')} summaries stored in ${collector.counters.batches_stored} batches` +
      `${spool && spool.acked_sequence !== spool.last_sequence ? ` (${spool.last_sequence - spool.acked_sequence} batches NOT acknowledged)` : ''}\n`);
    if (stats.first_packet === null || stats.last_packet === null) throw new Error('the capture holds no packets');

    reporter = await startReporter({ store: new ReportStore(store.sql), listen }, log);
    const address = `${listen.replace(/:\d+$/, '')}:${reporter.port}`;
    say(`reporter: listening on ${address}\n\n`);

    // The questions, asked over gRPC as any client would.
    const I = Number(interval);
    const from_s = Math.floor(Date.parse(stats.first_packet) / 1000 / I) * I;
    const to_s = Math.ceil(Date.parse(stats.last_packet) / 1000 / I) * I;
    const window = { startS: BigInt(from_s), endS: BigInt(to_s) };
    const iso = (s: number) => new Date(s * 1000).toISOString().replace('.000Z', 'Z');
    let spell_text: string | null = null;
    const channel = createChannel(address);
    const client = createClient(niceService(ReportService), channel);
    try {
      const metric = 'ttlr_ns';
      const top = await client.getTop({ filter: {}, groupBy: GroupBy.SIGNATURE, metric, statistic: Statistic.P95, window, limit: 8 });
      say(`Slowest signatures by p95 time to last response byte, ${new Date(from_s * 1000).toISOString()} to ${new Date(to_s * 1000).toISOString()}:\n`);
      say(formatTop(top, metric, Statistic.P95) + '\n');
      const servers = await client.getTop({ filter: {}, groupBy: GroupBy.SERVER, metric, statistic: Statistic.P95, window, limit: 8 });
      say(`Slowest servers by p95 time to last response byte (TCP servers without an analyzer are timed request by request):\n`);
      say(formatTop(servers, metric, Statistic.P95) + '\n');
      const slowest = top.rows[0]?.key?.signature;
      if (slowest !== undefined && slowest !== '') {
        const series = await client.getSeries({ filter: { signature: slowest }, metric, statistic: Statistic.P95, window, resolutionS: I });
        say(`${slowest}: p95 time to last response byte per ${I} s:\n`);
        say(formatSeries(series, metric, Statistic.P95, true) + '\n');
        // Since when? The longest run of buckets above twice the median bucket is the slow spell;
        // comparing it with the time before it, server by server, shows what slowed down with it.
        const spell = slowSpell(series.points.map((p) => ({ start_s: Number(p.startS), value: p.value })), I);
        if (spell !== null && spell.start_s > from_s) {
          const before = { startS: BigInt(from_s), endS: BigInt(spell.start_s) };
          const during = { startS: BigInt(spell.start_s), endS: BigInt(spell.end_s) };
          const compared = await client.compare({ filter: {}, groupBy: GroupBy.SERVER, metric, statistic: Statistic.P95, before, after: during, limit: 10 });
          say(`${slowest} got slow at ${new Date(spell.start_s * 1000).toISOString()} until ${new Date(spell.end_s * 1000).toISOString()}. ` +
            `Before and during that spell, by server (p95 time to last response byte; "significant": larger than the sketches' error):\n`);
          say(formatCompare(compared, metric, Statistic.P95) + '\n');
          spell_text = `${iso(from_s)}..${iso(spell.start_s)} --after ${iso(spell.start_s)}..${iso(spell.end_s)}`;
        }
      }
    } catch (err) {
      throw new Error(err instanceof ClientError ? `reporter: ${Status[err.code]}: ${err.details}` : (err as Error).message);
    } finally {
      channel.close();
    }
    say(`Ask more while this runs, e.g.:\n` +
      `  npx wiretime report signatures --reporter ${address}\n` +
      `  npx wiretime report top --by server --metric ttfr_ns --stat p99 --from ${iso(from_s)} --to ${iso(to_s)} --reporter ${address}\n` +
      (spell_text !== null ? `  npx wiretime report compare --by signature --before ${spell_text} --reporter ${address}\n` : ''));
    if (v['no-wait']) return 0;
    say(`The reporter keeps running on ${address}; Ctrl-C stops it.\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    return 0;
  } catch (err) {
    process.stderr.write(`wiretime demo: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await reporter?.close().catch(() => undefined);
    await collector?.close().catch(() => undefined);
    await store?.close().catch(() => undefined);
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The longest run of consecutive buckets whose value is above twice the median of the buckets
 * with values: [start_s, end_s), or null when there is none (or every bucket is in it).
 */
export function slowSpell(points: { start_s: number; value: number | undefined }[], step_s: number): { start_s: number; end_s: number } | null {
  const values = points.map((p) => p.value).filter((v): v is number => v !== undefined).sort((a, b) => a - b);
  if (values.length < 3) return null;
  const median = values[values.length >> 1]!;
  let best: { start_s: number; end_s: number } | null = null;
  let run_start: number | null = null;
  for (const [i, p] of points.entries()) {
    const slow = p.value !== undefined && p.value > 2 * median;
    if (slow && run_start === null) run_start = p.start_s;
    const last = i === points.length - 1;
    if (run_start !== null && (!slow || last)) {
      const end = slow && last ? p.start_s + step_s : p.start_s;
      if (best === null || end - run_start > best.end_s - best.start_s) best = { start_s: run_start, end_s: end };
      run_start = null;
    }
  }
  return best;
}

/** Runs `wiretime sensor …` as a child process; resolves with its statistics line. */
function runSensor(args: string[]): Promise<SensorStats> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('exit', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !last.startsWith('{')) return reject(new Error(`the sensor exited with ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`));
      resolve(JSON.parse(last) as SensorStats);
    });
  });
}
