/**
 * Live capture from a network interface, for `wiretime sensor -i IFACE`.
 *
 * The binding is the npm package `cap` (an optional dependency, loaded lazily), patched at
 * install (patches/cap+0.2.1.patch) so that it hands over the pcap header's timestamp in
 * nanoseconds and the wire length of every packet, reads many packets per call into a
 * buffer it keeps a reference to, reports pcap_stats and loads in worker threads.
 *
 * Capture runs on its own thread (live-capture-worker.ts). Packets cross to the main
 * thread in batches through a ring of slots in one SharedArrayBuffer: the worker copies
 * packets into a free slot as records laid out like a nanosecond pcap file's (16-byte
 * header: little-endian seconds, nanoseconds, captured length, wire length; then the
 * bytes), posts the slot's number, and the main thread hands every packet to the
 * {@link PacketSink} exactly as the file reader does, then frees the slot. The ring is
 * the bounded queue between the two threads; `batch_queue_full` counts the times the
 * capture thread found no free slot (it then leaves packets in the kernel buffer, whose
 * drops pcap_stats reports).
 *
 * Time: packets carry the kernel's timestamps. When traffic stops, the capture thread
 * sends ticks: the capture clock (CLOCK_REALTIME, the clock the kernel stamps packets
 * with) at a moment before which every packet has been delivered; {@link LiveSink.advanceTo}
 * moves the pipeline's clock so that flows expire and intervals close on a quiet link.
 */
import { Worker } from 'node:worker_threads';
import type { PacketSink } from './packet-source.ts';
import { LinkType } from './packet-source.ts';

/** Options of {@link LiveCapture.open}. */
export interface LiveCaptureOptions {
  /** interface name as libpcap knows it (`eth0`, `lo`, `any`) */
  interface: string;
  /** BPF filter expression (tcpdump syntax), compiled by libpcap; '' keeps everything */
  filter: string;
  /** bytes kept of each packet (default 262 144, as tcpdump) */
  snaplen_bytes?: number;
  /** kernel capture buffer (default 64 MiB) */
  buffer_bytes?: number;
  /** promiscuous mode (default true) */
  promiscuous?: boolean;
  /** bytes per slot of the ring between the threads (default 1 MiB) */
  slot_bytes?: number;
  /** slots in the ring (default 32) */
  slots?: number;
  /** a slot with packets is handed over at the latest this long after its first packet (default 20 ms) */
  flush_ms?: number;
  /** with no traffic, the capture clock is sent this often (default 100 ms) */
  tick_ms?: number;
}

/** What a live capture feeds: packets, and the clock when there are none. */
export interface LiveSink extends PacketSink {
  /** capture time has reached `ts_sec`.`ts_nsec`: no packet stamped earlier is still to come */
  advanceTo(ts_sec: number, ts_nsec: number): void;
}

/** Counters of a live capture (pcap_stats, since open; and the thread hand-over). */
export interface LiveCaptureStats {
  interface: string;
  /** LINKTYPE_* of the interface */
  linktype: number;
  /** whether the kernel gives nanosecond timestamps (else microseconds) */
  nanosecond_timestamps: boolean;
  /** packets handed to the sink */
  packets: number;
  /**
   * pcap_stats ps_recv: packets the kernel received that passed the filter (on Linux's
   * loopback each packet is counted twice, outgoing and incoming; libpcap keeps one)
   */
  received: number;
  /** pcap_stats ps_drop: packets dropped for lack of room in the kernel buffer */
  kernel_drops: number;
  /** pcap_stats ps_ifdrop: packets dropped by the interface or its driver */
  interface_drops: number;
  /** slots handed from the capture thread to the main thread */
  batches: number;
  /** times the capture thread found every slot still being analysed */
  batch_queue_full: number;
}

/** Why live capture could not start or went on. */
export class LiveCaptureError extends Error {
  readonly kind: 'not_installed' | 'open_failed' | 'capture_failed' | 'worker_failed';
  constructor(kind: LiveCaptureError['kind'], message: string) {
    super(message);
    this.name = 'LiveCaptureError';
    this.kind = kind;
  }
}

/** What to run when the binding is missing (the live command prints it). */
export const LIVE_CAPTURE_INSTALL_HINT =
  'live capture needs the optional package "cap", built against libpcap: run `apt-get install -y libpcap-dev` ' +
  '(Debian/Ubuntu; libpcap-devel elsewhere), then `npm ci` (or `npm install`) in the wiretime directory, which builds it and applies patches/cap+0.2.1.patch';

// ---- shared between this file and live-capture-worker.ts

/** Int32 control words: [0] stop request, [1 + i] state of slot i. */
export const CONTROL_STOP = 0;
export const SLOT_FREE = 0;
export const SLOT_FULL = 1;
/** Float64 statistics written by the capture thread. */
export const STAT_RECEIVED = 0;
export const STAT_KERNEL_DROP = 1;
export const STAT_IFDROP = 2;
export const STAT_BATCHES = 3;
export const STAT_QUEUE_FULL = 4;
const STAT_COUNT = 5;

/** workerData of the capture thread. */
export interface WorkerSetup {
  interface: string;
  filter: string;
  snaplen_bytes: number;
  buffer_bytes: number;
  promiscuous: boolean;
  slot_bytes: number;
  slots: number;
  flush_ms: number;
  tick_ms: number;
  ring: SharedArrayBuffer;
  control: SharedArrayBuffer;
  stats: SharedArrayBuffer;
}

/** Messages from the capture thread. */
export type WorkerMessage =
  | { type: 'opened'; dlt: number; nanosecond: boolean }
  | { type: 'batch'; slot: number; bytes: number }
  | { type: 'tick'; ts_sec: number; ts_nsec: number }
  | { type: 'error'; kind: LiveCaptureError['kind']; message: string }
  | { type: 'stopped' };

/** The patched binding's interface, as far as wiretime uses it. */
export interface CapBinding {
  open(device: string, filter: string, buffer_bytes: number, buffer: Buffer,
    options: { snaplen: number; promisc: boolean; immediate: boolean; timeout: number; batch: boolean }): string;
  openOffline(path: string, filter: string, buffer: Buffer): string;
  /** bytes of records written into buffer[offset, offset + length); -1 at the end of a file */
  readBatch(offset: number, length: number, timeout_ms: number): number;
  stats(): { ps_recv: number; ps_drop: number; ps_ifdrop: number };
  datalink(): number;
  tstampNano(): boolean;
  close(): boolean;
}

export interface CapModule {
  Cap: { new(): CapBinding; prototype: Partial<CapBinding> };
}

const RECORD_HEADER_BYTES = 16;
const DEFAULTS = {
  snaplen_bytes: 262_144,
  buffer_bytes: 64 << 20,
  promiscuous: true,
  slot_bytes: 1 << 20,
  slots: 32,
  flush_ms: 20,
  tick_ms: 100,
};

/**
 * DLT_* (what libpcap reports) to LINKTYPE_* (what the decoder and capture files use):
 * equal except for raw IP, whose DLT differs between systems.
 */
export function linkTypeOfDlt(dlt: number): number {
  if (dlt === 12 || dlt === 14) return LinkType.RAW;
  return dlt;
}

/**
 * Hands every record in `buf[0, bytes)` to `sink`; returns the number of packets. The
 * records are the capture thread's (see the file comment); the sink sees the same
 * arguments the file reader gives it.
 */
export function deliverRecords(buf: Uint8Array, view: DataView, start: number, bytes: number, linktype: number, sink: PacketSink): number {
  let pos = start;
  const end = start + bytes;
  let packets = 0;
  while (pos + RECORD_HEADER_BYTES <= end) {
    const ts_sec = view.getUint32(pos, true);
    const ts_nsec = view.getUint32(pos + 4, true);
    const caplen = view.getUint32(pos + 8, true);
    const wirelen = view.getUint32(pos + 12, true);
    const data = pos + RECORD_HEADER_BYTES;
    if (data + caplen > end) break;
    sink.onPacket(buf, data, caplen, wirelen, linktype, ts_sec, ts_nsec);
    packets++;
    pos = data + caplen;
  }
  return packets;
}

/**
 * A running live capture. Create with {@link LiveCapture.open}; stop with
 * {@link LiveCapture.stop}. Packets reach the sink on the main thread's event loop, in
 * capture order, between other work.
 */
export class LiveCapture {
  readonly interface: string;
  /** LINKTYPE_* of the interface */
  readonly linktype: number;
  readonly nanosecond_timestamps: boolean;
  /** settles when the capture thread has ended: after stop(), or with the error that ended it */
  readonly done: Promise<void>;
  private readonly worker: Worker;
  private readonly control: Int32Array;
  private readonly stats_words: Float64Array;
  private packets = 0;

  private constructor(iface: string, linktype: number, nano: boolean, worker: Worker, control: Int32Array, stats: Float64Array, done: Promise<void>) {
    this.interface = iface;
    this.linktype = linktype;
    this.nanosecond_timestamps = nano;
    this.worker = worker;
    this.control = control;
    this.stats_words = stats;
    this.done = done;
  }

  /**
   * Starts the capture thread and opens the interface there. Resolves once the capture is
   * open (the moment to drop privileges); rejects with a {@link LiveCaptureError}: the
   * binding is not installed (`not_installed`, see {@link LIVE_CAPTURE_INSTALL_HINT}), or
   * libpcap refused the interface, the filter or the permissions (`open_failed`).
   */
  static open(options: LiveCaptureOptions, sink: LiveSink): Promise<LiveCapture> {
    const o = {
      interface: options.interface,
      filter: options.filter,
      snaplen_bytes: options.snaplen_bytes ?? DEFAULTS.snaplen_bytes,
      buffer_bytes: options.buffer_bytes ?? DEFAULTS.buffer_bytes,
      promiscuous: options.promiscuous ?? DEFAULTS.promiscuous,
      slot_bytes: options.slot_bytes ?? DEFAULTS.slot_bytes,
      slots: options.slots ?? DEFAULTS.slots,
      flush_ms: options.flush_ms ?? DEFAULTS.flush_ms,
      tick_ms: options.tick_ms ?? DEFAULTS.tick_ms,
    };
    if (o.interface === '') throw new LiveCaptureError('open_failed', 'no interface given');
    if (!Number.isInteger(o.snaplen_bytes) || o.snaplen_bytes < 64 || o.snaplen_bytes > 262_144) {
      throw new LiveCaptureError('open_failed', `snap length ${o.snaplen_bytes}: expected 64..262144 bytes`);
    }
    if (!Number.isInteger(o.buffer_bytes) || o.buffer_bytes < 65_536 || o.buffer_bytes > 2 ** 31 - 1) {
      throw new LiveCaptureError('open_failed', `kernel buffer ${o.buffer_bytes} bytes: expected 64 KiB..2 GiB`);
    }
    // A slot always takes at least one whole packet.
    const slot_bytes = Math.max(o.slot_bytes, 2 * (o.snaplen_bytes + RECORD_HEADER_BYTES));
    const slots = Math.max(2, Math.floor(o.slots));
    const ring = new SharedArrayBuffer(slot_bytes * slots);
    const control_sab = new SharedArrayBuffer(4 * (1 + slots));
    const stats_sab = new SharedArrayBuffer(8 * STAT_COUNT);
    const setup: WorkerSetup = {
      interface: o.interface, filter: o.filter, snaplen_bytes: o.snaplen_bytes, buffer_bytes: o.buffer_bytes,
      promiscuous: o.promiscuous, slot_bytes, slots, flush_ms: o.flush_ms, tick_ms: o.tick_ms,
      ring, control: control_sab, stats: stats_sab,
    };
    const control = new Int32Array(control_sab);
    const stats = new Float64Array(stats_sab);
    const buf = new Uint8Array(ring);
    const view = new DataView(ring);
    const worker = startWorker(setup);

    return new Promise<LiveCapture>((resolve, reject) => {
      let capture: LiveCapture | null = null;
      let linktype = 0;
      let failure: LiveCaptureError | null = null;
      let resolveDone!: () => void;
      let rejectDone!: (err: Error) => void;
      const done = new Promise<void>((res, rej) => {
        resolveDone = res;
        rejectDone = rej;
      });
      // Unhandled only if nobody looks; the sensor command awaits it.
      done.catch(() => undefined);

      worker.on('message', (m: WorkerMessage) => {
        switch (m.type) {
          case 'opened':
            linktype = linkTypeOfDlt(m.dlt);
            capture = new LiveCapture(o.interface, linktype, m.nanosecond, worker, control, stats, done);
            resolve(capture);
            break;
          case 'batch': {
            const n = deliverRecords(buf, view, m.slot * slot_bytes, m.bytes, linktype, sink);
            capture!.packets += n;
            Atomics.store(control, 1 + m.slot, SLOT_FREE);
            Atomics.notify(control, 1 + m.slot);
            break;
          }
          case 'tick':
            sink.advanceTo(m.ts_sec, m.ts_nsec);
            break;
          case 'error':
            failure = new LiveCaptureError(m.kind, m.kind === 'not_installed' ? `${LIVE_CAPTURE_INSTALL_HINT} (${m.message})` : m.message);
            break;
          case 'stopped':
            break;
        }
      });
      worker.on('error', (err) => {
        failure ??= new LiveCaptureError('worker_failed', `capture thread: ${err.message}`);
      });
      worker.on('exit', () => {
        if (capture === null) {
          reject(failure ?? new LiveCaptureError('worker_failed', 'capture thread ended before the interface was open'));
        } else if (failure !== null) {
          rejectDone(failure);
        } else {
          resolveDone();
        }
      });
    });
  }

  /** Counters so far (the kernel's are refreshed by the capture thread about once a second). */
  stats(): LiveCaptureStats {
    const s = this.stats_words;
    return {
      interface: this.interface,
      linktype: this.linktype,
      nanosecond_timestamps: this.nanosecond_timestamps,
      packets: this.packets,
      received: s[STAT_RECEIVED]!,
      kernel_drops: s[STAT_KERNEL_DROP]!,
      interface_drops: s[STAT_IFDROP]!,
      batches: s[STAT_BATCHES]!,
      batch_queue_full: s[STAT_QUEUE_FULL]!,
    };
  }

  /**
   * Stops capturing: the capture thread hands over what the kernel still holds, closes
   * the interface and ends; every packet reaches the sink before this resolves. Rejects
   * with the error that ended the capture, if one did.
   */
  async stop(): Promise<LiveCaptureStats> {
    Atomics.store(this.control, CONTROL_STOP, 1);
    for (let i = 1; i < this.control.length; i++) Atomics.notify(this.control, i);
    await this.done;
    return this.stats();
  }

  /** Ends the capture thread at once (after an error elsewhere); packets in flight are lost. */
  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}

/**
 * The capture thread runs TypeScript like the rest of wiretime: under tsx, whose loader a
 * worker does not inherit, so the thread registers it before importing its module.
 */
function startWorker(setup: WorkerSetup): Worker {
  const url = new URL('./live-capture-worker.ts', import.meta.url);
  const api = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true, workerData: setup });
}
