import { connectivityState } from '@grpc/grpc-js';
import { ChannelCredentials, ClientError, Metadata, Status, createChannel, createClient, type Channel, type ChannelOptions } from 'nice-grpc';
import { create, toBinary } from '@bufbuild/protobuf';
import { IngestRequestSchema, IngestService } from '@wiretime/proto/gen/wiretime/v1/ingest_pb.ts';
import { niceService } from '@wiretime/proto/nice-grpc.ts';
import type { Spool } from './spool.ts';

/**
 * The sensor's side of shipping: one Ingest stream to the collector at a time, fed from the
 * durable spool. Batches go out in sequence order from the spool's acknowledged point; each
 * ack is applied to the spool (which persists it and deletes finished segments). Any error
 * (collector unreachable, stream ended, refused credentials, acks overdue) closes the
 * stream and channel; the next attempt comes after an exponential, jittered, capped
 * backoff and replays everything not yet acknowledged. The collector is idempotent on
 * (sensor, stream, sequence), so a batch whose ack was lost is sent again harmlessly.
 *
 * Wall-clock timers are used (backoff, ack deadline): this is the I/O stage, not the
 * capture-time pipeline.
 */
export interface ShipperOptions {
  /** host:port */
  address: string;
  sensor_id: string;
  /** sent as metadata `authorization: Bearer <token>`; null sends none */
  token: string | null;
  /** first reconnect delay; default 200 ms */
  backoff_initial_ms: number;
  /** the delay doubles per failed attempt up to this; default 30 s */
  backoff_max_ms: number;
  /** default: plaintext; `wiretime sensor --tls-ca/--tls-cert/--tls-key` gives TLS, mutual with a certificate */
  credentials?: ChannelCredentials;
  /** batches sent and not yet acknowledged at most; default 64 */
  max_in_flight: number;
  /** batches outstanding with no ack for this long end the stream (a stuck collector); default 60 s */
  ack_timeout_ms: number;
  /** how long `stop()` waits for the collector to acknowledge what was sent; default 5 s */
  stop_timeout_ms: number;
  /** jitter source in [0, 1); default Math.random */
  random: () => number;
  /** told before each reconnect wait: the delay, the attempt number (1 = first retry) and why */
  on_backoff?: (delay_ms: number, attempt: number, error: string | null) => void;
  channel_options?: ChannelOptions;
}

/** IngestService with requests passed as already-encoded IngestRequest bytes. */
const INGEST = niceService(IngestService);
const RAW_INGEST = {
  ingest: { ...INGEST.ingest, requestSerialize: (bytes: Uint8Array) => bytes, requestDeserialize: (bytes: Uint8Array) => bytes },
} as const;

export const DEFAULT_SHIPPER_OPTIONS = {
  token: null,
  backoff_initial_ms: 200,
  backoff_max_ms: 30_000,
  max_in_flight: 64,
  ack_timeout_ms: 60_000,
  stop_timeout_ms: 5_000,
  random: Math.random,
} as const;

export interface ShipperStats {
  /** a channel to the collector is up and a stream is open on it */
  connected: boolean;
  /** streams opened again after a failure */
  reconnects: number;
  /** the spool's acknowledged point */
  last_ack_sequence: bigint;
  last_error: string | null;
  /** batches written to a stream (replays count again) */
  sent_batches: number;
  /** the delay before the latest reconnect */
  backoff_ms: number;
}

/** One Ingest stream's progress. */
interface Session {
  sent: bigint;
  acked: bigint;
  /** when acks last moved (or batches started to be outstanding) */
  progress_at: number;
  abort: AbortController;
}

/** A session that lived this long counts as having worked: the next failure starts the backoff over. */
const HEALTHY_SESSION_MS = 60_000;

export class Shipper {
  private readonly spool: Spool;
  private readonly options: ShipperOptions;
  private loop: Promise<void> | null = null;
  private stopping = false;
  private session: Session | null = null;
  private unsubscribe: (() => void) | null = null;
  /** bumped by every wake-up (append, ack, stop) */
  private generation = 0;
  private waiters: (() => void)[] = [];
  private sleep_cancel: (() => void) | null = null;
  private channel_ready = false;
  private reconnects = 0;
  private last_error: string | null = null;
  private sent_batches = 0;
  private backoff_ms = 0;

  /** IngestRequest fields sensor_id and stream_id, encoded, appended to every spool record sent */
  private readonly identity: Uint8Array;

  constructor(spool: Spool, options: Partial<ShipperOptions> & { address: string; sensor_id: string }) {
    this.spool = spool;
    this.options = { ...DEFAULT_SHIPPER_OPTIONS, ...options };
    if (this.options.sensor_id === '') throw new Error('Shipper: sensor_id is empty');
    this.identity = toBinary(IngestRequestSchema, create(IngestRequestSchema, { sensorId: this.options.sensor_id, streamId: spool.stream_id }));
    if (!(this.options.backoff_initial_ms > 0) || this.options.backoff_max_ms < this.options.backoff_initial_ms) throw new Error('Shipper: need 0 < backoff_initial_ms <= backoff_max_ms');
    if (!(this.options.max_in_flight >= 1)) throw new Error('Shipper: max_in_flight must be at least 1');
  }

  /** Ships until `stop()`. */
  start(): void {
    if (this.loop !== null) return;
    this.stopping = false;
    this.unsubscribe = this.spool.onAppend(() => this.wake());
    this.loop = this.run();
  }

  /** New batches are in the spool (Spool.append calls this through onAppend). */
  wake(): void {
    this.generation++;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /**
   * Stops sending, half-closes the stream, and waits up to `timeout_ms` for the collector
   * to acknowledge what it was sent and end the stream; then cuts it. What is left
   * unacknowledged stays in the spool for next time.
   */
  async stop(timeout_ms = this.options.stop_timeout_ms): Promise<void> {
    const loop = this.loop;
    if (loop === null) return;
    this.stopping = true;
    this.sleep_cancel?.();
    this.wake();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([loop.then(() => false), new Promise<boolean>((r) => { timer = setTimeout(r, timeout_ms, true); })]);
    clearTimeout(timer);
    if (timedOut) this.session?.abort.abort();
    await loop;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.loop = null;
  }

  stats(): ShipperStats {
    return {
      connected: this.session !== null && this.channel_ready,
      reconnects: this.reconnects,
      last_ack_sequence: this.spool.stats().acked_sequence,
      last_error: this.last_error,
      sent_batches: this.sent_batches,
      backoff_ms: this.backoff_ms,
    };
  }

  /** The delay before retry number `attempt` (0-based): initial·2^attempt capped, then jittered into [d/2, d]. */
  backoff(attempt: number): number {
    const { backoff_initial_ms: initial, backoff_max_ms: max } = this.options;
    const d = Math.min(max, initial * 2 ** Math.min(attempt, 52));
    return Math.round(d / 2 + (d / 2) * this.options.random());
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopping) {
      const started = Date.now();
      const progressed = await this.stream();
      if (this.stopping) break;
      if (progressed || Date.now() - started >= HEALTHY_SESSION_MS) attempt = 0;
      const delay = this.backoff(attempt++);
      this.backoff_ms = delay;
      this.options.on_backoff?.(delay, attempt, this.last_error);
      await this.sleep(delay);
      if (this.stopping) break;
      this.reconnects++;
    }
  }

  /** One Ingest stream, until it fails or the shipper stops; true when acks moved forward. */
  private async stream(): Promise<boolean> {
    const o = this.options;
    const channel = createChannel(o.address, o.credentials ?? ChannelCredentials.createInsecure(), {
      // a channel of our own each time: no shared subchannel with grpc-js's own reconnect backoff
      'grpc.use_local_subchannel_pool': 1,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      ...o.channel_options,
    });
    const acked = this.spool.stats().acked_sequence;
    const session: Session = { sent: acked, acked, progress_at: Date.now(), abort: new AbortController() };
    this.session = session;
    this.channel_ready = false;
    const stopWatching = this.watchChannel(channel);
    const tick = Math.max(10, Math.min(1000, Math.floor(o.ack_timeout_ms / 4)));
    const deadline = setInterval(() => {
      if (session.sent > session.acked && Date.now() - session.progress_at > o.ack_timeout_ms) {
        this.last_error = `DEADLINE_EXCEEDED: no acknowledgement for ${o.ack_timeout_ms} ms`;
        session.abort.abort();
      }
    }, tick);
    let progressed = false;
    try {
      const client = createClient(RAW_INGEST, channel);
      const metadata = Metadata();
      if (o.token !== null) metadata.set('authorization', `Bearer ${o.token}`);
      for await (const response of client.ingest(this.requests(session), { metadata, signal: session.abort.signal })) {
        const ack = response.ackedSequence;
        if (ack > session.acked) {
          await this.spool.acknowledge(ack);
          session.acked = ack;
          session.progress_at = Date.now();
          progressed = true;
          this.wake(); // room in the window; stop() may be waiting
        }
      }
      if (!this.stopping) this.last_error = 'the collector ended the stream';
    } catch (err) {
      // an abort is ours: a stop, or the ack deadline (which set last_error itself)
      if (!session.abort.signal.aborted) this.last_error = err instanceof Error ? err.message : String(err);
      // A batch the collector refuses as invalid would be refused again forever and hold up
      // every batch after it: it is set aside (spool.reject) and shipping goes on.
      const refused = err instanceof ClientError && err.code === Status.INVALID_ARGUMENT ? /batch (\d+): /.exec(err.details) : null;
      if (refused !== null && (await this.spool.reject(BigInt(refused[1]!), err instanceof ClientError ? err.details : ''))) {
        process.emitWarning(`the collector refused batch ${refused[1]} as invalid; it is kept in the spool's rejected/ folder`, { code: 'WIRETIME_BATCH_REJECTED' });
        progressed = true;
      }
    } finally {
      clearInterval(deadline);
      session.abort.abort();
      this.session = null;
      stopWatching();
      this.channel_ready = false;
      channel.close();
    }
    return progressed;
  }

  /**
   * The batches of one stream: what the spool holds past the acked point, then new ones as
   * they come, as IngestRequest bytes: the spool's record with this sensor's id and the
   * spool's stream id appended (a protobuf message may carry its fields in any order, and the
   * stored record has neither), so a batch is not decoded and encoded again to be sent.
   */
  private async *requests(session: Session): AsyncGenerator<Uint8Array> {
    const signal = session.abort.signal;
    while (!this.stopping && !signal.aborted) {
      const generation = this.generation;
      for await (const batch of this.spool.pendingRecords(session.sent, this.identity)) {
        while (session.sent - session.acked >= BigInt(this.options.max_in_flight) && !this.stopping && !signal.aborted) await this.nextWake(signal);
        if (this.stopping || signal.aborted) return;
        if (session.sent === session.acked) session.progress_at = Date.now();
        session.sent = batch.sequence;
        this.sent_batches++;
        yield batch.payload; // the stored record with this.identity after it
      }
      if (generation === this.generation) await this.nextWake(signal);
    }
  }

  private nextWake(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      signal.addEventListener('abort', done);
      this.waiters.push(done);
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.sleep_cancel = () => {
        this.sleep_cancel = null;
        done();
      };
    });
  }

  private watchChannel(channel: Channel): () => void {
    let watching = true;
    const watch = (state: connectivityState) => {
      if (!watching) return;
      try {
        channel.watchConnectivityState(state, Infinity, () => {
          if (!watching) return;
          const now = channel.getConnectivityState(false);
          this.channel_ready = now === connectivityState.READY;
          watch(now);
        });
      } catch {
        // the channel was closed
      }
    };
    watch(channel.getConnectivityState(true));
    return () => {
      watching = false;
    };
  }
}
