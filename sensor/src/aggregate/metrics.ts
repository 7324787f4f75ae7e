import type { ConnectionRecord, TransactionRecord } from '../output/records.ts';

/**
 * What a summary keeps of each record kind: the numeric metrics (timing metrics, the `_ns`
 * ones, first: metric i < `timing` has a sketch at index i), the outcome names, and a reader
 * that copies a record's metrics into a scratch array in catalogue order (NaN = null) with
 * plain property reads, so that the hot path stays monomorphic.
 */
export interface RecordKind {
  readonly name: 'transaction' | 'connection';
  readonly metrics: readonly string[];
  /** how many of `metrics` (the first ones) are timing metrics with a sketch */
  readonly timing: number;
  readonly outcomes: readonly string[];
  /** signature of this kind's overflow key */
  readonly overflow_signature: string;
  read(record: TransactionRecord | ConnectionRecord, out: Float64Array): void;
}

export const TRANSACTION_METRICS = [
  'request_ns', 'ttfr_ns', 'ttlr_ns', 'ttla_ns', 'edt_ns', 'rtt_ns', 'rtt_server_ns', 'rtt_client_ns',
  'request_bytes', 'response_bytes', 'client_acks', 'bytes_acked', 'server_pkts', 'server_pkt_bytes_avg',
  'server_pkt_bytes_max', 'client_mss', 'server_mss', 'client_win_min', 'client_win_last', 'server_win_min',
  'server_win_last', 'client_retransmits', 'server_retransmits', 'client_out_of_order', 'server_out_of_order',
  'client_lost_bytes', 'server_lost_bytes', 'zero_window_events', 'request_retransmits',
] as const;

export const CONNECTION_METRICS = [
  'rtt_ns', 'rtt_server_ns', 'rtt_client_ns', 'syn_retransmits', 'syn_ack_retransmits', 'client_mss', 'server_mss',
] as const;

function n(v: number | null): number {
  return v === null ? NaN : v;
}

export const TRANSACTION_KIND: RecordKind = {
  name: 'transaction',
  metrics: TRANSACTION_METRICS,
  timing: 8,
  outcomes: ['ok', 'error', 'reset', 'timeout', 'partial'],
  overflow_signature: ':overflow',
  read(record, o) {
    const r = record as TransactionRecord;
    o[0] = n(r.request_ns);
    o[1] = n(r.ttfr_ns);
    o[2] = n(r.ttlr_ns);
    o[3] = n(r.ttla_ns);
    o[4] = n(r.edt_ns);
    o[5] = n(r.rtt_ns);
    o[6] = n(r.rtt_server_ns);
    o[7] = n(r.rtt_client_ns);
    o[8] = r.request_bytes;
    o[9] = r.response_bytes;
    o[10] = r.client_acks;
    o[11] = r.bytes_acked;
    o[12] = r.server_pkts;
    o[13] = n(r.server_pkt_bytes_avg);
    o[14] = n(r.server_pkt_bytes_max);
    o[15] = n(r.client_mss);
    o[16] = n(r.server_mss);
    o[17] = n(r.client_win_min);
    o[18] = n(r.client_win_last);
    o[19] = n(r.server_win_min);
    o[20] = n(r.server_win_last);
    o[21] = r.client_retransmits;
    o[22] = r.server_retransmits;
    o[23] = r.client_out_of_order;
    o[24] = r.server_out_of_order;
    o[25] = r.client_lost_bytes;
    o[26] = r.server_lost_bytes;
    o[27] = r.zero_window_events;
    o[28] = r.request_retransmits;
  },
};

export const CONNECTION_KIND: RecordKind = {
  name: 'connection',
  metrics: CONNECTION_METRICS,
  timing: 3,
  outcomes: ['closed', 'refused', 'unanswered', 'client_ack_missing', 'reset_by_client', 'reset_by_server', 'timed_out', 'half_closed', 'open'],
  // Connections share protocol "tcp" with generic-TCP transactions: their overflow keys must differ.
  overflow_signature: 'TCP_CONNECT:overflow',
  read(record, o) {
    const r = record as ConnectionRecord;
    o[0] = n(r.rtt_ns);
    o[1] = n(r.rtt_server_ns);
    o[2] = n(r.rtt_client_ns);
    o[3] = r.syn_retransmits;
    o[4] = r.syn_ack_retransmits;
    o[5] = n(r.client_mss);
    o[6] = n(r.server_mss);
  },
};
