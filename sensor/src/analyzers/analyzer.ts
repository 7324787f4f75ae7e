import type { Transaction } from '../transaction/transaction.ts';

/**
 * What a protocol analyzer is given by its conversation. The conversation knows the
 * packet being delivered (its capture time, its stream offsets); the analyzer only
 * says which bytes belong to which message, in stream order.
 *
 * Call order inside one `onData`: for each message piece in the chunk, in order,
 * `requestBytes` / `responseBytes` with its length. Bytes not reported (e.g. a server
 * greeting without a request) are skipped with `skipBytes` so that offsets stay right.
 */
export interface AnalyzerContext {
  /** a new transaction whose request starts in the current packet (FIFO order of requests) */
  beginRequest(protocol: string): Transaction;
  /** `n` request bytes of `tx` are in the current packet */
  requestBytes(tx: Transaction, n: number): void;
  /** `n` response bytes of `tx` are in the current packet; `interim` for 1xx answers */
  responseBytes(tx: Transaction, n: number, interim: boolean): void;
  /** `n` bytes of the current chunk belong to no transaction */
  skipBytes(n: number): void;
  /** the response of `tx` is complete */
  endResponse(tx: Transaction): void;
  /** the response of `tx` will never come (lost in a capture gap); finishes it as partial */
  abandon(tx: Transaction, note: string): void;
  /** a retransmitted request (DNS): timing restarts from the current packet, as tshark's dns.time does */
  restartRequest(tx: Transaction): void;
  /** An opaque mark of the current packet, for `startedAt` when a message turns out to have begun in it. */
  packetMark(): number;
  /**
   * The request (or response) of `tx` began in the packet marked `mark`, earlier than
   * the packet where the analyzer could tell which transaction it was (a DNS-over-TCP
   * length prefix that came alone).
   */
  startedAt(tx: Transaction, mark: number, request: boolean): void;
  /** the oldest transaction still waiting for (the rest of) its response, or null */
  oldestAwaitingResponse(): Transaction | null;
  /** count an anomaly of this conversation in the statistics (e.g. `http_unmatched_response`) */
  count(kind: string): void;
}

/**
 * Per-connection (or per-UDP-flow) state of one analyzer. Parsers never throw across
 * this interface: malformed input is noted and counted, and the analyzer resynchronises.
 */
export interface AnalyzerSession {
  /** In-order stream bytes from one side. For UDP, one datagram per call. */
  onData(from_client: boolean, buf: Uint8Array, off: number, len: number): void;
  /**
   * `bytes` of one side's stream are missing. `uncaptured`: they were in a packet the
   * capture saw but cut at its snap length (their timing is the current packet's);
   * otherwise the packets themselves were lost to the capture.
   */
  onGap(from_client: boolean, bytes: number, uncaptured: boolean): void;
  /** one side sent FIN (its stream ended); may be called more than once */
  onFin(from_client: boolean): void;
  /**
   * The conversation ends: `closed` (FIN both ways), `reset` (RST), `idle` (idle
   * timeout) or `end` (end of capture). Analyzers complete what that end delimits
   * (a close-delimited body, a generic turn); the conversation finishes the rest.
   */
  onClose(reason: CloseReason): void;
}

export type CloseReason = 'closed' | 'reset' | 'idle' | 'end';

/** Confidence of a payload probe. */
export const Probe = { NO: 0, MAYBE: 1, YES: 2 } as const;

/** An analyzer as the registry lists it (packetbeat's protocol plugin, in our shape). */
export interface Analyzer {
  /** protocol id, as written in records and options: "http", "dns", "tcp" */
  readonly id: string;
  readonly transports: readonly ('tcp' | 'udp')[];
  /** server ports where this protocol is usual: hints for the client role and the probe order, never required */
  readonly default_ports: readonly number[];
  /**
   * Looks at the first payload of a flow and says whether it is this protocol.
   * `from_client` is null when the roles are not known yet.
   */
  probe(transport: 'tcp' | 'udp', from_client: boolean | null, buf: Uint8Array, off: number, len: number, src_port: number, dst_port: number): number;
  /** Which side sent this first payload, when the payload tells (a request line, a DNS QR bit); null otherwise. */
  fromClient(transport: 'tcp' | 'udp', buf: Uint8Array, off: number, len: number): boolean | null;
  /** state for one conversation */
  create(ctx: AnalyzerContext, transport: 'tcp' | 'udp'): AnalyzerSession;
}
