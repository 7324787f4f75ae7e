/**
 * One request and the response to it (DESIGN.md, "A transaction and its metrics").
 *
 * Created by a `Conversation` when an analyzer sees a request begin, filled while
 * the conversation delivers bytes and ACKs, and handed to the output once it is
 * finished. Times are nanoseconds relative to the flow's base second
 * (`base_sec`), so that they stay exact; NaN means "not seen".
 */
export class Transaction {
  protocol: string;
  /** name given by the analyzer's default rule (signature classification refines it) */
  signature = '';
  /** what the request asked for, e.g. "GET /index.html" or "A example.com" (bounded length) */
  subject = '';
  /** protocol status: HTTP status code, DNS rcode; -1 when none */
  status = -1;
  outcome: TransactionOutcome = 'ok';
  notes: string[] | null = null;

  req_first_ns = NaN;
  req_last_ns = NaN;
  rsp_first_ns = NaN;
  rsp_last_ns = NaN;
  rsp_acked_ns = NaN;

  request_bytes = 0;
  response_bytes = 0;
  /**
   * The request's first bytes as latin1 (one code unit per byte), kept when signature
   * rules look at them: up to the rules' largest Offset + Depth, and only bytes that
   * follow each other from the request's start (a hole ends it).
   */
  request_text = '';
  /** response packets carrying payload, and the sum and maximum of their payload bytes */
  server_pkts = 0;
  server_pkt_bytes_sum = 0;
  server_pkt_bytes_max = 0;
  client_acks = 0;
  bytes_acked = 0;

  client_win_min = Infinity;
  client_win_last = -1;
  server_win_min = Infinity;
  server_win_last = -1;

  client_retransmits = 0;
  server_retransmits = 0;
  client_out_of_order = 0;
  server_out_of_order = 0;
  client_lost_bytes = 0;
  server_lost_bytes = 0;
  zero_window_events = 0;
  /** requests sent again before the answer (DNS query retransmissions) */
  request_retransmits = 0;

  /** server stream offsets of the response: [rsp_start_off, rsp_end_off) */
  rsp_start_off = -1;
  rsp_end_off = -1;
  /** highest server stream offset the client has acknowledged within this response */
  acked_off = -1;
  /** time of the last client ACK counted in `client_acks` */
  last_ack_ts_ns = NaN;
  /** the response is complete (its end is known) */
  complete = false;
  /** an interim (1xx) answer was seen */
  interim = false;
  /** packet counter value when this transaction last counted a response packet */
  last_rsp_pkt = -1;

  constructor(protocol: string) {
    this.protocol = protocol;
  }

  note(text: string): void {
    if (this.notes === null) this.notes = [text];
    else if (!this.notes.includes(text) && this.notes.length < 8) this.notes.push(text);
  }

  /** Worse outcomes win: reset/timeout/partial are not overwritten by error or ok. */
  setOutcome(outcome: TransactionOutcome): void {
    if (OUTCOME_RANK[outcome] > OUTCOME_RANK[this.outcome]) this.outcome = outcome;
  }
}

export type TransactionOutcome = 'ok' | 'error' | 'partial' | 'reset' | 'timeout';

const OUTCOME_RANK: Record<TransactionOutcome, number> = { ok: 0, error: 1, partial: 2, reset: 3, timeout: 4 };

/** How a TCP connection ended (DESIGN.md, connection set-up). `open`: still open when the capture ended. */
export type ConnectionOutcome =
  | 'closed' | 'refused' | 'unanswered' | 'client_ack_missing' | 'reset_by_client'
  | 'reset_by_server' | 'timed_out' | 'half_closed' | 'open';
