/**
 * Memory per tracked flow:
 *
 *   node --expose-gc --import tsx bench/flow-memory.ts pipeline [--flows 1000000] [--payload http|opaque|none]
 *
 * Synthesises --flows distinct TCP connections (clients 10.128.0.0/16, 16 source ports
 * each, to 10.2.0.1:80; --payload opaque: to port 9999), each opening with
 * SYN / SYN-ACK / ACK followed by one data packet from the client (http: a small GET
 * request that stays unanswered; opaque: 16 bytes no analyzer recognises; none: no data,
 * the TCP tracking state alone), 1 µs apart,
 * so all of them are still open (and far from any idle timeout) at the end. The
 * packets are built in one reused buffer and handed straight to the pipeline's packet
 * sink, then, with every flow still tracked:
 *
 *   bytes per flow = (heapUsed + arrayBuffers after - before, each after a forced gc)
 *                    / flows tracked
 *
 * "before" is taken before the pipeline is constructed, so the flow table's and the
 * columns' allocations (including their growth slack) count. Target: <= 200 B.
 *
 * Needs sensor/src/pipeline.ts exporting `Pipeline` (a PacketSink with `statistics()`
 * and `finish()`); with only `analyzeCaptureFile`, the connections are written to
 * bench/out/flows-*.pcap and the live heap is sampled after forced gcs every 100 ms
 * during the run (method "sampled", a lower bound). Prints one JSON line;
 * {ok: false, error: "pipeline not available ..."} when the pipeline cannot be loaded.
 */
import { memoryUsage, resourceUsage } from 'node:process';
import { mkdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildTcpFrame, ipv4, mac, PcapWriter, type FrameEnds } from './pcap-writer.ts';
import { CAPTURE_EPOCH_SEC } from './generate-http-capture.ts';

const SYN = 0x02, ACK = 0x10, PSH = 0x08;

interface Args {
  stage: string;
  flows: number;
  payload: 'http' | 'opaque' | 'none';
}

interface PipelineLike {
  onPacket(buf: Uint8Array, offset: number, caplen: number, wirelen: number, linktype: number, ts_sec: number, ts_nsec: number): void;
  statistics(): { packets: number; flows: { created: number; active?: number; [k: string]: number | undefined } };
  finish(): unknown;
}
interface PipelineModule {
  Pipeline?: new (options: object, on_record: ((r: unknown) => void) | null) => PipelineLike;
  analyzeCaptureFile?: (path: string, options: object, on_record: ((r: unknown) => void) | null) => Promise<{ packets: number; flows: { created: number; [k: string]: number } }>;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { stage: 'pipeline', flows: 1_000_000, payload: 'http' };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    if (x === '--flows') a.flows = Number(argv[++i]);
    else if (x === '--payload') {
      const p = argv[++i];
      if (p !== 'http' && p !== 'opaque' && p !== 'none') throw new Error('--payload http|opaque|none');
      a.payload = p;
    } else rest.push(x);
  }
  if (rest[0] !== undefined) a.stage = rest[0];
  if (!Number.isInteger(a.flows) || a.flows <= 0 || a.flows > 16 * 65536) throw new Error('--flows must be 1..1048576');
  return a;
}

function liveHeap(): number {
  const gc = (globalThis as { gc?: () => void }).gc!;
  gc();
  gc();
  const m = memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Calls `emit` with every frame of the synthetic connections, in order. */
function synthesise(
  flows: number, payload: 'http' | 'opaque' | 'none',
  emit: (buf: Uint8Array, len: number, ts_sec: number, ts_usec: number) => void,
): void {
  const buf = new Uint8Array(256);
  const view = new DataView(buf.buffer);
  const opts = new Uint8Array(40);
  const client_mac = mac(0x00, 0x00, 0x5e, 0x00, 0x01, 0x01);
  const server_mac = mac(0x52, 0x54, 0x00, 0x02, 0x00, 0x01);
  const server_ip = ipv4(10, 2, 0, 1);
  const dport = payload === 'http' ? 80 : 9999;
  const data = payload === 'http'
    ? Buffer.from('GET /api/v1/items/42 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n', 'latin1')
    : Uint8Array.from({ length: 16 }, (_, i) => (i * 37 + 11) & 0xff);
  const c: FrameEnds = { src_mac: client_mac, dst_mac: server_mac, src_ip: 0, dst_ip: server_ip, ttl: 62, ip_id: 0, dont_fragment: true };
  const s: FrameEnds = { src_mac: server_mac, dst_mac: client_mac, src_ip: server_ip, dst_ip: 0, ttl: 64, ip_id: 0, dont_fragment: true };
  let t = 0; // µs since the capture start
  const out = (len: number): void => {
    emit(buf, len, CAPTURE_EPOCH_SEC + Math.floor(t / 1e6), t % 1e6);
    t++;
  };
  for (let i = 0; i < flows; i++) {
    const cip = (ipv4(10, 128, 0, 0) + (i >>> 4)) >>> 0;
    const sport = 40000 + (i & 15);
    const cisn = Math.imul(i, 2654435761) >>> 0;
    const sisn = Math.imul(i ^ 0x5bd1e995, 2246822519) >>> 0;
    c.src_ip = cip;
    s.dst_ip = cip;
    // SYN: MSS 1460, SACK-permitted, window scale 7 (no timestamps: shortest frames)
    opts.set([2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2]);
    c.ip_id = i & 0xffff;
    out(buildTcpFrame(buf, view, 0, c, sport, dport, cisn, 0, SYN, 64240, opts, 12, null, 0, 0));
    s.ip_id = 0;
    out(buildTcpFrame(buf, view, 0, s, dport, sport, sisn, cisn + 1, SYN | ACK, 64240, opts, 12, null, 0, 0));
    c.ip_id = (i + 1) & 0xffff;
    out(buildTcpFrame(buf, view, 0, c, sport, dport, cisn + 1, sisn + 1, ACK, 502, opts, 0, null, 0, 0));
    if (payload === 'none') continue;
    c.ip_id = (i + 2) & 0xffff;
    out(buildTcpFrame(buf, view, 0, c, sport, dport, cisn + 1, sisn + 1, ACK | PSH, 502, opts, 0, data, 0, data.length));
  }
}

async function main(): Promise<Record<string, unknown>> {
  const args = parseArgs(process.argv.slice(2));
  const base = { stage: args.stage, flows: args.flows, payload: args.payload, target_bytes_per_flow: 200 };
  if (args.stage !== 'pipeline') throw new Error(`unknown stage "${args.stage}" (only: pipeline)`);
  if (typeof (globalThis as { gc?: unknown }).gc !== 'function') throw new Error('run with node --expose-gc');
  let mod: PipelineModule;
  try {
    mod = (await import(new URL('../sensor/src/pipeline.ts', import.meta.url).href)) as PipelineModule;
  } catch (err) {
    return { ...base, ok: false, available: false, error: `pipeline not available (${(err as Error).message.split('\n')[0]})` };
  }
  let records = 0;
  const on_record = (): void => { records++; };

  if (typeof mod.Pipeline === 'function') {
    const before = liveHeap();
    const pipeline = new mod.Pipeline({}, on_record);
    let packets = 0;
    const t0 = process.hrtime.bigint();
    synthesise(args.flows, args.payload, (buf, len, ts_sec, ts_usec) => {
      packets++;
      pipeline.onPacket(buf, 0, len, len, 1, ts_sec, ts_usec * 1000);
    });
    const elapsed_ns = Number(process.hrtime.bigint() - t0);
    const after = liveHeap();
    const stats = pipeline.statistics();
    const tracked = stats.flows.active ?? stats.flows.created;
    const result = {
      ...base,
      ok: true,
      method: 'in-memory, measured with every flow open',
      packets,
      elapsed_ns,
      heap_before_bytes: before,
      heap_after_bytes: after,
      flows_tracked: tracked,
      bytes_per_flow: (after - before) / tracked,
      flow_stats: stats.flows,
      records_before_finish: records,
      rss_max_bytes: resourceUsage().maxRSS * 1024,
    };
    pipeline.finish();
    return result;
  }

  if (typeof mod.analyzeCaptureFile === 'function') {
    const dir = fileURLToPath(new URL('./out/', import.meta.url));
    mkdirSync(dir, { recursive: true });
    const file = `${dir}flows-${args.flows}-${args.payload}.pcap`;
    if (!existsSync(file)) {
      const w = new PcapWriter(file);
      // write the same frames through the writer's buffer
      synthesise(args.flows, args.payload, (buf, len, ts_sec, ts_usec) => writeRaw(w, buf, len, ts_sec, ts_usec));
      w.close();
    }
    const before = liveHeap();
    let peak = before;
    const timer = setInterval(() => { peak = Math.max(peak, liveHeap()); }, 100);
    const t0 = process.hrtime.bigint();
    const stats = await mod.analyzeCaptureFile(file, {}, on_record);
    const elapsed_ns = Number(process.hrtime.bigint() - t0);
    clearInterval(timer);
    const tracked = stats.flows.peak ?? stats.flows.created;
    return {
      ...base,
      ok: true,
      method: 'sampled (analyzeCaptureFile; live heap sampled every 100 ms, a lower bound)',
      file,
      packets: stats.packets,
      elapsed_ns,
      heap_before_bytes: before,
      heap_after_bytes: peak,
      flows_tracked: tracked,
      bytes_per_flow: (peak - before) / tracked,
      flow_stats: stats.flows,
      rss_max_bytes: resourceUsage().maxRSS * 1024,
    };
  }
  return { ...base, ok: false, available: false, error: 'pipeline not available (sensor/src/pipeline.ts exports neither Pipeline nor analyzeCaptureFile)' };
}

/** Appends an already built frame as a pcap record. */
function writeRaw(w: PcapWriter, frame: Uint8Array, len: number, ts_sec: number, ts_usec: number): void {
  w.raw(ts_sec, ts_usec, frame, len);
}

try {
  console.log(JSON.stringify(await main()));
} catch (err) {
  console.log(JSON.stringify({ ok: false, available: true, error: (err as Error).message }));
  process.exitCode = 1;
}
