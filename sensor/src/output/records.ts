import type { ConnectionOutcome, TransactionOutcome } from '../transaction/transaction.ts';

/**
 * Raw output records (DESIGN.md, Raw output): one JSON object per line, snake_case,
 * timestamps RFC 3339 with nanoseconds, durations integer nanoseconds, null when
 * not measured.
 */
export interface TransactionRecord {
  type: 'transaction';
  protocol: string;
  signature: string;
  subject: string;
  status: number | null;
  outcome: TransactionOutcome;
  notes: string[];
  transport: 'tcp' | 'udp';
  client: string;
  client_port: number;
  server: string;
  server_port: number;
  req_first: string | null;
  req_last: string | null;
  rsp_first: string | null;
  rsp_last: string | null;
  rsp_acked: string | null;
  request_ns: number | null;
  ttfr_ns: number | null;
  ttlr_ns: number | null;
  ttla_ns: number | null;
  edt_ns: number | null;
  rtt_ns: number | null;
  rtt_server_ns: number | null;
  rtt_client_ns: number | null;
  /** where the round-trip times come from: the handshake, or data→ACK samples when it was not seen */
  rtt_source: 'handshake' | 'samples' | null;
  request_bytes: number;
  response_bytes: number;
  client_acks: number;
  bytes_acked: number;
  server_pkts: number;
  server_pkt_bytes_avg: number | null;
  server_pkt_bytes_max: number | null;
  client_mss: number | null;
  server_mss: number | null;
  client_win_min: number | null;
  client_win_last: number | null;
  server_win_min: number | null;
  server_win_last: number | null;
  client_retransmits: number;
  server_retransmits: number;
  client_out_of_order: number;
  server_out_of_order: number;
  client_lost_bytes: number;
  server_lost_bytes: number;
  zero_window_events: number;
  request_retransmits: number;
}

/** Every TCP connection, whether or not a request followed (DESIGN.md, connection set-up). */
export interface ConnectionRecord {
  type: 'connection';
  protocol: 'tcp';
  signature: 'TCP_CONNECT';
  outcome: ConnectionOutcome;
  transport: 'tcp';
  client: string;
  client_port: number;
  server: string;
  server_port: number;
  start: string | null;
  end: string | null;
  syn: string | null;
  syn_ack: string | null;
  ack: string | null;
  rtt_server_ns: number | null;
  rtt_client_ns: number | null;
  rtt_ns: number | null;
  syn_retransmits: number;
  syn_ack_retransmits: number;
  client_mss: number | null;
  server_mss: number | null;
  client_wscale: number | null;
  server_wscale: number | null;
  client_data_pkts: number;
  server_data_pkts: number;
  picked_up_mid_stream: boolean;
}

export interface StatisticsRecord {
  type: 'statistics';
  packets: number;
  bytes: number;
  first_packet: string | null;
  last_packet: string | null;
  decode_errors: Record<string, number>;
  skipped: Record<string, number>;
  fragments: Record<string, number>;
  flows: { created: number; active: number; peak: number; closed: number; expired: number; evicted: number; max: number };
  connections: { total: number; by_outcome: Record<string, number> };
  transactions: { total: number; by_protocol: Record<string, number>; by_signature: Record<string, number>; by_outcome: Record<string, number> };
  anomalies: Record<string, number>;
  capture: { format: string; interfaces: number; bytes_read: number; error: string | null } | null;
  /** packets the kernel dropped (live capture); null for files */
  kernel_drops: number | null;
}

export type OutputRecord = TransactionRecord | ConnectionRecord | StatisticsRecord;

/** One metric of an interval summary, over the records where it was not null. */
export interface SummaryMetric {
  count: number;
  sum: number;
  min: number;
  max: number;
  /** timing metrics (`_ns`): quantiles from the sketch (value at rank ⌊q·(count−1)⌋, within 1 %), integer ns */
  p50?: number;
  p90?: number;
  p95?: number;
  p99?: number;
  /** timing metrics: negative durations (capture clock stepped back) counted here and summarised as 0 */
  negative_clamped?: number;
  /** timing metrics: DDSketch (relative accuracy 1 %) as base64 protobuf, mergeable across intervals and sensors */
  sketch?: string;
}

/**
 * One key of one closed interval (DESIGN.md, Interval summaries): sensor, interval start,
 * server, server port, transport, protocol, signature. Connections are summarised under
 * protocol "tcp", signature "TCP_CONNECT". Metrics with no value in the interval are left out.
 */
export interface SummaryRecord {
  type: 'summary';
  /** RFC 3339 UTC, whole seconds (`2026-01-01T00:05:00Z`), aligned to `interval_s` */
  interval_start: string;
  interval_s: number;
  sensor: string;
  server: string;
  server_port: number;
  transport: 'tcp' | 'udp';
  protocol: string;
  signature: string;
  count: number;
  /** records by outcome (only outcomes that occurred) */
  outcomes: Record<string, number>;
  metrics: Record<string, SummaryMetric>;
  /** present when the interval was closed before its end (end of input, SIGINT/SIGTERM) */
  partial?: true;
}
