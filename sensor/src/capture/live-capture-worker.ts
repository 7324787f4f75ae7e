/**
 * The capture thread of live mode (started by live-source.ts; not imported by anything
 * else). It opens the interface through the patched `cap` binding, then loops: read a
 * batch of packets straight into a free slot of the shared ring, hand the slot to the
 * main thread, repeat. Nothing here waits on the main thread's event loop, so analysis,
 * aggregation and shipping cannot delay capture; when every slot is still being
 * analysed, the kernel buffer holds what arrives (and its drops are counted by pcap_stats).
 *
 * Messages to the main thread, in order: `opened` (or `error`), then `batch` and `tick`
 * in capture order, then `stopped`.
 */
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import {
  CONTROL_STOP, SLOT_FREE, SLOT_FULL, STAT_BATCHES, STAT_IFDROP, STAT_KERNEL_DROP, STAT_QUEUE_FULL, STAT_RECEIVED,
  type CapBinding, type CapModule, type WorkerMessage, type WorkerSetup,
} from './live-source.ts';

const setup = workerData as WorkerSetup;
const port = parentPort!;
const post = (m: WorkerMessage): void => port.postMessage(m);

/** How long the kernel may hold a block of packets (TPACKET_V3 block timeout), ms. */
const BLOCK_TIMEOUT_MS = 10;

function loadCap(): CapModule | null {
  try {
    return createRequire(import.meta.url)('cap') as CapModule;
  } catch (err) {
    // The first line: "Cannot find module 'cap'" without the require stack.
    post({ type: 'error', kind: 'not_installed', message: (err as Error).message.split('\n')[0]! });
    return null;
  }
}

function run(): void {
  const cap = loadCap();
  if (cap === null) return;
  if (typeof cap.Cap.prototype.readBatch !== 'function') {
    post({ type: 'error', kind: 'not_installed', message: 'cap is installed without wiretime\'s patch (no readBatch)' });
    return;
  }
  const ring = Buffer.from(setup.ring);
  const control = new Int32Array(setup.control);
  const stats = new Float64Array(setup.stats);
  const c: CapBinding = new cap.Cap();
  try {
    // The ring is held by this thread (and the main thread) for the capture's lifetime;
    // the patched binding holds its own reference too.
    c.open(setup.interface, setup.filter, setup.buffer_bytes, ring, {
      snaplen: setup.snaplen_bytes, promisc: setup.promiscuous, immediate: false, timeout: BLOCK_TIMEOUT_MS, batch: true,
    });
  } catch (err) {
    post({ type: 'error', kind: 'open_failed', message: (err as Error).message });
    return;
  }
  post({ type: 'opened', dlt: c.datalink(), nanosecond: c.tstampNano() });

  const slot_bytes = setup.slot_bytes;
  const slots = setup.slots;
  const flush_ms = setup.flush_ms;
  const tick_ms = setup.tick_ms;
  /** a slot this full is handed over rather than topped up */
  const nearly_full_bytes = slot_bytes - Math.min(slot_bytes >> 3, setup.snaplen_bytes + 16);
  let slot = 0;
  let batches = 0;
  let queue_full = 0;
  let last_stats_ms = 0;

  const writeStats = (): void => {
    const s = c.stats();
    stats[STAT_RECEIVED] = s.ps_recv;
    stats[STAT_KERNEL_DROP] = s.ps_drop;
    stats[STAT_IFDROP] = s.ps_ifdrop;
    stats[STAT_BATCHES] = batches;
    stats[STAT_QUEUE_FULL] = queue_full;
  };
  const stopping = (): boolean => Atomics.load(control, CONTROL_STOP) !== 0;

  /**
   * Fills slots until a stop is asked for; or, `draining`, takes what the kernel still
   * holds: for a few block timeouts (a block not yet handed over is retired by then).
   */
  const loop = (draining: boolean): void => {
    const drain_until_ms = Date.now() + 5 * BLOCK_TIMEOUT_MS;
    for (;;) {
      // The bounded queue: a slot is reused only after the main thread has analysed it.
      if (Atomics.load(control, 1 + slot) !== SLOT_FREE) {
        queue_full++;
        while (Atomics.load(control, 1 + slot) !== SLOT_FREE) {
          Atomics.wait(control, 1 + slot, SLOT_FULL, 50);
        }
      }
      const base = slot * slot_bytes;
      let used = 0;
      let first_ms = 0;
      for (;;) {
        const now_ms = Date.now();
        const timeout_ms = draining
          ? (used === 0 ? Math.max(0, drain_until_ms - now_ms) : 0)
          : used === 0 ? tick_ms : Math.max(0, flush_ms - (now_ms - first_ms));
        const n = c.readBatch(base + used, slot_bytes - used, timeout_ms);
        if (n > 0) {
          if (used === 0) first_ms = now_ms;
          used += n;
          if (used >= nearly_full_bytes || Date.now() - first_ms >= flush_ms) break;
          continue;
        }
        if (used > 0) break; // flush time reached, or the next packet needs a fresh slot
        if (draining) {
          if (Date.now() >= drain_until_ms) return;
          continue;
        }
        // Idle for tick_ms: every packet stamped before the wait began was delivered
        // (its block retired within BLOCK_TIMEOUT_MS), so capture time has reached it.
        // (A margin of several block timeouts covers the kernel's timer slack.)
        const tick_ms_epoch = now_ms - 5 * BLOCK_TIMEOUT_MS;
        const sec = Math.floor(tick_ms_epoch / 1000);
        post({ type: 'tick', ts_sec: sec, ts_nsec: (tick_ms_epoch - sec * 1000) * 1_000_000 });
        if (now_ms - last_stats_ms >= 1000) {
          last_stats_ms = now_ms;
          writeStats();
        }
        if (stopping()) return;
      }
      batches++;
      Atomics.store(control, 1 + slot, SLOT_FULL);
      post({ type: 'batch', slot, bytes: used });
      slot = (slot + 1) % slots;
      const t = Date.now();
      if (t - last_stats_ms >= 1000) {
        last_stats_ms = t;
        writeStats();
      }
      if (draining ? Date.now() >= drain_until_ms : stopping()) return;
    }
  };

  try {
    loop(false);
    // What the kernel still holds when the stop came.
    loop(true);
    writeStats();
  } catch (err) {
    post({ type: 'error', kind: 'capture_failed', message: (err as Error).message });
    return;
  } finally {
    c.close();
  }
  post({ type: 'stopped' });
}

run();
