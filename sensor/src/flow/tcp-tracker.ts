import type { SlotColumns } from './flow-table.ts';

/** TCP connection state of a flow slot. */
export const ConnState = {
  /** no SYN seen yet (or a UDP flow) */
  NONE: 0,
  SYN_SENT: 1,
  SYN_RECEIVED: 2,
  ESTABLISHED: 3,
  /** closed by FIN both ways or RST; records emitted; lingers until idle so late packets are recognised */
  CLOSED: 4,
} as const;

/**
 * Per-flow columns of the TCP tracker and of flow timing, one entry per flow-table
 * slot (typed arrays rather than an object per flow: ~100 bytes per flow instead of
 * several hundred, see STACK-NOTES). Sides are the flow table's: 0 = A (source of the
 * flow's first packet), 1 = B.
 *
 * Times are nanoseconds relative to `base_sec[slot]` (the whole second of the
 * flow's first packet): exact for flows shorter than ~104 days.
 */
export class FlowColumns implements SlotColumns {
  base_sec: Float64Array = new Float64Array(0);
  first_ns: Float64Array = new Float64Array(0);
  last_ns: Float64Array = new Float64Array(0);
  state: Uint8Array = new Uint8Array(0);
  /** side that is the client: 0, 1, or -1 while unknown */
  client_side: Int8Array = new Int8Array(0);
  /** side that sent the first SYN, -1 none */
  syn_side: Int8Array = new Int8Array(0);
  /** side that sent the SYN/ACK, -1 none */
  synack_side: Int8Array = new Int8Array(0);
  syn_ns: Float64Array = new Float64Array(0);
  synack_ns: Float64Array = new Float64Array(0);
  hs_ack_ns: Float64Array = new Float64Array(0);
  syn_count: Uint16Array = new Uint16Array(0);
  synack_count: Uint16Array = new Uint16Array(0);
  /** initial sequence numbers, 2 per slot (side A, side B) */
  isn: Uint32Array = new Uint32Array(0);
  /** SYN options, 2 per slot: MSS (-1 none), window scale shift (-1 none) */
  mss: Int32Array = new Int32Array(0);
  wscale: Int8Array = new Int8Array(0);
  /** bit 0: side A sent FIN; bit 1: side B sent FIN */
  fin_bits: Uint8Array = new Uint8Array(0);
  /** side that sent RST, -1 none */
  rst_side: Int8Array = new Int8Array(0);
  /** data packets seen from side A / B (2 per slot) */
  data_pkts: Uint32Array = new Uint32Array(0);
  /** the flow was reported (connection record emitted); kept while it lingers */
  reported: Uint8Array = new Uint8Array(0);

  resize(capacity: number): void {
    this.base_sec = growF64(this.base_sec, capacity);
    this.first_ns = growF64(this.first_ns, capacity);
    this.last_ns = growF64(this.last_ns, capacity);
    this.state = grow(this.state, capacity, Uint8Array);
    this.client_side = grow(this.client_side, capacity, Int8Array);
    this.syn_side = grow(this.syn_side, capacity, Int8Array);
    this.synack_side = grow(this.synack_side, capacity, Int8Array);
    this.syn_ns = growF64(this.syn_ns, capacity);
    this.synack_ns = growF64(this.synack_ns, capacity);
    this.hs_ack_ns = growF64(this.hs_ack_ns, capacity);
    this.syn_count = grow(this.syn_count, capacity, Uint16Array);
    this.synack_count = grow(this.synack_count, capacity, Uint16Array);
    this.isn = grow(this.isn, capacity * 2, Uint32Array);
    this.mss = grow(this.mss, capacity * 2, Int32Array);
    this.wscale = grow(this.wscale, capacity * 2, Int8Array);
    this.fin_bits = grow(this.fin_bits, capacity, Uint8Array);
    this.rst_side = grow(this.rst_side, capacity, Int8Array);
    this.data_pkts = grow(this.data_pkts, capacity * 2, Uint32Array);
    this.reported = grow(this.reported, capacity, Uint8Array);
  }

  /** Resets a slot for a new flow whose first packet is at (ts_sec, ts_nsec). */
  reset(slot: number, ts_sec: number, ts_nsec: number): void {
    this.base_sec[slot] = ts_sec;
    this.first_ns[slot] = ts_nsec;
    this.last_ns[slot] = ts_nsec;
    this.state[slot] = ConnState.NONE;
    this.client_side[slot] = -1;
    this.syn_side[slot] = -1;
    this.synack_side[slot] = -1;
    this.syn_ns[slot] = NaN;
    this.synack_ns[slot] = NaN;
    this.hs_ack_ns[slot] = NaN;
    this.syn_count[slot] = 0;
    this.synack_count[slot] = 0;
    this.isn[slot * 2] = 0;
    this.isn[slot * 2 + 1] = 0;
    this.mss[slot * 2] = -1;
    this.mss[slot * 2 + 1] = -1;
    this.wscale[slot * 2] = -1;
    this.wscale[slot * 2 + 1] = -1;
    this.fin_bits[slot] = 0;
    this.rst_side[slot] = -1;
    this.data_pkts[slot * 2] = 0;
    this.data_pkts[slot * 2 + 1] = 0;
    this.reported[slot] = 0;
  }

  /** Window-scale shift of a side: applies only when both SYN and SYN/ACK carried the option (RFC 7323 §2.2). */
  windowShift(slot: number, side: number): number {
    const a = this.wscale[slot * 2]!;
    const b = this.wscale[slot * 2 + 1]!;
    if (a < 0 || b < 0) return 0;
    return Math.min(14, side === 0 ? a : b);
  }

  /** Handshake round trips at the capture point (DESIGN.md): NaN when not measured. */
  rttServerNs(slot: number): number {
    const v = this.synack_ns[slot]! - this.syn_ns[slot]!;
    return v >= 0 ? v : NaN;
  }

  /**
   * SYN → ACK of the SYN/ACK, tshark's tcp.analysis.initial_rtt. Equal to
   * rtt_server + rtt_client when the capture has the handshake in order, and still
   * right when it does not (a SYN/ACK captured before its SYN).
   */
  rttNs(slot: number): number {
    const v = this.hs_ack_ns[slot]! - this.syn_ns[slot]!;
    return v >= 0 ? v : NaN;
  }

  rttClientNs(slot: number): number {
    const v = this.hs_ack_ns[slot]! - this.synack_ns[slot]!;
    return v >= 0 ? v : NaN;
  }
}

function growF64(a: Float64Array, n: number): Float64Array {
  const b = new Float64Array(n);
  b.set(a.subarray(0, Math.min(a.length, n)));
  return b;
}

function grow<T extends Uint8Array | Int8Array | Uint16Array | Uint32Array | Int32Array>(
  a: T, n: number, ctor: new (n: number) => T): T {
  const b = new ctor(n);
  b.set(a.subarray(0, Math.min(a.length, n)) as never);
  return b;
}
