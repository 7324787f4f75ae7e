import type { Analyzer, AnalyzerContext, AnalyzerSession, CloseReason } from '../analyzer.ts';
import { Probe } from '../analyzer.ts';
import type { Transaction } from '../../transaction/transaction.ts';

/**
 * Turn-taking for any TCP protocol (DESIGN.md): a request is the client payload that
 * follows a response (or opens the connection); its response is the server payload
 * that follows, until the client sends again, the connection closes or idles out.
 * Server bytes before any request (a greeting banner) belong to no transaction.
 */
const EMPTY = new Uint8Array(0);

export class GenericTcpSession implements AnalyzerSession {
  private readonly ctx: AnalyzerContext;
  private cur: Transaction | null = null;
  private answered = false;

  constructor(ctx: AnalyzerContext) {
    this.ctx = ctx;
  }

  onData(from_client: boolean, _buf: Uint8Array, _off: number, len: number): void {
    if (from_client) {
      if (this.cur === null || this.answered) {
        if (this.cur !== null) this.ctx.endResponse(this.cur);
        this.cur = this.ctx.beginRequest('tcp');
        this.cur.signature = 'REQUEST';
        this.answered = false;
      }
      this.ctx.requestBytes(this.cur, len);
    } else if (this.cur !== null) {
      this.answered = true;
      this.ctx.responseBytes(this.cur, len, false);
    } else {
      this.ctx.skipBytes(len);
      this.ctx.count('tcp_server_bytes_before_request');
    }
  }

  onGap(from_client: boolean, bytes: number, uncaptured: boolean): void {
    if (uncaptured) {
      // Cut by the snap length, but seen on the wire: turn-taking needs only the lengths.
      this.onData(from_client, EMPTY, 0, bytes);
      this.cur?.note('payload_not_captured');
      return;
    }
    if (this.cur !== null) {
      this.cur.setOutcome('partial');
      this.cur.note(from_client ? 'gap_in_request' : 'gap_in_response');
    }
    this.ctx.skipBytes(bytes);
  }

  onFin(from_client: boolean): void {
    // The server closing its side ends the turn.
    if (!from_client && this.cur !== null && this.answered) this.ctx.endResponse(this.cur);
  }

  onClose(reason: CloseReason): void {
    if (reason !== 'reset' && this.cur !== null && this.answered) this.ctx.endResponse(this.cur);
  }
}

export const genericTcpAnalyzer: Analyzer = {
  id: 'tcp',
  transports: ['tcp'],
  default_ports: [],
  probe: () => Probe.MAYBE,
  fromClient: () => null,
  create: (ctx) => new GenericTcpSession(ctx),
};
