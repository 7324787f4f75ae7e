import type { ConnectionRecord, TransactionRecord } from '../output/records.ts';

export { prng } from '../../../test/support/prng.ts';

/** Standard normal deviate (Box–Muller). */
export function normal(rnd: () => number): number {
  const u = 1 - rnd();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rnd());
}

/**
 * The true quantile by sorting: the value at rank ⌊q·(n−1)⌋ of the ascending data (the
 * definition DDSketch's getValueAtQuantile approximates; same floating-point expression).
 */
export function trueQuantile(sorted: readonly number[], q: number): number {
  return sorted[Math.floor(q * (sorted.length - 1))]!;
}

export function relErr(estimate: number, truth: number): number {
  if (truth === 0) return estimate === 0 ? 0 : Infinity;
  return Math.abs(estimate - truth) / Math.abs(truth);
}

/** 2026-01-01T00:00:00Z */
export const T0 = Date.UTC(2026, 0, 1) / 1000;

export function tx(over: Partial<TransactionRecord> = {}): TransactionRecord {
  return {
    type: 'transaction',
    protocol: 'http',
    signature: 'GET',
    subject: 'GET /',
    status: 200,
    outcome: 'ok',
    notes: [],
    transport: 'tcp',
    client: '10.0.0.1',
    client_port: 40000,
    server: '10.0.0.2',
    server_port: 80,
    req_first: null,
    req_last: null,
    rsp_first: null,
    rsp_last: null,
    rsp_acked: null,
    request_ns: null,
    ttfr_ns: null,
    ttlr_ns: null,
    ttla_ns: null,
    edt_ns: null,
    rtt_ns: null,
    rtt_server_ns: null,
    rtt_client_ns: null,
    rtt_source: null,
    request_bytes: 0,
    response_bytes: 0,
    client_acks: 0,
    bytes_acked: 0,
    server_pkts: 0,
    server_pkt_bytes_avg: null,
    server_pkt_bytes_max: null,
    client_mss: null,
    server_mss: null,
    client_win_min: null,
    client_win_last: null,
    server_win_min: null,
    server_win_last: null,
    client_retransmits: 0,
    server_retransmits: 0,
    client_out_of_order: 0,
    server_out_of_order: 0,
    client_lost_bytes: 0,
    server_lost_bytes: 0,
    zero_window_events: 0,
    request_retransmits: 0,
    ...over,
  };
}

export function conn(over: Partial<ConnectionRecord> = {}): ConnectionRecord {
  return {
    type: 'connection',
    protocol: 'tcp',
    signature: 'TCP_CONNECT',
    outcome: 'closed',
    transport: 'tcp',
    client: '10.0.0.1',
    client_port: 40000,
    server: '10.0.0.2',
    server_port: 80,
    start: null,
    end: null,
    syn: null,
    syn_ack: null,
    ack: null,
    rtt_server_ns: null,
    rtt_client_ns: null,
    rtt_ns: null,
    syn_retransmits: 0,
    syn_ack_retransmits: 0,
    client_mss: null,
    server_mss: null,
    client_wscale: null,
    server_wscale: null,
    client_data_pkts: 0,
    server_data_pkts: 0,
    picked_up_mid_stream: false,
    ...over,
  };
}
