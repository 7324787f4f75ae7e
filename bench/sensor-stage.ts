/**
 * One sensor stage over one capture file, in a process of its own (so that stages
 * share neither JIT state nor heap, and peak memory is per stage):
 *
 *   node --import tsx bench/sensor-stage.ts read|decode|pipeline|pipeline-records FILE
 *   node --import tsx bench/sensor-stage.ts pipeline-summaries|pipeline-summaries-warm FILE [RULES_FILE]
 *   node --import tsx bench/sensor-stage.ts record-names|pipeline-summaries-known FILE RULES_FILE
 *   node --expose-gc --import tsx bench/sensor-stage.ts pipeline-memory FILE|gen:PACKETS[:SEED]
 *
 * Prints one JSON line:
 *   { stage, file, ok, elapsed_ns, cpu_ns, packets, bytes, rss_start_bytes, rss_max_bytes,
 *     heap_start_bytes, heap_bytes, ... }
 * where elapsed_ns covers the stage's work only (not Node/tsx start-up or module
 * loading), cpu_ns the process's CPU time (user + system, all threads) over the same span
 * (steadier than elapsed_ns when other work shares the cores), main_cpu_ns the main
 * thread's own CPU time over the span (null off Linux; see mainThreadCpuNs), rss_max_bytes is the process's peak RSS (getrusage), and heap_bytes the
 * largest heapUsed + arrayBuffers sampled during the run (every 2^16 packets where
 * the stage sees packets, every 20 ms otherwise, and at the end). When the stage's
 * module cannot be imported: { stage, ok: false, error: "... not available: ..." }.
 *
 * `pipeline-summaries` is the full pipeline with transactions named (the analyzers'
 * default names, or the rules of RULES_FILE) and aggregated into 300 s interval
 * summaries, as a sensor runs in production; the summaries are built and counted.
 * `pipeline-summaries-warm` is the same, timed on a second pass over the file in the same
 * process (a new pipeline and aggregator, the same signature set): the speed of a sensor
 * that has been running for a while, after V8 has compiled its hot code.
 *
 * `pipeline-summaries-known` (RULES_FILE needed) is `pipeline-summaries` with the rules' names
 * handed out by a stand-in that already knows them, in the order the pipeline asks: the
 * request text is kept and the same keys are aggregated as with the rules, but nothing is
 * matched, so that the rules' cost splits into naming and the rest. The names come from
 * `record-names FILE RULES_FILE`, run once before (it writes FILE.names-RULES.json).
 *
 * `pipeline-memory` is the full pipeline driven by hand (the `Pipeline` sink fed by
 * `readCaptureFile`) to see whether memory stays flat along the file: after each tenth
 * of the file it forces a gc and records the live heap (heapUsed + arrayBuffers above
 * the level before the pipeline was built) and the flows tracked then. Its time is
 * not a throughput figure (ten full gcs). With `gen:PACKETS[:SEED]` the packets come
 * from bench/generate-http-capture.ts in memory instead of a file (the live heap then
 * also holds the generator's own, constant, state: ~100 connections and its bodies).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { memoryUsage, resourceUsage } from 'node:process';

/**
 * CPU time of the calling thread so far, in ns (Linux: the first field of
 * /proc/thread-self/schedstat, the scheduler's own count of this thread's time on a CPU,
 * ns-precise; with paravirtual steal accounting, time the hypervisor gave to another guest
 * is not in it). The stage's work runs on the main thread, so this is its one core's work,
 * without the time it waited for the CPU or for the file's reads, and without V8's
 * background compile and GC threads (which `cpu_ns` includes). null where there is no
 * such file. process.threadCpuUsage() would do the same but is not in Node 20.
 */
function mainThreadCpuNs(): number | null {
  try {
    const v = Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[0]);
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

/**
 * Under `valgrind --tool=callgrind --instr-atstart=no` (bench/run.ts --instructions sets
 * WIRETIME_BENCH_CALLGRIND=1): switches instruction counting on just before the timed work
 * and off after it, so that the count is the stage's work alone, as `elapsed_ns` is.
 * callgrind_control reaches the process through files callgrind polls; the call waits for
 * its answer.
 */
function callgrindCollect(on: boolean): void {
  if (process.env.WIRETIME_BENCH_CALLGRIND !== '1') return;
  const r = spawnSync('callgrind_control', ['-i', on ? 'on' : 'off', String(process.pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`callgrind_control -i ${on ? 'on' : 'off'}: ${r.error?.message ?? r.stderr.trim()}`);
}

type Stage = 'read' | 'decode' | 'pipeline' | 'pipeline-records' | 'pipeline-memory' | 'pipeline-summaries' | 'pipeline-summaries-warm'
  | 'pipeline-summaries-known' | 'record-names';
const STAGE_NAMES: readonly Stage[] = ['read', 'decode', 'pipeline', 'pipeline-records', 'pipeline-memory', 'pipeline-summaries', 'pipeline-summaries-warm',
  'pipeline-summaries-known', 'record-names'];

/** Where `record-names` keeps the names RULES give the transactions of FILE (beside FILE). */
function namesFile(file: string, rules: string): string {
  return `${file}.names-${basename(rules)}.json`;
}

interface StageResult {
  stage: Stage;
  file: string;
  ok: boolean;
  error?: string;
  elapsed_ns?: number;
  packets?: number;
  bytes?: number;
  rss_start_bytes?: number;
  rss_max_bytes?: number;
  heap_start_bytes?: number;
  heap_bytes?: number;
  [extra: string]: unknown;
}

/** Shapes of the sensor modules as this script uses them (imported dynamically). */
interface PacketSinkLike {
  onPacket(buf: Uint8Array, offset: number, caplen: number, wirelen: number, linktype: number, ts_sec: number, ts_nsec: number): void;
}
interface PcapFileSourceModule {
  readCaptureFile(path: string, sink: PacketSinkLike, options?: object): Promise<{ packets: number; error: Error | null }>;
}
interface DecodedPacketLike {
  transport: number;
}
interface DecoderModule {
  Decoder: new () => {
    decode(buf: Uint8Array, off: number, caplen: number, wirelen: number, linktype: number, ts_sec: number, ts_nsec: number, pkt: DecodedPacketLike): boolean;
  };
}
interface DecodedPacketModule {
  DecodedPacket: new () => DecodedPacketLike;
}
interface PipelineStats {
  packets: number;
  bytes: number;
  transactions: number | { total: number };
  flows: { created: number; [k: string]: number };
  [k: string]: unknown;
}
interface PipelineModule {
  Pipeline?: new (options: object, on_record: ((record: { type?: string }) => void) | null) => PacketSinkLike & {
    statistics(): PipelineStats;
    finish(summary?: unknown): PipelineStats;
  };
  analyzeCaptureFile(path: string, options: object, on_record: ((record: { type?: string }) => void) | null): Promise<PipelineStats>;
}

const SENSOR = new URL('../sensor/src/', import.meta.url);

async function load<T>(rel: string, what: string): Promise<T> {
  try {
    return (await import(new URL(rel, SENSOR).href)) as T;
  } catch (err) {
    const e = new Error(`${what} not available (${rel}: ${(err as Error).message.split('\n')[0]})`);
    e.name = 'NotAvailable';
    throw e;
  }
}

let heap_peak = 0;
function sampleHeap(): void {
  const m = memoryUsage();
  const h = m.heapUsed + m.arrayBuffers;
  if (h > heap_peak) heap_peak = h;
}

async function run(stage: Stage, file: string): Promise<StageResult> {
  const base: StageResult = { stage, file, ok: false };
  // Load everything before the clock starts.
  let work: () => Promise<Partial<StageResult>>;
  if (stage === 'read' || stage === 'decode') {
    const src = await load<PcapFileSourceModule>('capture/pcap-file-source.ts', 'capture reader');
    if (typeof src.readCaptureFile !== 'function') throw new Error('capture/pcap-file-source.ts exports no readCaptureFile');
    if (stage === 'read') {
      work = async () => {
        let packets = 0;
        let bytes = 0;
        const summary = await src.readCaptureFile(file, {
          onPacket(_buf, _off, _caplen, wirelen) {
            packets++;
            bytes += wirelen;
            if ((packets & 0xffff) === 0) sampleHeap();
          },
        });
        if (summary.error) throw summary.error;
        return { packets, bytes };
      };
    } else {
      const dec = await load<DecoderModule>('decode/decoder.ts', 'decoder');
      const dp = await load<DecodedPacketModule>('decode/decoded-packet.ts', 'decoded packet');
      work = async () => {
        const decoder = new dec.Decoder();
        const pkt = new dp.DecodedPacket();
        let packets = 0;
        let bytes = 0;
        let decoded = 0;
        let tcp = 0;
        const summary = await src.readCaptureFile(file, {
          onPacket(buf, off, caplen, wirelen, linktype, ts_sec, ts_nsec) {
            packets++;
            bytes += wirelen;
            if (decoder.decode(buf, off, caplen, wirelen, linktype, ts_sec, ts_nsec, pkt)) {
              decoded++;
              if (pkt.transport === 6) tcp++;
            }
            if ((packets & 0xffff) === 0) sampleHeap();
          },
        });
        if (summary.error) throw summary.error;
        return { packets, bytes, decoded, tcp };
      };
    }
  } else if (stage === 'pipeline-summaries' || stage === 'pipeline-summaries-warm' || stage === 'pipeline-summaries-known' || stage === 'record-names') {
    const src = await load<typeof import('../sensor/src/capture/pcap-file-source.ts')>('capture/pcap-file-source.ts', 'capture reader');
    const pl = await load<typeof import('../sensor/src/pipeline.ts')>('pipeline.ts', 'pipeline');
    const agg = await load<typeof import('../sensor/src/aggregate/interval-aggregator.ts')>('aggregate/interval-aggregator.ts', 'interval aggregator');
    const sig = await load<typeof import('../sensor/src/classify/signature-set.ts')>('classify/signature-set.ts', 'signature set');
    const rules = process.argv[4];
    const set = rules === undefined ? null : sig.SignatureSet.fromFiles([rules]);
    let classifier: import('../sensor/src/pipeline.ts').TransactionClassifier | null = set;
    let known: { names: (string | null)[]; next: number } | null = null;
    let record: (() => Promise<Partial<StageResult>>) | null = null;
    if (stage === 'record-names' || stage === 'pipeline-summaries-known') {
      if (set === null || rules === undefined) throw new Error(`${stage} needs a RULES_FILE`);
      const path = namesFile(file, rules);
      if (stage === 'record-names') {
        // The names the rules give, in the order the pipeline asks for them (timed, but not a bench row).
        const names: (string | null)[] = [];
        classifier = { request_bytes_needed: set.request_bytes_needed, classifyText: (p, r, t) => { const n = set.classifyText(p, r, t); names.push(n); return n; } };
        const recorder = classifier;
        record = async () => {
          const pipeline = new pl.Pipeline({ classifier: recorder }, null);
          const summary = await src.readCaptureFile(file, pipeline);
          if (summary.error) throw summary.error;
          pipeline.finish(summary); // the transactions still open at the end are named too
          writeFileSync(path, JSON.stringify(names));
          return { packets: summary.packets, transactions: names.length, written_to: path };
        };
      } else {
        // Read before the clock; in the timed pass the names are handed out in turn, the
        // request text still being kept (request_bytes_needed as with the rules).
        let names: (string | null)[];
        try {
          names = JSON.parse(readFileSync(path, 'utf8')) as (string | null)[];
        } catch (e) {
          throw new Error(`${path}: run "record-names ${file} ${rules}" first (${(e as Error).message})`, { cause: e });
        }
        // One string per distinct name, as the rules hand out the string they keep: JSON.parse
        // makes a new string per element, which every lookup by name would hash anew.
        const canonical = new Map<string, string>();
        names = names.map((n) => {
          if (n === null) return null;
          const c = canonical.get(n);
          if (c !== undefined) return c;
          canonical.set(n, n);
          return n;
        });
        const k = { names, next: 0 };
        known = k;
        classifier = { request_bytes_needed: set.request_bytes_needed, classifyText: () => (k.next < k.names.length ? k.names[k.next++]! : (k.next++, null)) };
      }
    }
    const pass = async (): Promise<Partial<StageResult>> => {
      let summaries = 0;
      const aggregator = new agg.IntervalAggregator({ sensor_id: 'bench' }, () => { summaries++; });
      // As `wiretime sensor --summaries` runs without raw output: metrics straight to the aggregator.
      const pipeline = new pl.Pipeline({ classifier, metrics_sink: aggregator, on_clock: (now_s) => aggregator.advanceTo(now_s) }, null);
      const summary = await src.readCaptureFile(file, pipeline);
      const stats = pipeline.finish(summary);
      aggregator.flush();
      if (known !== null && known.next !== known.names.length) {
        throw new Error(`the pipeline asked for ${known.next} names, ${known.names.length} were recorded: record them again`);
      }
      return { packets: stats.packets, bytes: stats.bytes, transactions: stats.transactions.total, summaries, rules: set?.size ?? 0, signatures: Object.keys(stats.transactions.by_signature).length };
    };
    if (stage === 'pipeline-summaries-warm') {
      await pass(); // before the clock: V8 compiles the hot code, the rules' regexes run once
      set?.startInterval();
    }
    work = record ?? pass;
  } else if (stage === 'pipeline-memory') {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc === undefined) throw new Error('pipeline-memory needs node --expose-gc');
    const src = await load<PcapFileSourceModule>('capture/pcap-file-source.ts', 'capture reader');
    const pl = await load<PipelineModule>('pipeline.ts', 'pipeline');
    const Pipeline = pl.Pipeline;
    if (typeof Pipeline !== 'function') {
      const e = new Error('pipeline not available (sensor/src/pipeline.ts exports no Pipeline class)');
      e.name = 'NotAvailable';
      throw e;
    }
    const live = (): number => {
      gc();
      gc();
      const m = memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    work = async () => {
      const base_live = live();
      const pipeline = new Pipeline({}, () => undefined);
      const checkpoints: { fraction: number; packets: number; live_heap_bytes: number; flows_active: number | null }[] = [];
      const checkpoint = (fraction: number): void => {
        const st = pipeline.statistics();
        checkpoints.push({
          fraction: Math.round(fraction * 1000) / 1000,
          packets: st.packets,
          live_heap_bytes: live() - base_live,
          flows_active: typeof st.flows.active === 'number' ? st.flows.active : null,
        });
      };
      const gen = /^gen:(\d+)(?::(\d+))?$/.exec(file);
      let summary: unknown = null;
      if (gen !== null) {
        // the generator's packets straight into the pipeline, no file
        const total = Number(gen[1]);
        const step = Math.max(1, Math.floor(total / 10));
        let n = 0;
        const { generateHttpCapture } = await import('./generate-http-capture.ts');
        generateHttpCapture({
          packets: total,
          seed: Number(gen[2] ?? 1),
          out: (frame, off, len, ts_sec, ts_usec) => {
            pipeline.onPacket(frame, off, len, len, 1, ts_sec, ts_usec * 1000);
            if (++n % step === 0) checkpoint(n / total);
          },
        });
      } else {
        let next = 0.1;
        const s = await src.readCaptureFile(file, pipeline, {
          on_progress(bytes_read: number, file_bytes: number) {
            if (bytes_read < next * file_bytes && bytes_read < file_bytes) return;
            while (next * file_bytes <= bytes_read) next += 0.1;
            checkpoint(bytes_read / file_bytes);
          },
        });
        if (s.error) throw s.error;
        summary = s;
      }
      const stats = pipeline.finish(summary);
      return { packets: stats.packets, bytes: stats.bytes, checkpoints, live_heap_after_finish_bytes: live() - base_live };
    };
  } else {
    const pl = await load<PipelineModule>('pipeline.ts', 'pipeline');
    if (typeof pl.analyzeCaptureFile !== 'function') {
      const e = new Error('pipeline not available (sensor/src/pipeline.ts exports no analyzeCaptureFile)');
      e.name = 'NotAvailable';
      throw e;
    }
    work = async () => {
      const records: Record<string, number> = {};
      // `pipeline`: transactions and connections are made and counted, no record objects.
      // `pipeline-records`: a cheap consumer, so the pipeline also builds every record
      // object (addresses and RFC 3339 times as text); nothing formats or writes them.
      const stats = await pl.analyzeCaptureFile(file, {}, stage === 'pipeline' ? null : (r) => {
        const t = r.type ?? 'record';
        records[t] = (records[t] ?? 0) + 1;
      });
      const tx = typeof stats.transactions === 'number' ? stats.transactions : stats.transactions?.total;
      return { packets: stats.packets, bytes: stats.bytes, transactions: tx, flows: stats.flows, records };
    };
  }

  const m0 = memoryUsage();
  base.rss_start_bytes = m0.rss;
  base.heap_start_bytes = m0.heapUsed + m0.arrayBuffers;
  heap_peak = base.heap_start_bytes;
  const timer = setInterval(sampleHeap, 20);
  const c0 = process.cpuUsage();
  const m0_cpu = mainThreadCpuNs();
  callgrindCollect(true);
  const t0 = process.hrtime.bigint();
  let r: Partial<StageResult>;
  try {
    r = await work();
  } finally {
    clearInterval(timer); // else a failed stage's process would never exit
  }
  const t1 = process.hrtime.bigint();
  callgrindCollect(false);
  const m1_cpu = mainThreadCpuNs();
  const c1 = process.cpuUsage(c0);
  sampleHeap();
  return {
    ...base,
    ...r,
    ok: true,
    elapsed_ns: Number(t1 - t0),
    cpu_ns: (c1.user + c1.system) * 1000,
    main_cpu_ns: m0_cpu === null || m1_cpu === null ? null : m1_cpu - m0_cpu,
    rss_max_bytes: resourceUsage().maxRSS * 1024,
    heap_bytes: heap_peak,
  };
}

const [stage, file] = process.argv.slice(2);
if (!STAGE_NAMES.includes(stage as Stage) || file === undefined) {
  console.error(`usage: node [--expose-gc] --import tsx bench/sensor-stage.ts ${STAGE_NAMES.join('|')} FILE [RULES_FILE]`);
  process.exit(2);
}
try {
  console.log(JSON.stringify(await run(stage as Stage, file)));
} catch (err) {
  const e = err as Error;
  const available = e.name !== 'NotAvailable';
  console.log(JSON.stringify({ stage, file, ok: false, available, error: available ? `${e.name}: ${e.message}` : e.message }));
  process.exitCode = available ? 1 : 0;
}
