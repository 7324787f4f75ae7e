import type { Analyzer, CloseReason } from './analyzers/analyzer.ts';
import { Probe } from './analyzers/analyzer.ts';
import { ANALYZERS, FALLBACK_TCP, analyzerById } from './analyzers/registry.ts';
import type { PacketSink } from './capture/packet-source.ts';
import { readCaptureFile, type CaptureFileSummary, type ReadCaptureOptions } from './capture/pcap-file-source.ts';
import { DecodedPacket, IpProto, TcpFlag } from './decode/decoded-packet.ts';
import { Decoder } from './decode/decoder.ts';
import { FlowTable } from './flow/flow-table.ts';
import { ConnState, FlowColumns } from './flow/tcp-tracker.ts';
import { TRANSACTION_METRICS } from './aggregate/metrics.ts';
import { MetricsBatch } from './metrics-batch.ts';
import { addressString, rfc3339 } from './output/format.ts';
import type { ConnectionRecord, OutputRecord, StatisticsRecord, TransactionRecord } from './output/records.ts';
import { Conversation, DEFAULT_CONVERSATION_LIMITS, type ConversationLimits, type ConversationOwner } from './transaction/conversation.ts';
import type { ConnectionOutcome, Transaction } from './transaction/transaction.ts';

/** Analysis options of a sensor (file or live mode). */
export interface SensorOptions {
  /** a flow with no packet for this long (capture time) is finished */
  idle_timeout_s: number;
  /** most flows tracked at once (least recently seen evicted beyond) */
  max_flows: number;
  /** server port → analyzer id, overriding the payload probe ("8001" → "http") */
  port_analyzers: Record<number, string>;
  /** keep only packets whose transport and ports pass (null: everything) */
  filter: ((transport: number, src_port: number, dst_port: number) => boolean) | null;
  /** names transactions (signature rules); null: the analyzers' default names */
  classifier: TransactionClassifier | null;
  /**
   * Receives every transaction's and connection's metrics without a record object being
   * built (the interval aggregator, when only summaries are wanted); null: none.
   */
  metrics_sink: MetricsSink | null;
  /** called when capture time enters a new second (drives interval closing) */
  on_clock: ((now_s: number) => void) | null;
}

/** What the pipeline gives the interval aggregator (IntervalAggregator.addMetrics). */
export interface MetricsSink {
  addMetrics(kind: 'transaction' | 'connection', server: string, server_port: number, transport: 'tcp' | 'udp', protocol: string,
    signature: string, outcome: string, values: Float64Array, time_s: number): void;
}

/** What the pipeline needs of a signature set (sensor/src/classify/signature-set.ts). */
export interface TransactionClassifier {
  /** request bytes a transaction must keep for the rules */
  readonly request_bytes_needed: number;
  /** the first matching rule's name, or null; `request`: the request's first bytes as latin1 */
  classifyText(protocol: string, request: string, subject: string): string | null;
}

/**
 * Receives every record. `time_s`: whole capture seconds the record belongs to
 * (a transaction's first request packet, a connection's last packet; the end of
 * capture for statistics).
 */
export type RecordSink = (record: OutputRecord, time_s: number) => void;

export const DEFAULT_SENSOR_OPTIONS: SensorOptions = {
  idle_timeout_s: 120,
  max_flows: 1_000_000,
  port_analyzers: {},
  filter: null,
  classifier: null,
  metrics_sink: null,
  on_clock: null,
};

/** The statistics block (DESIGN.md, Raw output) minus its `type`. */
export type SensorStatistics = Omit<StatisticsRecord, 'type'>;

/** (protocol, signature) pairs the statistics record counts one by one; later new ones count under OTHER_SIGNATURES */
export const MAX_SIGNATURE_STATS = 10_000;
export const OTHER_SIGNATURES = '(other)';

// Flag bits and states as this module's own constants, as in conversation.ts (per packet, an
// imported object's field costs a binding load, an initialisation check and a map check).
const FIN = TcpFlag.FIN;
const SYN = TcpFlag.SYN;
const RST = TcpFlag.RST;
const ACK = TcpFlag.ACK;
const TCP = IpProto.TCP;
const STATE_NONE = ConnState.NONE;
const SYN_SENT = ConnState.SYN_SENT;
const SYN_RECEIVED = ConnState.SYN_RECEIVED;
const ESTABLISHED = ConnState.ESTABLISHED;
const CLOSED = ConnState.CLOSED;

/** Counts one more `key`. */
function tally(counts: Map<string, { n: number }>, key: string): void {
  const c = counts.get(key);
  if (c === undefined) counts.set(key, { n: 1 });
  else c.n++;
}

/** Counts as a plain object, keys in first-seen order. */
function tallies(counts: Map<string, { n: number }>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, c] of counts) out[k] = c.n;
  return out;
}

/** `conv` column values besides a Conversation: not decided yet / no analyzer wants this flow. */
const NO_ANALYZER = null;

/**
 * The sensor's data plane after capture: decode → flow table → TCP tracking →
 * analyzer → transaction → records. Fed packet by packet (it is the capture's
 * `PacketSink`); time advances only with packet timestamps.
 */
export class Pipeline implements PacketSink, ConversationOwner {
  readonly options: SensorOptions;
  private readonly on_record: RecordSink | null;
  private readonly limits: ConversationLimits;
  private clock_whole_s = 0;
  private readonly decoder = new Decoder();
  private readonly pkt = new DecodedPacket();
  private readonly table: FlowTable;
  private readonly cols = new FlowColumns();
  /** per slot: its conversation, NO_ANALYZER, or undefined while undecided */
  private conv: (Conversation | null | undefined)[] = [];
  private readonly server_ports = new Set<number>();
  private readonly port_analyzer = new Map<number, Analyzer>();

  /** latest capture time seen, seconds since the epoch (the pipeline's clock) */
  private clock_s = 0;
  private packets = 0;
  private bytes = 0;
  private filtered = 0;
  private transactions = 0;
  private connections = 0;
  private late_packets = 0;
  /** counts by protocol and by outcome: a Map lookup per transaction (a keyed store into an object was a generic IC call, ~280 instructions) */
  private readonly by_protocol = new Map<string, { n: number }>();
  /**
   * Transactions by protocol and signature name, for the statistics record: a count per pair,
   * the pairs in first-seen order. Names are the analyzers' constants or the signature set's
   * stored strings, so the two lookups per transaction hash nothing new (a `${protocol} ${name}`
   * key was a string to build and hash per transaction). Bounded: past MAX_SIGNATURE_STATS pairs,
   * a protocol's new names count under `(other)` (the guard of signature-set.ts bounds names per
   * interval, not over a sensor's lifetime).
   */
  private readonly by_signature = new Map<string, Map<string, { n: number }>>();
  private readonly signature_order: { key: string; count: { n: number } }[] = [];
  private readonly outcomes = new Map<string, { n: number }>();
  private readonly anomalies: Record<string, number> = {};
  private readonly connection_outcomes: Record<string, number> = {};
  private first_ts: [number, number] | null = null;
  private last_ts_sec = 0;
  private last_ts_nsec = 0;
  /**
   * With signature rules and only the metrics sink (no records): transactions wait here to
   * be named and aggregated 64 at a time (metrics-batch.ts); null otherwise.
   */
  private readonly batch: MetricsBatch | null;

  constructor(options: Partial<SensorOptions> = {}, on_record: RecordSink | null = null) {
    this.options = { ...DEFAULT_SENSOR_OPTIONS, ...options };
    this.on_record = on_record;
    this.limits = { ...DEFAULT_CONVERSATION_LIMITS, request_prefix_bytes: this.options.classifier?.request_bytes_needed ?? 0 };
    this.table = new FlowTable({ max_flows: this.options.max_flows });
    this.batch = this.options.classifier !== null && this.options.metrics_sink !== null && on_record === null ? new MetricsBatch() : null;
    this.table.addColumns(this.cols);
    for (const a of ANALYZERS) for (const p of a.default_ports) this.server_ports.add(p);
    for (const [port, id] of Object.entries(this.options.port_analyzers)) {
      const a = analyzerById(id);
      if (a === undefined) throw new Error(`unknown analyzer "${id}" for port ${port} (known: ${[...ANALYZERS.map((x) => x.id), FALLBACK_TCP.id].join(', ')})`);
      this.port_analyzer.set(Number(port), a);
      this.server_ports.add(Number(port));
    }
  }

  onPacket(buf: Uint8Array, offset: number, caplen: number, wirelen: number, linktype: number, ts_sec: number, ts_nsec: number): void {
    this.packets++;
    this.bytes += wirelen;
    if (this.first_ts === null) this.first_ts = [ts_sec, ts_nsec];
    this.last_ts_sec = ts_sec;
    this.last_ts_nsec = ts_nsec;
    const pkt = this.pkt;
    if (!this.decoder.decode(buf, offset, caplen, wirelen, linktype, ts_sec, ts_nsec, pkt)) return;
    const filter = this.options.filter;
    if (filter !== null && !filter(pkt.transport, pkt.src_port, pkt.dst_port)) {
      this.filtered++;
      return;
    }
    const now_s = ts_sec + ts_nsec * 1e-9;
    if (now_s > this.clock_s) {
      this.clock_s = now_s;
      this.expireIdle();
      if (ts_sec > this.clock_whole_s) {
        this.clock_whole_s = ts_sec;
        if (this.batch !== null) this.flushBatch(this.batch);
        this.options.on_clock?.(now_s);
      }
    }
    if (pkt.transport === TCP) this.onTcp(pkt, ts_sec, ts_nsec);
    else this.onUdp(pkt, ts_sec, ts_nsec);
  }

  /**
   * Moves the clock to a capture time without a packet: live capture's ticker, once the
   * capture has delivered every packet stamped before `ts_sec`.`ts_nsec`, so that idle
   * flows expire and intervals close while traffic is quiet. Earlier times are ignored.
   */
  advanceTo(ts_sec: number, ts_nsec: number): void {
    const now_s = ts_sec + ts_nsec * 1e-9;
    if (now_s <= this.clock_s) return;
    this.clock_s = now_s;
    this.expireIdle();
    if (ts_sec > this.clock_whole_s) {
      this.clock_whole_s = ts_sec;
      if (this.batch !== null) this.flushBatch(this.batch);
      this.options.on_clock?.(now_s);
    }
  }

  /** End of input: finishes every flow still tracked and returns the statistics. */
  finish(capture: CaptureFileSummary | null = null): SensorStatistics {
    for (const slot of this.table.slotsOldestFirst()) {
      this.finishFlow(slot, 'end');
      this.table.remove(slot);
    }
    const stats = this.statistics(capture);
    this.on_record?.({ type: 'statistics', ...stats }, this.last_ts_sec);
    return stats;
  }

  /** The statistics so far; transactions waiting in the naming batch are named and handed on first, so that they count. */
  statistics(capture: CaptureFileSummary | null = null): SensorStatistics {
    if (this.batch !== null) this.flushBatch(this.batch);
    const d = this.decoder.stats();
    const t = this.table;
    return {
      packets: this.packets,
      bytes: this.bytes,
      first_packet: this.first_ts === null ? null : rfc3339(this.first_ts[0], this.first_ts[1]),
      last_packet: this.first_ts === null ? null : rfc3339(this.last_ts_sec, this.last_ts_nsec),
      decode_errors: d.decode_errors,
      skipped: { ...d.skipped, ...(this.filtered > 0 ? { filtered: this.filtered } : {}), ...(this.late_packets > 0 ? { after_close: this.late_packets } : {}) },
      fragments: d.fragments,
      flows: { created: t.created, active: t.count, peak: t.peak, closed: t.closed, expired: t.expired, evicted: t.evicted, max: t.max_flows },
      connections: { total: this.connections, by_outcome: { ...this.connection_outcomes } },
      transactions: { total: this.transactions, by_protocol: tallies(this.by_protocol), by_signature: Object.fromEntries(this.signature_order.map((e) => [e.key, e.count.n])), by_outcome: tallies(this.outcomes) },
      anomalies: { ...this.anomalies },
      capture: capture === null ? null : { format: capture.format, interfaces: capture.interfaces, bytes_read: capture.bytes_read, error: capture.error?.message ?? null },
      kernel_drops: null,
    };
  }

  // ------------------------------------------------------------------ flows

  private lookupOrCreate(pkt: DecodedPacket, ts_sec: number, ts_nsec: number): number {
    let slot = this.table.lookup(pkt);
    if (slot >= 0) {
      this.table.touch(slot, this.clock_s);
      return slot;
    }
    slot = this.table.insert(pkt, this.clock_s, this.evict);
    this.cols.reset(slot, ts_sec, ts_nsec);
    this.conv[slot] = undefined;
    return slot;
  }

  private readonly evict = (slot: number): void => {
    this.finishFlow(slot, 'idle');
    this.count('flow_evicted');
  };

  private expireIdle(): void {
    const limit = this.clock_s - this.options.idle_timeout_s;
    const t = this.table;
    for (let slot = t.oldest(); slot !== -1 && t.last_seen_s[slot]! < limit; slot = t.oldest()) {
      if (this.cols.reported[slot] === 0) t.expired++;
      this.finishFlow(slot, 'idle');
      t.remove(slot);
    }
  }

  private relNs(slot: number, ts_sec: number, ts_nsec: number): number {
    const ts = (ts_sec - this.cols.base_sec[slot]!) * 1e9 + ts_nsec;
    if (ts > this.cols.last_ns[slot]!) this.cols.last_ns[slot] = ts;
    return ts;
  }

  private onTcp(pkt: DecodedPacket, ts_sec: number, ts_nsec: number): void {
    const cols = this.cols;
    const slot = this.lookupOrCreate(pkt, ts_sec, ts_nsec);
    const dir = this.table.direction;
    const flags = pkt.tcp_flags;
    const syn = (flags & SYN) !== 0;
    const ackf = (flags & ACK) !== 0;
    if (cols.state[slot] === CLOSED) {
      if (syn && !ackf && !(cols.syn_side[slot] === dir && cols.isn[slot * 2 + dir] === pkt.seq)) {
        // The 4-tuple is reused by a new connection.
        this.conv[slot] = undefined;
        cols.reset(slot, ts_sec, ts_nsec);
      } else {
        this.late_packets++;
        return;
      }
    }
    let ts = this.relNs(slot, ts_sec, ts_nsec);
    const i2 = slot * 2 + dir;
    if (syn) {
      if (!ackf) {
        const syn_side = cols.syn_side[slot]!;
        if (syn_side < 0) {
          this.firstSyn(slot, dir, pkt, ts);
        } else if (syn_side === dir && cols.isn[i2] === pkt.seq) {
          // A retransmitted SYN: set-up timing restarts from the most recent SYN (as tshark's
          // initial RTT does), and the SYN/ACK that counts is the first one after it.
          cols.syn_count[slot]++;
          if (cols.state[slot] !== ESTABLISHED) {
            cols.syn_ns[slot] = ts;
            cols.synack_ns[slot] = NaN;
          }
        } else if (cols.state[slot] === ESTABLISHED || this.conv[slot] !== undefined) {
          // A new connection on a tuple whose old one never closed.
          this.finishFlow(slot, 'idle');
          this.conv[slot] = undefined;
          cols.reset(slot, ts_sec, ts_nsec);
          ts = this.relNs(slot, ts_sec, ts_nsec);
          this.firstSyn(slot, dir, pkt, ts);
        } else {
          // Another attempt with a new ISN before any answer.
          cols.isn[i2] = pkt.seq;
          cols.syn_count[slot]++;
          cols.syn_ns[slot] = ts;
        }
      } else if (cols.synack_side[slot]! < 0) {
        cols.synack_side[slot] = dir;
        cols.isn[i2] = pkt.seq;
        cols.synack_ns[slot] = ts;
        cols.synack_count[slot] = 1;
        cols.mss[i2] = pkt.opt_mss;
        cols.wscale[i2] = pkt.opt_wscale;
        if (cols.client_side[slot]! < 0) cols.client_side[slot] = dir ^ 1;
        cols.state[slot] = SYN_RECEIVED;
      } else if (cols.synack_side[slot] === dir) {
        cols.synack_count[slot]++;
        if (Number.isNaN(cols.synack_ns[slot]!)) cols.synack_ns[slot] = ts;
      }
    } else if (ackf && cols.state[slot] === SYN_RECEIVED && dir !== cols.synack_side[slot] &&
               pkt.ack === ((cols.isn[slot * 2 + cols.synack_side[slot]!]! + 1) >>> 0)) {
      // The ACK of the SYN/ACK completes the handshake (tcp.analysis.initial_rtt ends here).
      cols.hs_ack_ns[slot] = ts;
      cols.state[slot] = ESTABLISHED;
    }

    const has_data = pkt.payload_wire_len > 0;
    if (has_data) {
      cols.data_pkts[i2]++;
      if (cols.state[slot] === STATE_NONE) cols.state[slot] = ESTABLISHED;
    }
    let conv = this.conv[slot];
    if (conv === undefined && has_data) conv = this.startConversation(slot, dir, pkt, 'tcp');
    if (conv !== undefined && conv !== null) conv.onTcp(dir === conv.client_side, pkt, ts);

    if ((flags & RST) !== 0) {
      cols.rst_side[slot] = dir;
      this.closeFlow(slot, 'reset', ts);
    } else if ((flags & FIN) !== 0) {
      cols.fin_bits[slot] |= 1 << dir;
      if (cols.fin_bits[slot] === 3) this.closeFlow(slot, 'closed', ts);
    }
  }

  /** The connection's first SYN: its sender is the client (DESIGN.md, roles). */
  private firstSyn(slot: number, dir: number, pkt: DecodedPacket, ts: number): void {
    const cols = this.cols;
    const i2 = slot * 2 + dir;
    cols.syn_side[slot] = dir;
    cols.isn[i2] = pkt.seq;
    cols.syn_ns[slot] = ts;
    cols.syn_count[slot] = 1;
    cols.mss[i2] = pkt.opt_mss;
    cols.wscale[i2] = pkt.opt_wscale;
    if (cols.client_side[slot]! < 0) cols.client_side[slot] = dir;
    if (cols.state[slot] === STATE_NONE) cols.state[slot] = SYN_SENT;
  }

  private onUdp(pkt: DecodedPacket, ts_sec: number, ts_nsec: number): void {
    const slot = this.lookupOrCreate(pkt, ts_sec, ts_nsec);
    const dir = this.table.direction;
    const ts = this.relNs(slot, ts_sec, ts_nsec);
    this.cols.data_pkts[slot * 2 + dir]++;
    let conv = this.conv[slot];
    if (conv === undefined) conv = this.startConversation(slot, dir, pkt, 'udp');
    if (conv) conv.onUdp(dir === conv.client_side, pkt, ts);
  }

  /** Picks the analyzer and the client side at a flow's first payload. */
  private startConversation(slot: number, dir: number, pkt: DecodedPacket, transport: 'tcp' | 'udp'): Conversation | null {
    const cols = this.cols;
    let client = cols.client_side[slot]!;
    const known_from_client = client < 0 ? null : dir === client;
    const buf = pkt.payload_buf, off = pkt.payload_off, len = pkt.payload_len;

    let chosen: Analyzer | null = null;
    const forced = this.port_analyzer.get(pkt.dst_port) ?? this.port_analyzer.get(pkt.src_port);
    if (forced !== undefined && forced.transports.includes(transport)) chosen = forced;
    if (chosen === null) {
      let maybe: Analyzer | null = null;
      for (const a of ANALYZERS) {
        if (!a.transports.includes(transport)) continue;
        const verdict = a.probe(transport, known_from_client, buf, off, len, pkt.src_port, pkt.dst_port);
        if (verdict === Probe.YES) {
          chosen = a;
          break;
        }
        const hinted = a.default_ports.includes(pkt.src_port) || a.default_ports.includes(pkt.dst_port);
        if (verdict === Probe.MAYBE && hinted && maybe === null) maybe = a;
      }
      chosen = chosen ?? maybe ?? (transport === 'tcp' ? FALLBACK_TCP : null);
    }
    if (chosen === null) {
      this.conv[slot] = NO_ANALYZER;
      this.count('udp_flow_without_analyzer');
      return null;
    }
    if (client < 0) {
      const says = chosen.fromClient(transport, buf, off, len);
      if (says !== null) client = says ? dir : dir ^ 1;
      else {
        // DESIGN.md roles: the side whose port is not a server port; failing that, the higher port.
        const src_server = this.server_ports.has(pkt.src_port);
        const dst_server = this.server_ports.has(pkt.dst_port);
        if (src_server !== dst_server) client = src_server ? dir ^ 1 : dir;
        else client = pkt.src_port > pkt.dst_port ? dir : pkt.src_port < pkt.dst_port ? dir ^ 1 : 0;
      }
      cols.client_side[slot] = client;
    }
    const conv = new Conversation(this, this.limits, slot, cols.base_sec[slot]!, transport, client, chosen);
    if (transport === 'tcp') {
      for (const side of [0, 1]) {
        const shift = cols.windowShift(slot, side);
        const from_client = side === client;
        if ((side === cols.syn_side[slot] || side === cols.synack_side[slot])) {
          conv.startStream(from_client, (cols.isn[slot * 2 + side]! + 1) >>> 0, shift);
        }
      }
    }
    this.conv[slot] = conv;
    return conv;
  }

  /** FIN both ways or RST: records now; the slot lingers (CLOSED) until idle so late packets are not new flows. */
  private closeFlow(slot: number, reason: CloseReason, _ts: number): void {
    this.finishFlow(slot, reason);
    this.cols.state[slot] = CLOSED;
    this.table.closed++;
  }

  private finishFlow(slot: number, reason: CloseReason): void {
    const cols = this.cols;
    if (cols.reported[slot] !== 0) return;
    cols.reported[slot] = 1;
    const conv = this.conv[slot];
    if (conv) conv.finish(reason, cols.last_ns[slot]!);
    this.conv[slot] = NO_ANALYZER;
    if (this.table.transport(slot) === TCP) this.emitConnection(slot, reason);
  }

  // ------------------------------------------------------------------ records

  count(kind: string): void {
    this.anomalies[kind] = (this.anomalies[kind] ?? 0) + 1;
  }


  /** The metrics handed to `metrics_sink`, reused: TRANSACTION_METRICS has the most (29). */
  private readonly metric_values = new Float64Array(TRANSACTION_METRICS.length);

  /** Names the batch's transactions, then hands every row to the metrics sink, in order; empties the batch. */
  private flushBatch(batch: MetricsBatch): void {
    const n = batch.count;
    if (n === 0) return;
    const classifier = this.options.classifier!;
    for (let i = 0; i < n; i++) {
      if (batch.connection[i] !== 0) continue;
      const name = classifier.classifyText(batch.protocol[i]!, batch.request[i]!, batch.subject[i]!);
      if (name !== null) batch.signature[i] = name;
      batch.request[i] = '';
      this.countSignature(batch.protocol[i]!, batch.signature[i]!);
    }
    const sink = this.options.metrics_sink!;
    batch.count = 0; // before the sink runs: a sink that throws leaves an empty batch, not rows handed on twice
    for (let i = 0; i < n; i++) {
      sink.addMetrics(batch.connection[i] !== 0 ? 'connection' : 'transaction', batch.server[i]!, batch.server_port[i]!, batch.transport[i]!,
        batch.protocol[i]!, batch.signature[i]!, batch.outcome[i]!, batch.values[i]!, batch.time_s[i]!);
    }
  }

  private countSignature(protocol: string, signature: string): void {
    let names = this.by_signature.get(protocol);
    if (names === undefined) {
      names = new Map();
      this.by_signature.set(protocol, names);
    }
    let count = names.get(signature);
    if (count === undefined) {
      const name = this.signature_order.length < MAX_SIGNATURE_STATS ? signature : OTHER_SIGNATURES;
      count = names.get(name);
      if (count === undefined) {
        count = { n: 0 };
        names.set(name, count);
        this.signature_order.push({ key: `${protocol} ${name}`, count });
      }
    }
    count.n++;
  }

  emitTransaction(tx: Transaction, conv: Conversation): void {
    const classifier = this.options.classifier;
    const batch = this.batch;
    if (classifier !== null && batch === null) {
      const name = classifier.classifyText(tx.protocol, tx.request_text, tx.subject);
      if (name !== null) tx.signature = name;
      tx.request_text = '';
    }
    this.transactions++;
    tally(this.by_protocol, tx.protocol);
    if (batch === null) this.countSignature(tx.protocol, tx.signature); // else once named
    tally(this.outcomes, tx.outcome);
    const sink = this.options.metrics_sink;
    if (this.on_record === null && sink === null) return;
    const slot = conv.slot;
    const cols = this.cols;
    const client = conv.client_side;
    const server = client ^ 1;
    const base = conv.base_sec;
    let rtt_server = cols.rttServerNs(slot);
    let rtt_client = cols.rttClientNs(slot);
    let rtt = cols.rttNs(slot);
    let rtt_source: 'handshake' | 'samples' | null = 'handshake';
    if (Number.isNaN(rtt)) {
      rtt_server = conv.rtt_server_sample_ns;
      rtt_client = conv.rtt_client_sample_ns;
      rtt = rtt_server + rtt_client;
      rtt_source = Number.isNaN(rtt_server) && Number.isNaN(rtt_client) ? null : 'samples';
    }
    if (conv.client_address === null) {
      const ip = this.table.ipVersion(slot);
      conv.client_address = addressString(ip, this.table.addressWords(slot, client));
      conv.server_address = addressString(ip, this.table.addressWords(slot, server));
    }
    const ttlr = tx.rsp_last_ns - tx.req_last_ns;
    const first = Number.isNaN(tx.req_first_ns) ? tx.rsp_first_ns : tx.req_first_ns;
    const time_s = base + Math.floor((Number.isNaN(first) ? 0 : first) / 1e9);
    if (sink !== null) {
      // The record's numbers, in TRANSACTION_METRICS order, NaN for null.
      const v = batch === null ? this.metric_values : batch.values[batch.count]!;
      v[0] = tx.req_last_ns - tx.req_first_ns;
      v[1] = tx.rsp_first_ns - tx.req_last_ns;
      v[2] = ttlr;
      v[3] = tx.rsp_acked_ns - tx.req_last_ns;
      v[4] = ttlr + Math.round(rtt_client / 2);
      v[5] = rtt;
      v[6] = rtt_server;
      v[7] = rtt_client;
      v[8] = tx.request_bytes;
      v[9] = tx.response_bytes;
      v[10] = tx.client_acks;
      v[11] = tx.bytes_acked;
      v[12] = tx.server_pkts;
      v[13] = tx.server_pkts === 0 ? NaN : Math.round((tx.server_pkt_bytes_sum / tx.server_pkts) * 100) / 100;
      v[14] = tx.server_pkts === 0 ? NaN : tx.server_pkt_bytes_max;
      v[15] = mssNaN(cols.mss[slot * 2 + client]!);
      v[16] = mssNaN(cols.mss[slot * 2 + server]!);
      v[17] = tx.client_win_last < 0 ? NaN : tx.client_win_min;
      v[18] = tx.client_win_last < 0 ? NaN : tx.client_win_last;
      v[19] = tx.server_win_last < 0 ? NaN : tx.server_win_min;
      v[20] = tx.server_win_last < 0 ? NaN : tx.server_win_last;
      v[21] = tx.client_retransmits;
      v[22] = tx.server_retransmits;
      v[23] = tx.client_out_of_order;
      v[24] = tx.server_out_of_order;
      v[25] = tx.client_lost_bytes;
      v[26] = tx.server_lost_bytes;
      v[27] = tx.zero_window_events;
      v[28] = tx.request_retransmits;
      if (batch === null) sink.addMetrics('transaction', conv.server_address!, this.table.port(slot, server), conv.transport, tx.protocol, tx.signature, tx.outcome, v, time_s);
      else {
        const full = batch.add(false, conv.server_address!, this.table.port(slot, server), conv.transport, tx.protocol, tx.signature, tx.outcome, time_s, tx.request_text, tx.subject);
        tx.request_text = '';
        if (full) this.flushBatch(batch);
        return;
      }
    }
    if (this.on_record === null) return;
    const record: TransactionRecord = {
      type: 'transaction',
      protocol: tx.protocol,
      signature: tx.signature,
      subject: tx.subject,
      status: tx.status < 0 ? null : tx.status,
      outcome: tx.outcome,
      notes: tx.notes ?? [],
      transport: conv.transport,
      client: conv.client_address,
      client_port: this.table.port(slot, client),
      server: conv.server_address!,
      server_port: this.table.port(slot, server),
      req_first: time(base, tx.req_first_ns),
      req_last: time(base, tx.req_last_ns),
      rsp_first: time(base, tx.rsp_first_ns),
      rsp_last: time(base, tx.rsp_last_ns),
      rsp_acked: time(base, tx.rsp_acked_ns),
      request_ns: ns(tx.req_last_ns - tx.req_first_ns),
      ttfr_ns: ns(tx.rsp_first_ns - tx.req_last_ns),
      ttlr_ns: ns(ttlr),
      ttla_ns: ns(tx.rsp_acked_ns - tx.req_last_ns),
      edt_ns: ns(ttlr + Math.round(rtt_client / 2)),
      rtt_ns: ns(rtt),
      rtt_server_ns: ns(rtt_server),
      rtt_client_ns: ns(rtt_client),
      rtt_source,
      request_bytes: tx.request_bytes,
      response_bytes: tx.response_bytes,
      client_acks: tx.client_acks,
      bytes_acked: tx.bytes_acked,
      server_pkts: tx.server_pkts,
      server_pkt_bytes_avg: tx.server_pkts === 0 ? null : Math.round((tx.server_pkt_bytes_sum / tx.server_pkts) * 100) / 100,
      server_pkt_bytes_max: tx.server_pkts === 0 ? null : tx.server_pkt_bytes_max,
      client_mss: mss(cols.mss[slot * 2 + client]!),
      server_mss: mss(cols.mss[slot * 2 + server]!),
      client_win_min: tx.client_win_last < 0 ? null : tx.client_win_min,
      client_win_last: tx.client_win_last < 0 ? null : tx.client_win_last,
      server_win_min: tx.server_win_last < 0 ? null : tx.server_win_min,
      server_win_last: tx.server_win_last < 0 ? null : tx.server_win_last,
      client_retransmits: tx.client_retransmits,
      server_retransmits: tx.server_retransmits,
      client_out_of_order: tx.client_out_of_order,
      server_out_of_order: tx.server_out_of_order,
      client_lost_bytes: tx.client_lost_bytes,
      server_lost_bytes: tx.server_lost_bytes,
      zero_window_events: tx.zero_window_events,
      request_retransmits: tx.request_retransmits,
    };
    this.on_record(record, time_s);
  }

  private emitConnection(slot: number, reason: CloseReason): void {
    const cols = this.cols;
    const outcome = connectionOutcome(cols, slot, reason);
    this.connections++;
    this.connection_outcomes[outcome] = (this.connection_outcomes[outcome] ?? 0) + 1;
    const sink = this.options.metrics_sink;
    if (this.on_record === null && sink === null) return;
    let client = cols.client_side[slot]!;
    if (client < 0) {
      const pa = this.table.port(slot, 0), pb = this.table.port(slot, 1);
      client = this.server_ports.has(pa) && !this.server_ports.has(pb) ? 1 : pa >= pb ? 0 : 1;
    }
    const server = client ^ 1;
    const base = cols.base_sec[slot]!;
    const ip = this.table.ipVersion(slot);
    // A refused connection's server answered with RST: that answer times the server side.
    const rs = outcome === 'refused' ? cols.last_ns[slot]! - cols.syn_ns[slot]! : cols.rttServerNs(slot);
    const rc = cols.rttClientNs(slot);
    // A connection is reported when it ends, so it is placed by its last packet: placed by
    // its first, a long keep-alive connection would always arrive after its interval closed.
    const time_s = base + Math.floor(cols.last_ns[slot]! / 1e9);
    if (sink !== null) {
      const batch = this.batch;
      const v = batch === null ? this.metric_values : batch.values[batch.count]!;
      v[0] = cols.rttNs(slot);
      v[1] = rs;
      v[2] = rc;
      v[3] = Math.max(0, cols.syn_count[slot]! - 1);
      v[4] = Math.max(0, cols.synack_count[slot]! - 1);
      v[5] = mssNaN(cols.mss[slot * 2 + client]!);
      v[6] = mssNaN(cols.mss[slot * 2 + server]!);
      const conv = this.conv[slot];
      const server_address = conv ? (conv.server_address ?? addressString(ip, this.table.addressWords(slot, server))) : addressString(ip, this.table.addressWords(slot, server));
      if (batch === null) sink.addMetrics('connection', server_address, this.table.port(slot, server), 'tcp', 'tcp', 'TCP_CONNECT', outcome, v, time_s);
      else {
        if (batch.add(true, server_address, this.table.port(slot, server), 'tcp', 'tcp', 'TCP_CONNECT', outcome, time_s, '', '')) this.flushBatch(batch);
        return;
      }
    }
    if (this.on_record === null) return;
    const record: ConnectionRecord = {
      type: 'connection',
      protocol: 'tcp',
      signature: 'TCP_CONNECT',
      outcome,
      transport: 'tcp',
      client: addressString(ip, this.table.addressWords(slot, client)),
      client_port: this.table.port(slot, client),
      server: addressString(ip, this.table.addressWords(slot, server)),
      server_port: this.table.port(slot, server),
      start: time(base, cols.first_ns[slot]!),
      end: time(base, cols.last_ns[slot]!),
      syn: time(base, cols.syn_ns[slot]!),
      syn_ack: time(base, cols.synack_ns[slot]!),
      ack: time(base, cols.hs_ack_ns[slot]!),
      rtt_server_ns: ns(rs),
      rtt_client_ns: ns(rc),
      rtt_ns: ns(cols.rttNs(slot)),
      syn_retransmits: Math.max(0, cols.syn_count[slot]! - 1),
      syn_ack_retransmits: Math.max(0, cols.synack_count[slot]! - 1),
      client_mss: mss(cols.mss[slot * 2 + client]!),
      server_mss: mss(cols.mss[slot * 2 + server]!),
      client_wscale: mss(cols.wscale[slot * 2 + client]!),
      server_wscale: mss(cols.wscale[slot * 2 + server]!),
      client_data_pkts: cols.data_pkts[slot * 2 + client]!,
      server_data_pkts: cols.data_pkts[slot * 2 + server]!,
      picked_up_mid_stream: cols.syn_side[slot]! < 0 && cols.synack_side[slot]! < 0,
    };
    this.on_record(record, time_s);
  }
}

function connectionOutcome(cols: FlowColumns, slot: number, reason: CloseReason): ConnectionOutcome {
  const syn_side = cols.syn_side[slot]!;
  const synack = cols.synack_side[slot]! >= 0;
  const rst = cols.rst_side[slot]!;
  const client = cols.client_side[slot]!;
  const client_data = client >= 0 ? cols.data_pkts[slot * 2 + client]! : 0;
  if (syn_side >= 0 && !synack) {
    if (rst >= 0 && rst !== syn_side) return 'refused';
    if (client_data === 0 && cols.data_pkts[slot * 2 + (syn_side ^ 1)] === 0) return 'unanswered';
  }
  if (synack && Number.isNaN(cols.hs_ack_ns[slot]!) && client_data === 0 && rst < 0) return 'client_ack_missing';
  if (rst >= 0) return rst === client ? 'reset_by_client' : 'reset_by_server';
  const fins = cols.fin_bits[slot]!;
  if (fins === 3) return 'closed';
  if (fins !== 0) return 'half_closed';
  return reason === 'idle' ? 'timed_out' : 'open';
}

function time(base_sec: number, rel_ns: number): string | null {
  return Number.isNaN(rel_ns) ? null : rfc3339(base_sec, rel_ns);
}

function ns(v: number): number | null {
  return Number.isNaN(v) ? null : v;
}

function mss(v: number): number | null {
  return v < 0 ? null : v;
}

function mssNaN(v: number): number {
  return v < 0 ? NaN : v;
}

/** Reads a capture file through a fresh pipeline. */
export async function analyzeCaptureFile(path: string, options: Partial<SensorOptions> = {},
  on_record: RecordSink | null = null, read_options: ReadCaptureOptions = {}): Promise<SensorStatistics> {
  const pipeline = new Pipeline(options, on_record);
  const summary = await readCaptureFile(path, pipeline, read_options);
  return pipeline.finish(summary);
}
