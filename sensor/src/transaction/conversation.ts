import type { Analyzer, AnalyzerContext, AnalyzerSession, CloseReason } from '../analyzers/analyzer.ts';
import { TcpFlag, type DecodedPacket } from '../decode/decoded-packet.ts';
import { latin1 } from '../decode/latin1.ts';
import { Transaction } from './transaction.ts';

// TcpFlag's bits as module constants of this file: read per packet below, an imported
// object's field costs TurboFan's code a load of the binding, a check that it is
// initialised and a map check each time; a const of this module holding a number does not.
const FIN = TcpFlag.FIN;
const SYN = TcpFlag.SYN;
const RST = TcpFlag.RST;
const ACK = TcpFlag.ACK;

/** Where finished transactions and counted anomalies go (the pipeline). */
export interface ConversationOwner {
  emitTransaction(tx: Transaction, conv: Conversation): void;
  count(kind: string): void;
}

export interface ConversationLimits {
  /** most transactions open at once on one conversation (pipelined requests); older ones finish as timeout */
  max_open_transactions: number;
  /** out-of-order segments held per direction until the hole fills */
  max_ooo_segments: number;
  /** out-of-order bytes held per direction */
  max_ooo_bytes: number;
  /** request bytes kept per transaction for signature rules (0: none) */
  request_prefix_bytes: number;
}

export const DEFAULT_CONVERSATION_LIMITS: ConversationLimits = {
  max_open_transactions: 1024,
  max_ooo_segments: 64,
  max_ooo_bytes: 1 << 20,
  request_prefix_bytes: 0,
};

const NO_BYTES = new Uint8Array(0);

/** A segment that arrived ahead of a hole, copied because the capture buffer is reused. */
interface HeldSegment {
  /** stream offset of its first byte */
  off: number;
  bytes: Uint8Array;
  ts_ns: number;
  fin: boolean;
  /** the conversation's packet counter of the packet that carried it */
  pkt: number;
}

/** One direction of a TCP conversation: how its sequence space maps onto the byte stream. */
class Stream {
  /** sequence number of the next byte expected in order; valid once `started` */
  next_seq = 0;
  started = false;
  /** stream offset of `next_seq`: bytes delivered plus bytes declared lost */
  delivered = 0;
  fin = false;
  held: HeldSegment[] | null = null;
  held_bytes = 0;
  /** highest stream offset the peer has acknowledged (may pass `delivered` when the capture lost data) */
  acked_off = -1;
  /** time of the ACK that brought `acked_off` to its value */
  acked_ts_ns = NaN;
  /** a data→ACK round-trip sample in flight: its end sequence number and send time */
  sample_end_seq = 0;
  sample_ts_ns = NaN;
  /** advertised window of this side is zero at the moment */
  zero_window = false;
  /** shift applied to this side's advertised windows (RFC 7323 §2.3), 0 when not negotiated */
  win_shift = 0;
}

/**
 * The application side of one flow: in-order delivery of each direction's bytes to
 * the protocol analyzer, the transactions it cuts, and the per-packet metrics of
 * those transactions (ACKs, windows, retransmissions, gaps). Created at the first
 * payload of a flow; the flow-level TCP state (handshake, options) stays in the
 * tracker's columns.
 *
 * Time: `ts_ns` values are nanoseconds relative to the flow's base second.
 */
export class Conversation implements AnalyzerContext {
  readonly slot: number;
  readonly base_sec: number;
  readonly transport: 'tcp' | 'udp';
  /** flow side (0 = A, 1 = B) that is the client */
  readonly client_side: number;
  readonly analyzer: Analyzer;
  readonly session: AnalyzerSession;
  /** transactions not yet handed to the output, oldest first */
  readonly open: Transaction[] = [];

  /** text of the client and server addresses, made once for the records of this conversation */
  client_address: string | null = null;
  server_address: string | null = null;

  /** data→ACK round-trip samples (minimum), used when no handshake was seen */
  rtt_client_sample_ns = NaN;
  rtt_server_sample_ns = NaN;

  private readonly owner: ConversationOwner;
  private readonly limits: ConversationLimits;
  /** [client→server, server→client] */
  private readonly streams: [Stream, Stream] = [new Stream(), new Stream()];
  /** current packet while an analyzer runs */
  private cur_ts_ns = 0;
  private cur_pkt = 0;
  private cur_pkt_payload = 0;
  private packet_counter = 0;
  /** scaled advertised window of the current TCP packet (-1: SYN, RST or UDP) and its direction */
  private cur_win = -1;
  private cur_from_client = false;
  private finished = false;

  constructor(owner: ConversationOwner, limits: ConversationLimits, slot: number, base_sec: number,
              transport: 'tcp' | 'udp', client_side: number, analyzer: Analyzer) {
    this.owner = owner;
    this.limits = limits;
    this.slot = slot;
    this.base_sec = base_sec;
    this.transport = transport;
    this.client_side = client_side;
    this.analyzer = analyzer;
    this.session = analyzer.create(this, transport);
  }

  /** The handshake told where a direction's stream starts (ISN + 1) and its window shift. */
  startStream(from_client: boolean, first_seq: number, win_shift: number): void {
    const s = this.streams[from_client ? 0 : 1];
    if (!s.started) {
      s.started = true;
      s.next_seq = first_seq >>> 0;
    }
    s.win_shift = win_shift;
  }

  // ---------------------------------------------------------------- packets in

  /** One TCP segment of this flow. */
  onTcp(from_client: boolean, pkt: DecodedPacket, ts_ns: number): void {
    if (this.finished) return;
    this.packet_counter++;
    const d = from_client ? 0 : 1;
    const s = this.streams[d];
    const peer = this.streams[d ^ 1];
    const flags = pkt.tcp_flags;

    this.cur_win = (flags & (SYN | RST)) === 0 ? pkt.window << s.win_shift : -1;
    this.cur_from_client = from_client;
    if ((flags & SYN) === 0) this.noteWindow(from_client, s, pkt.window << s.win_shift, (flags & RST) !== 0);
    if ((flags & ACK) !== 0 && peer.started) this.onAck(from_client, peer, pkt.ack, ts_ns);

    const len = pkt.payload_wire_len;
    const fin = (flags & FIN) !== 0;
    if (len === 0 && !fin) return;
    let seq = pkt.seq;
    if ((flags & SYN) !== 0) seq = (seq + 1) >>> 0; // data on a SYN starts after it
    if (!s.started) {
      // Picked up mid-stream: the first byte seen is offset 0 of this direction.
      s.started = true;
      s.next_seq = seq;
    }
    // A hole the peer has already acknowledged is data the capture lost, not data still coming.
    if (peer.acked_off > peer.delivered) this.declareProvenGap(!from_client, peer);

    const rel = (seq - s.next_seq) | 0;
    if (rel > 0) {
      if (s.acked_off >= s.delivered + rel) {
        this.declareGap(from_client, s, rel);
      } else {
        this.hold(from_client, s, pkt, rel, ts_ns, fin);
        return;
      }
    }
    let off = pkt.payload_off;
    let avail = pkt.payload_len;
    let wire = len;
    if (rel < 0) {
      // Karn (RFC 6298 §3): an ACK after a retransmission cannot tell which copy it answers.
      s.sample_ts_ns = NaN;
      const old = -rel;
      if (old >= wire) {
        if (wire > 0) this.countRetransmit(from_client);
        if (fin && !s.fin && old === wire) this.endStream(from_client, s);
        return;
      }
      this.countRetransmit(from_client);
      off += old;
      avail = Math.max(0, avail - old);
      wire -= old;
    }
    if (wire > 0 && Number.isNaN(s.sample_ts_ns) && rel === 0) {
      s.sample_end_seq = (seq + len) >>> 0;
      s.sample_ts_ns = ts_ns;
    }
    this.deliverBytes(from_client, s, pkt.payload_buf, off, avail, wire, ts_ns);
    if (fin) this.endStream(from_client, s);
    this.releaseHeld(from_client, s);
    this.emitFinished();
  }

  /** One UDP datagram of this flow. */
  onUdp(from_client: boolean, pkt: DecodedPacket, ts_ns: number): void {
    if (this.finished) return;
    this.packet_counter++;
    this.cur_win = -1;
    this.cur_ts_ns = ts_ns;
    this.cur_pkt = this.packet_counter;
    this.cur_pkt_payload = pkt.payload_len;
    this.cursor = 0;
    this.setChunk(pkt.payload_buf, pkt.payload_off, pkt.payload_len);
    this.session.onData(from_client, pkt.payload_buf, pkt.payload_off, pkt.payload_len);
    if (pkt.payload_len < pkt.payload_wire_len) this.count('udp_truncated_payload');
    this.emitFinished();
  }

  /**
   * The conversation ends: `reason` says why. Open transactions without a complete
   * response finish as reset / timeout; every open transaction is emitted.
   */
  finish(reason: CloseReason, ts_ns: number): void {
    if (this.finished) return;
    for (const d of [0, 1] as const) {
      const s = this.streams[d];
      if (s.held !== null) this.declareGap(d === 0, s, s.held[0]!.off - s.delivered);
      this.releaseHeld(d === 0, s);
    }
    this.cur_ts_ns = ts_ns;
    this.session.onClose(reason);
    this.finished = true;
    for (const tx of this.open) {
      if (!tx.complete) {
        if (Number.isNaN(tx.rsp_first_ns)) {
          tx.setOutcome(reason === 'reset' ? 'reset' : 'timeout');
          tx.note(reason === 'reset' ? 'reset_before_response' : reason === 'end' ? 'no_response_before_capture_end' : 'no_response');
        } else {
          tx.setOutcome(reason === 'reset' ? 'reset' : 'partial');
          tx.note('response_incomplete');
        }
      }
      this.owner.emitTransaction(tx, this);
    }
    this.open.length = 0;
  }

  // ---------------------------------------------------------------- AnalyzerContext

  beginRequest(protocol: string): Transaction {
    const tx = new Transaction(protocol);
    tx.req_first_ns = this.cur_ts_ns;
    tx.req_last_ns = this.cur_ts_ns;
    if (this.cur_from_client && this.cur_win >= 0) {
      // The window of the packet that opens the request (noted before the transaction existed).
      tx.client_win_min = this.cur_win;
      tx.client_win_last = this.cur_win;
    }
    if (this.open.length >= this.limits.max_open_transactions) {
      const oldest = this.open.shift()!;
      oldest.setOutcome('timeout');
      oldest.note('too_many_open_transactions');
      this.owner.count('transactions_forced_out');
      this.owner.emitTransaction(oldest, this);
    }
    this.open.push(tx);
    return tx;
  }

  requestBytes(tx: Transaction, n: number): void {
    if (this.cur_ts_ns > tx.req_last_ns || Number.isNaN(tx.req_last_ns)) tx.req_last_ns = this.cur_ts_ns;
    if (Number.isNaN(tx.req_first_ns)) tx.req_first_ns = this.cur_ts_ns;
    const keep = this.limits.request_prefix_bytes;
    if (keep > 0 && tx.request_bytes < keep) this.keepRequestPrefix(tx, n, keep);
    tx.request_bytes += n;
    this.cursor += n;
  }

  /**
   * Keeps the request's first bytes (what signature rules look at) as latin1 text, cut
   * straight out of the reused capture buffer: one native slice per segment, no copy.
   */
  private keepRequestPrefix(tx: Transaction, n: number, keep: number): void {
    const from = this.cursor - this.chunk_cursor;
    const take = Math.min(n, keep - tx.request_bytes, this.chunk_len - from);
    if (from < 0 || take <= 0) return; // bytes the capture did not keep (snap length)
    if (tx.request_text.length !== tx.request_bytes) return; // a hole before: the text stops there
    const base = this.chunk_off + from;
    const text = latin1(this.chunk_buf, base, base + take);
    tx.request_text = tx.request_bytes === 0 ? text : tx.request_text + text;
  }

  /** A retransmitted request (DNS): timing restarts from this copy, as tshark's dns.time does. */
  restartRequest(tx: Transaction): void {
    tx.req_first_ns = this.cur_ts_ns;
    tx.req_last_ns = this.cur_ts_ns;
    tx.request_retransmits++;
  }

  responseBytes(tx: Transaction, n: number, interim: boolean): void {
    const ts = this.cur_ts_ns;
    if (interim) {
      tx.interim = true;
    } else {
      if (Number.isNaN(tx.rsp_first_ns)) {
        tx.rsp_first_ns = ts;
        tx.rsp_start_off = this.cursor;
      }
      if (!(ts <= tx.rsp_last_ns)) tx.rsp_last_ns = ts;
      tx.response_bytes += n;
      if (tx.last_rsp_pkt !== this.cur_pkt) {
        tx.last_rsp_pkt = this.cur_pkt;
        tx.server_pkts++;
        tx.server_pkt_bytes_sum += this.cur_pkt_payload;
        if (this.cur_pkt_payload > tx.server_pkt_bytes_max) tx.server_pkt_bytes_max = this.cur_pkt_payload;
      }
      tx.rsp_end_off = this.cursor + n;
      const srv = this.streams[1];
      if (srv.acked_off > tx.acked_off) {
        // Bytes the client had acknowledged before the capture delivered them (a hole filled late).
        const lo = Math.max(tx.acked_off, tx.rsp_start_off);
        const hi = Math.min(srv.acked_off, tx.rsp_end_off);
        if (hi > lo) {
          tx.bytes_acked += hi - lo;
          tx.acked_off = hi;
          if (tx.last_ack_ts_ns !== srv.acked_ts_ns) {
            tx.client_acks++;
            tx.last_ack_ts_ns = srv.acked_ts_ns;
          }
        }
      }
      if (srv.acked_off < tx.rsp_end_off) tx.rsp_acked_ns = NaN; // new bytes, not acknowledged yet
      else if (Number.isNaN(tx.rsp_acked_ns)) tx.rsp_acked_ns = srv.acked_ts_ns;
    }
    this.cursor += n;
  }

  skipBytes(n: number): void {
    this.cursor += n;
  }

  endResponse(tx: Transaction): void {
    tx.complete = true;
  }

  abandon(tx: Transaction, note: string): void {
    tx.complete = true;
    tx.setOutcome('partial');
    tx.note(note);
  }

  packetMark(): number {
    return this.cur_ts_ns;
  }

  startedAt(tx: Transaction, mark: number, request: boolean): void {
    if (request) {
      if (mark < tx.req_first_ns) tx.req_first_ns = mark;
    } else if (mark < tx.rsp_first_ns) tx.rsp_first_ns = mark;
  }

  oldestAwaitingResponse(): Transaction | null {
    for (const tx of this.open) if (!tx.complete) return tx;
    return null;
  }

  count(kind: string): void {
    this.owner.count(kind);
  }

  // ---------------------------------------------------------------- internals

  /** stream offset of the byte the analyzer is looking at */
  private cursor = 0;
  /** the bytes being delivered: chunk_buf[chunk_off, chunk_off + chunk_len) starts at stream offset chunk_cursor */
  private chunk_buf: Uint8Array = NO_BYTES;
  private chunk_off = 0;
  private chunk_len = 0;
  private chunk_cursor = 0;

  private setChunk(buf: Uint8Array, off: number, len: number): void {
    this.chunk_buf = buf;
    this.chunk_off = off;
    this.chunk_len = len;
    this.chunk_cursor = this.cursor;
  }

  private deliverBytes(from_client: boolean, s: Stream, buf: Uint8Array, off: number, avail: number, wire: number, ts_ns: number, pkt = this.packet_counter): void {
    this.cur_ts_ns = ts_ns;
    this.cur_pkt = pkt;
    this.cur_pkt_payload = wire;
    if (avail > 0) {
      this.cursor = s.delivered;
      this.setChunk(buf, off, avail);
      this.session.onData(from_client, buf, off, avail);
      s.delivered += avail;
      s.next_seq = (s.next_seq + avail) >>> 0;
    }
    if (wire > avail) {
      // The snap length cut the payload: the rest is lost to the capture.
      this.count('payload_truncated_by_snaplen');
      this.declareGap(from_client, s, wire - avail, true);
    }
  }

  private endStream(from_client: boolean, s: Stream): void {
    if (s.fin) return;
    s.fin = true;
    // FIN occupies one sequence number (RFC 9293 §3.4).
    s.next_seq = (s.next_seq + 1) >>> 0;
    s.delivered += 1;
    this.session.onFin(from_client);
    this.emitFinished();
  }

  private declareGap(from_client: boolean, s: Stream, bytes: number, uncaptured = false): void {
    if (bytes <= 0) return;
    this.cursor = s.delivered;
    this.session.onGap(from_client, bytes, uncaptured);
    s.delivered += bytes;
    s.next_seq = (s.next_seq + bytes) >>> 0;
    if (!uncaptured) {
      for (const tx of this.open) {
        if (from_client) tx.client_lost_bytes += bytes;
        else tx.server_lost_bytes += bytes;
      }
    }
    if (!uncaptured) this.count(from_client ? 'gap_client' : 'gap_server');
  }

  private declareProvenGap(from_client: boolean, s: Stream): void {
    let missing = s.acked_off - s.delivered;
    if (s.held !== null) missing = Math.min(missing, s.held[0]!.off - s.delivered);
    this.declareGap(from_client, s, missing);
    this.releaseHeld(from_client, s);
  }

  private hold(from_client: boolean, s: Stream, pkt: DecodedPacket, rel: number, ts_ns: number, fin: boolean): void {
    for (const tx of this.open) {
      if (from_client) tx.client_out_of_order++;
      else tx.server_out_of_order++;
    }
    this.count('tcp_out_of_order');
    const off = s.delivered + rel;
    const bytes = pkt.payload_buf.slice(pkt.payload_off, pkt.payload_off + pkt.payload_len);
    const seg: HeldSegment = { off, bytes, ts_ns, fin, pkt: this.packet_counter };
    if (s.held === null) s.held = [];
    let i = s.held.length;
    while (i > 0 && s.held[i - 1]!.off > off) i--;
    s.held.splice(i, 0, seg);
    s.held_bytes += bytes.length;
    if (s.held.length > this.limits.max_ooo_segments || s.held_bytes > this.limits.max_ooo_bytes) {
      // The hole is not filling: give up on it.
      this.count('tcp_ooo_limit');
      this.declareGap(from_client, s, s.held[0]!.off - s.delivered);
      this.releaseHeld(from_client, s);
    }
  }

  private releaseHeld(from_client: boolean, s: Stream): void {
    const held = s.held;
    if (held === null) return;
    while (held.length > 0 && held[0]!.off <= s.delivered) {
      const seg = held.shift()!;
      s.held_bytes -= seg.bytes.length;
      const skip = s.delivered - seg.off;
      if (skip < seg.bytes.length) {
        this.deliverBytes(from_client, s, seg.bytes, skip, seg.bytes.length - skip, seg.bytes.length - skip, seg.ts_ns, seg.pkt);
      }
      if (seg.fin) this.endStream(from_client, s);
    }
    if (held.length === 0) s.held = null;
    this.emitFinished();
  }

  private countRetransmit(from_client: boolean): void {
    for (const tx of this.open) {
      if (from_client) tx.client_retransmits++;
      else tx.server_retransmits++;
    }
    this.count(from_client ? 'tcp_retransmit_client' : 'tcp_retransmit_server');
  }

  private noteWindow(from_client: boolean, s: Stream, win: number, rst: boolean): void {
    const zero = win === 0 && !rst;
    if (zero && !s.zero_window) for (const tx of this.open) tx.zero_window_events++;
    s.zero_window = zero;
    if (rst) return;
    for (const tx of this.open) {
      if (from_client) {
        if (win < tx.client_win_min) tx.client_win_min = win;
        tx.client_win_last = win;
      } else {
        if (win < tx.server_win_min) tx.server_win_min = win;
        tx.server_win_last = win;
      }
    }
  }

  /** An ACK from one side about the peer's stream `peer`. */
  private onAck(from_client: boolean, peer: Stream, ack: number, ts_ns: number): void {
    const ack_off = peer.delivered + ((ack - peer.next_seq) | 0);
    if (ack_off <= peer.acked_off) return;
    peer.acked_off = ack_off;
    peer.acked_ts_ns = ts_ns;
    // Round-trip sample (Karn: only segments sent once, RFC 6298 §3).
    if (!Number.isNaN(peer.sample_ts_ns) && ((ack - peer.sample_end_seq) | 0) >= 0) {
      const sample = ts_ns - peer.sample_ts_ns;
      peer.sample_ts_ns = NaN;
      if (sample >= 0) {
        if (from_client) {
          if (!(sample >= this.rtt_client_sample_ns)) this.rtt_client_sample_ns = sample;
        } else if (!(sample >= this.rtt_server_sample_ns)) this.rtt_server_sample_ns = sample;
      }
    }
    if (!from_client) return;
    let emit = false;
    for (const tx of this.open) {
      if (tx.rsp_start_off < 0) continue;
      const lo = Math.max(tx.acked_off, tx.rsp_start_off);
      if (ack_off <= lo) continue;
      const hi = Math.min(ack_off, tx.rsp_end_off);
      if (hi > lo) {
        tx.client_acks++;
        tx.last_ack_ts_ns = ts_ns;
        tx.bytes_acked += hi - lo;
      }
      if (ack_off > tx.acked_off) tx.acked_off = Math.min(ack_off, tx.rsp_end_off);
      if (ack_off >= tx.rsp_end_off && Number.isNaN(tx.rsp_acked_ns)) {
        tx.rsp_acked_ns = ts_ns;
        emit = true;
      }
    }
    if (emit) this.emitFinished();
  }

  /** Emits finished transactions: complete and (over TCP) acknowledged by the client. */
  private emitFinished(): void {
    const open = this.open;
    if (open.length === 0) return;
    let w = 0;
    for (let r = 0; r < open.length; r++) {
      const tx = open[r]!;
      const done = tx.complete && (this.transport === 'udp' || !Number.isNaN(tx.rsp_acked_ns) || tx.rsp_start_off < 0);
      if (done) this.owner.emitTransaction(tx, this);
      else open[w++] = tx;
    }
    // pop(), not `open.length = w`: TurboFan inlines pop, a length store is a runtime call.
    while (open.length > w) open.pop();
  }
}
