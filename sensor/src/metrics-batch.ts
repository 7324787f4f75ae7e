import { TRANSACTION_METRICS } from './aggregate/metrics.ts';

/** Rows a batch holds before the pipeline names and hands them on. */
export const BATCH_ROWS = 64;

/**
 * Transactions' and connections' metrics on their way to the metrics sink (the interval
 * aggregator), held for a moment so that the signature set names a batch of transactions in
 * one go and the aggregator then takes the batch in one go, instead of each running once
 * per transaction between packets.
 *
 * Why: between two transactions the pipeline handles ~18 packets, whose code and data push
 * the classifier's out of the CPU's caches. Counted by cachegrind over the bench capture
 * (32 KB first-level caches, 512 KB second level), the 200 bench rules added 19.8 M
 * instruction-cache and 16.7 M data-cache misses to the run when each transaction was named
 * as it ended; named 64 at a time, the run with the rules has 3.2 M fewer instruction-cache
 * misses than the run without, and 3.8 M more data-cache misses. Without rules, holding the
 * aggregator's rows alone changed nothing (80.0 M instruction-cache misses either way) and
 * cost instructions, so the pipeline batches only when it names.
 *
 * Rows keep arrival order, connections' rows included, so the aggregator sees the same
 * sequence as without the batch (which key comes first matters once an interval's key
 * bound bites), and the pipeline empties the batch before its clock moves, so intervals
 * close and the rules' name budget restarts exactly where they did. Fixed size: nothing
 * is allocated per row; a row's values are a view made once.
 */
export class MetricsBatch {
  /** rows in use, from 0 */
  count = 0;
  /** 1 for a connection's row, 0 for a transaction's */
  readonly connection = new Uint8Array(BATCH_ROWS);
  readonly server: string[] = new Array<string>(BATCH_ROWS).fill('');
  readonly server_port = new Int32Array(BATCH_ROWS);
  readonly transport: ('tcp' | 'udp')[] = new Array<'tcp' | 'udp'>(BATCH_ROWS).fill('tcp');
  readonly protocol: string[] = new Array<string>(BATCH_ROWS).fill('');
  /** the analyzer's name until the row is named */
  readonly signature: string[] = new Array<string>(BATCH_ROWS).fill('');
  readonly outcome: string[] = new Array<string>(BATCH_ROWS).fill('');
  /** what the rules look at (a transaction's row only); emptied once named */
  readonly request: string[] = new Array<string>(BATCH_ROWS).fill('');
  readonly subject: string[] = new Array<string>(BATCH_ROWS).fill('');
  readonly time_s = new Float64Array(BATCH_ROWS);
  /** each row's metrics, in the order of its kind's metric list (TRANSACTION_METRICS has the most) */
  readonly values: Float64Array[];

  constructor() {
    const stride = TRANSACTION_METRICS.length;
    const all = new Float64Array(BATCH_ROWS * stride);
    this.values = Array.from({ length: BATCH_ROWS }, (_, i) => all.subarray(i * stride, (i + 1) * stride));
  }

  /** Fills the row `count` (its values already written to `values[count]`) and takes it; true when the batch is now full. */
  add(connection: boolean, server: string, server_port: number, transport: 'tcp' | 'udp', protocol: string, signature: string,
    outcome: string, time_s: number, request: string, subject: string): boolean {
    const i = this.count++;
    this.connection[i] = connection ? 1 : 0;
    this.server[i] = server;
    this.server_port[i] = server_port;
    this.transport[i] = transport;
    this.protocol[i] = protocol;
    this.signature[i] = signature;
    this.outcome[i] = outcome;
    this.time_s[i] = time_s;
    this.request[i] = request;
    this.subject[i] = subject;
    return this.count === BATCH_ROWS;
  }
}
