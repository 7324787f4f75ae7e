import type { Analyzer, AnalyzerContext, AnalyzerSession, CloseReason } from '../analyzer.ts';
import { Probe } from '../analyzer.ts';
import type { Transaction } from '../../transaction/transaction.ts';

/** Longest request or response head (start line + headers) accepted; longer is malformed. */
const MAX_HEAD_BYTES = 64 * 1024;
/** Longest path kept in a transaction's subject. */
const MAX_SUBJECT_PATH = 256;

const METHODS = ['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'REPORT', 'SEARCH'];
const METHOD_BYTES = METHODS.map((m) => Buffer.from(m + ' ', 'latin1'));
const HTTP_SLASH = Buffer.from('HTTP/1.', 'latin1');

const enum State {
  /** between messages or inside a head: collecting start line + headers */
  HEAD,
  /** body with a known remaining length */
  BODY,
  CHUNK_SIZE,
  CHUNK_DATA,
  /** the CRLF after a chunk's data */
  CHUNK_END,
  TRAILER,
  /** response body delimited by the server closing the connection (RFC 9112 §6.3 rule 8) */
  UNTIL_CLOSE,
  /** lost track (gap, malformed): skip until a segment starts a new message */
  RESYNC,
  /** after 101 Switching Protocols or a CONNECT tunnel: not HTTP any more */
  TUNNEL,
}

function startsWith(buf: Uint8Array, off: number, len: number, prefix: Uint8Array): boolean {
  if (len < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buf[off + i] !== prefix[i]) return false;
  return true;
}

function isRequestStart(buf: Uint8Array, off: number, len: number): boolean {
  for (const m of METHOD_BYTES) if (startsWith(buf, off, len, m)) return true;
  return false;
}

/**
 * Whether the request line in head[0, head_len) + buf[from, to) ends with a protocol
 * version (" HTTP/x.y", RFC 9112 §3); without one it is an HTTP/0.9 simple request.
 */
function hasVersion(head: Uint8Array, head_len: number, buf: Uint8Array, from: number, to: number): boolean {
  let n = head_len + (to - from);
  if (n > 0 && byteAt(head, head_len, buf, from, n - 1) === CR) n--;
  if (n < 9) return false;
  for (let i = 0; i < VERSION_PREFIX.length; i++) if (byteAt(head, head_len, buf, from, n - 9 + i) !== VERSION_PREFIX[i]) return false;
  return true;
}

/** Byte k of head[0, head_len) followed by buf[from, …). */
function byteAt(head: Uint8Array, head_len: number, buf: Uint8Array, from: number, k: number): number {
  return k < head_len ? head[k]! : buf[from + k - head_len]!;
}

function isResponseStart(buf: Uint8Array, off: number, len: number): boolean {
  return startsWith(buf, off, len, HTTP_SLASH);
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const VERSION_PREFIX = Buffer.from(' HTTP/', 'latin1');
const CONTENT_LENGTH = Buffer.from('content-length', 'latin1');
const TRANSFER_ENCODING = Buffer.from('transfer-encoding', 'latin1');
const EXPECT = Buffer.from('expect', 'latin1');
const CHUNKED = Buffer.from('chunked', 'latin1');
const CONTINUE_100 = Buffer.from('100-continue', 'latin1');

/** Parsed head of a message: only what delimiting and naming need. */
interface Head {
  method: string;
  path: string;
  status: number;
  content_length: number;
  chunked: boolean;
  expect_continue: boolean;
  http10: boolean;
  /** HTTP/0.9 simple request: "GET /path" without a version; the answer is a bare body */
  http09: boolean;
  malformed: boolean;
}

function indexOfByte(b: Uint8Array, c: number, from: number, to: number): number {
  const i = b.indexOf(c, from);
  return i >= 0 && i < to ? i : -1;
}

/** Case-insensitive field name at b[p] followed by ':' (no space before the colon, RFC 9112 §5.1); returns the index after ':' or -1. */
function fieldValueStart(b: Uint8Array, p: number, end: number, lower_name: Uint8Array): number {
  if (end - p <= lower_name.length) return -1;
  for (let i = 0; i < lower_name.length; i++) if ((b[p + i]! | 0x20) !== lower_name[i]) return -1;
  return b[p + lower_name.length] === 0x3a ? p + lower_name.length + 1 : -1;
}

/** The value [from, to) without optional whitespace around it (RFC 9110 §5.6.3). */
function trim(b: Uint8Array, from: number, to: number): [number, number] {
  while (from < to && (b[from] === SP || b[from] === HTAB)) from++;
  while (to > from && (b[to - 1] === SP || b[to - 1] === HTAB)) to--;
  return [from, to];
}

function equalsIgnoreCase(b: Uint8Array, from: number, to: number, lower: Uint8Array): boolean {
  if (to - from !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) if ((b[from + i]! | 0x20) !== lower[i]) return false;
  return true;
}

function methodName(b: Uint8Array, from: number, to: number): string {
  for (let m = 0; m < METHODS.length; m++) {
    const bytes = METHOD_BYTES[m]!;
    if (to - from === bytes.length - 1 && startsWith(b, from, to - from + 1, bytes)) return METHODS[m]!;
  }
  return Buffer.from(b.buffer, b.byteOffset + from, Math.min(to - from, 32)).toString('latin1');
}

/**
 * Parses a message head (start line and header fields, RFC 9112 §2-§6) straight from
 * its bytes; only the path of a request becomes a new string.
 */
function parseHead(b: Uint8Array, len: number, is_request: boolean, head: Head): void {
  head.method = '';
  head.path = '';
  head.status = -1;
  head.content_length = -1;
  head.chunked = false;
  head.expect_continue = false;
  head.http10 = false;
  head.http09 = false;
  head.malformed = false;
  let eol = indexOfByte(b, LF, 0, len);
  if (eol < 0) eol = len;
  let le = eol > 0 && b[eol - 1] === CR ? eol - 1 : eol;
  if (is_request) {
    const sp1 = indexOfByte(b, SP, 0, le);
    if (sp1 <= 0) {
      head.malformed = true;
      return;
    }
    head.method = methodName(b, 0, sp1);
    const sp2 = indexOfByte(b, SP, sp1 + 1, le);
    const target_end = sp2 < 0 ? le : sp2;
    const q = indexOfByte(b, 0x3f /* ? */, sp1 + 1, target_end);
    const path_end = Math.min(q < 0 ? target_end : q, sp1 + 1 + MAX_SUBJECT_PATH);
    head.path = Buffer.from(b.buffer, b.byteOffset + sp1 + 1, path_end - sp1 - 1).toString('latin1');
    if (sp2 < 0) {
      head.http09 = head.method === 'GET';
      head.malformed = !head.http09;
    } else if (le - sp2 === 9 && b[sp2 + 6] === 0x31 /* 1 */ && b[sp2 + 7] === 0x2e && (b[sp2 + 8] === 0x30 || b[sp2 + 8] === 0x31)) {
      head.http10 = b[sp2 + 8] === 0x30;
    } else head.malformed = true;
  } else {
    // "HTTP/1.x NNN reason"
    const d0 = b[9]! - 0x30, d1 = b[10]! - 0x30, d2 = b[11]! - 0x30;
    if (le >= 12 && b[8] === SP && d0 >= 0 && d0 <= 9 && d1 >= 0 && d1 <= 9 && d2 >= 0 && d2 <= 9) {
      head.status = d0 * 100 + d1 * 10 + d2;
      head.http10 = b[7] === 0x30;
    } else head.malformed = true;
  }
  for (let p = eol + 1; p < len; p = eol + 1) {
    eol = indexOfByte(b, LF, p, len);
    if (eol < 0) eol = len;
    le = eol > p && b[eol - 1] === CR ? eol - 1 : eol;
    if (le === p) break; // the blank line
    const c = b[p]! | 0x20;
    let v: number;
    if (c === 0x63 /* c */ && (v = fieldValueStart(b, p, le, CONTENT_LENGTH)) >= 0) {
      const [from, to] = trim(b, v, le);
      let n = 0;
      for (let i = from; i < to; i++) {
        const d = b[i]! - 0x30;
        if (d < 0 || d > 9) {
          n = -1;
          break;
        }
        n = n * 10 + d;
      }
      if (n < 0 || from === to) head.malformed = true;
      else head.content_length = n;
    } else if (c === 0x74 /* t */ && (v = fieldValueStart(b, p, le, TRANSFER_ENCODING)) >= 0) {
      // RFC 9112 §6.1: chunked, when present, is the final coding.
      const [from, to] = trim(b, v, le);
      if (to - from >= CHUNKED.length && equalsIgnoreCase(b, to - CHUNKED.length, to, CHUNKED)) {
        const before = to - CHUNKED.length - 1;
        if (before < from || b[before] === 0x2c || b[before] === SP || b[before] === HTAB) head.chunked = true;
      }
    } else if (c === 0x65 /* e */ && (v = fieldValueStart(b, p, le, EXPECT)) >= 0) {
      const [from, to] = trim(b, v, le);
      if (equalsIgnoreCase(b, from, to, CONTINUE_100)) head.expect_continue = true;
    }
  }
}

const NO_BYTES = new Uint8Array(0);

/** One direction's message framing (RFC 9112). */
class Framer {
  state = State.HEAD;
  /** the head being collected; allocated at the first message (most connections carry few) */
  head_bytes: Uint8Array = NO_BYTES;
  head_len = 0;
  /** bytes left in the body or the current chunk */
  remaining = 0;
  /** a chunk-size or trailer line being collected */
  line = '';
  /** the transaction this direction's current message belongs to */
  tx: Transaction | null = null;
  /** current response is an interim 1xx */
  interim = false;
  /** the start line of the current head has ended */
  line_ended = false;
  /** bytes of the current head line seen in earlier segments */
  line_bytes = 0;
  /** the last parsed head (reused) */
  readonly head: Head = { method: '', path: '', status: -1, content_length: -1, chunked: false, expect_continue: false, http10: false, http09: false, malformed: false };

  appendHead(buf: Uint8Array, off: number, n: number): boolean {
    if (this.head_len + n > MAX_HEAD_BYTES) return false;
    if (this.head_len + n > this.head_bytes.length) {
      let size = Math.max(512, this.head_bytes.length * 2);
      while (size < this.head_len + n) size *= 2;
      const grown = new Uint8Array(Math.min(size, MAX_HEAD_BYTES));
      grown.set(this.head_bytes.subarray(0, this.head_len));
      this.head_bytes = grown;
    }
    this.head_bytes.set(buf.subarray(off, off + n), this.head_len);
    this.head_len += n;
    return true;
  }
}

/**
 * HTTP/1.x: requests and responses delimited exactly (RFC 9112 §6: Content-Length,
 * chunked, close-delimited; HEAD, 1xx, 204 and 304 without body), keep-alive and
 * pipelining matched first-in first-out, 100 Continue kept inside its transaction.
 */
export class HttpSession implements AnalyzerSession {
  private readonly ctx: AnalyzerContext;
  private readonly req = new Framer();
  private readonly rsp = new Framer();

  constructor(ctx: AnalyzerContext) {
    this.ctx = ctx;
  }

  onData(from_client: boolean, buf: Uint8Array, off: number, len: number): void {
    const f = from_client ? this.req : this.rsp;
    const end = off + len;
    let pos = off;
    if (f.state === State.RESYNC) {
      if (from_client ? isRequestStart(buf, off, len) : isResponseStart(buf, off, len)) f.state = State.HEAD;
      else {
        this.ctx.skipBytes(len);
        return;
      }
    }
    while (pos < end) {
      const n = this.step(f, from_client, buf, pos, end);
      pos += n;
    }
  }

  /** Consumes some bytes of [pos, end) in the framer's state; returns how many (> 0). */
  private step(f: Framer, from_client: boolean, buf: Uint8Array, pos: number, end: number): number {
    switch (f.state) {
      case State.HEAD: return this.stepHead(f, from_client, buf, pos, end);
      case State.BODY: {
        const n = Math.min(f.remaining, end - pos);
        this.report(f, from_client, n);
        f.remaining -= n;
        if (f.remaining === 0) this.messageDone(f, from_client);
        return n;
      }
      case State.CHUNK_SIZE:
      case State.CHUNK_END:
      case State.TRAILER: {
        // Line-oriented parts of chunked coding (RFC 9112 §7.1).
        let i = pos;
        while (i < end && buf[i] !== 0x0a) i++;
        const complete = i < end;
        const n = (complete ? i + 1 : end) - pos;
        if (f.line.length + n > 4096) return this.lose(f, from_client, n, 'http_bad_chunk');
        f.line += Buffer.from(buf.buffer, buf.byteOffset + pos, n).toString('latin1');
        this.report(f, from_client, n);
        if (complete) this.chunkLine(f, from_client);
        return n;
      }
      case State.CHUNK_DATA: {
        const n = Math.min(f.remaining, end - pos);
        this.report(f, from_client, n);
        f.remaining -= n;
        if (f.remaining === 0) {
          f.state = State.CHUNK_END;
          f.line = '';
        }
        return n;
      }
      case State.UNTIL_CLOSE: {
        this.report(f, from_client, end - pos);
        return end - pos;
      }
      case State.RESYNC:
      case State.TUNNEL:
        this.ctx.skipBytes(end - pos);
        return end - pos;
    }
  }

  private stepHead(f: Framer, from_client: boolean, buf: Uint8Array, pos: number, end: number): number {
    if (f.head_len === 0) {
      // A new message starts here.
      if (from_client) {
        if (!isRequestStart(buf, pos, end - pos)) return this.lose(f, from_client, end - pos, 'http_not_a_request');
        f.tx = this.ctx.beginRequest('http');
      } else {
        const waiting = this.ctx.oldestAwaitingResponse();
        if (waiting !== null && waiting.notes?.includes('http_0_9') === true) {
          // HTTP/0.9 answers with the bare body, ended by the close.
          f.tx = waiting;
          f.state = State.UNTIL_CLOSE;
          return 0;
        }
        if (!isResponseStart(buf, pos, end - pos)) {
          // Not a status line, but still the answer to the oldest request: give that one up.
          f.tx = waiting;
          return this.lose(f, from_client, end - pos, 'http_not_a_response');
        }
        const tx = waiting;
        if (tx === null) {
          this.ctx.count('http_unmatched_response');
          f.tx = null;
        } else f.tx = tx;
        // "HTTP/1.1 1xx": the status class is in the first 10 bytes of the first segment.
        f.interim = end - pos >= 10 && buf[pos + 9] === 0x31 /* '1' */;
      }
    }
    // Find the blank line that ends the head, line by line (indexOf is native), possibly
    // straddling segments: `line_bytes` carries the length of a line cut by a segment end.
    let found = -1;
    let i = pos;
    while (i < end) {
      const lf = buf.indexOf(LF, i);
      if (lf < 0 || lf >= end) {
        f.line_bytes += end - i;
        break;
      }
      const line = f.line_bytes + (lf - i);
      f.line_bytes = 0;
      // An empty line, or one holding only CR, ends the head (RFC 9112 §2.1; bare LF tolerated, §2.2).
      const last = lf > pos ? buf[lf - 1]! : f.head_len > 0 ? f.head_bytes[f.head_len - 1]! : -1;
      if (line === 0 || (line === 1 && last === CR)) {
        if (f.line_ended) {
          found = lf;
          break;
        }
      } else if (!f.line_ended && from_client && !hasVersion(f.head_bytes, f.head_len, buf, pos, lf)) {
        // A request line without a version is an HTTP/0.9 simple request: the line is the whole request.
        found = lf;
        break;
      }
      f.line_ended = true;
      i = lf + 1;
    }
    const n = (found >= 0 ? found + 1 : end) - pos;
    if (!f.appendHead(buf, pos, n)) return this.lose(f, from_client, n, 'http_head_too_long');
    this.report(f, from_client, n);
    if (found >= 0) {
      f.line_ended = false;
      f.line_bytes = 0;
      this.headDone(f, from_client);
    }
    return n;
  }

  private headDone(f: Framer, from_client: boolean): void {
    const head = f.head;
    parseHead(f.head_bytes, f.head_len, from_client, head);
    f.head_len = 0;
    const tx = f.tx;
    if (head.malformed) {
      this.ctx.count(from_client ? 'http_malformed_request' : 'http_malformed_response');
      tx?.note(from_client ? 'malformed_request' : 'malformed_response');
    }
    if (from_client) {
      if (tx !== null) {
        tx.signature = head.method;
        tx.subject = `${head.method} ${head.path}`;
        if (head.expect_continue) tx.note('expect_100_continue');
        if (head.http09) tx.note('http_0_9');
      }
      // A request has a body only with Content-Length or chunked (RFC 9112 §6.3 rule 6).
      if (head.chunked) this.startChunked(f);
      else if (head.content_length > 0) this.startBody(f, head.content_length);
      else this.messageDone(f, from_client);
      if (head.method === 'CONNECT') this.ctx.count('http_connect');
      return;
    }
    // Response.
    const status = head.status;
    if (status >= 100 && status < 200 && status !== 101) {
      // Interim answer: part of the transaction, not its response; the final one follows.
      if (tx !== null) tx.note(`interim_${status}`);
      f.interim = false;
      f.state = State.HEAD;
      return;
    }
    if (tx !== null) {
      tx.status = status;
      if (status >= 500) tx.setOutcome('error');
    }
    const method = tx?.signature ?? '';
    if (status === 101 || (method === 'CONNECT' && status >= 200 && status < 300)) {
      this.messageDone(f, false);
      this.req.state = State.TUNNEL;
      this.rsp.state = State.TUNNEL;
      return;
    }
    // RFC 9112 §6.3 rules 1-2: no body after HEAD, 1xx, 204, 304.
    if (method === 'HEAD' || status === 204 || status === 304) this.messageDone(f, false);
    else if (head.chunked) this.startChunked(f);
    else if (head.content_length >= 0) {
      if (head.content_length === 0) this.messageDone(f, false);
      else this.startBody(f, head.content_length);
    } else {
      f.state = State.UNTIL_CLOSE;
      tx?.note('body_until_close');
    }
  }

  private startBody(f: Framer, bytes: number): void {
    f.state = State.BODY;
    f.remaining = bytes;
  }

  private startChunked(f: Framer): void {
    f.state = State.CHUNK_SIZE;
    f.line = '';
  }

  private chunkLine(f: Framer, from_client: boolean): void {
    const line = f.line.trim();
    f.line = '';
    if (f.state === State.CHUNK_SIZE) {
      const m = /^([0-9a-fA-F]+)/.exec(line);
      if (m === null) {
        this.ctx.count('http_bad_chunk');
        f.tx?.note('bad_chunk');
        f.state = State.RESYNC;
        if (!from_client && f.tx !== null) this.ctx.abandon(f.tx, 'bad_chunk');
        return;
      }
      const size = parseInt(m[1]!, 16);
      if (size === 0) f.state = State.TRAILER;
      else {
        f.state = State.CHUNK_DATA;
        f.remaining = size;
      }
    } else if (f.state === State.CHUNK_END) {
      f.state = State.CHUNK_SIZE;
    } else if (line === '') {
      // Blank line after the last chunk (and any trailer fields).
      this.messageDone(f, from_client);
    }
  }

  private report(f: Framer, from_client: boolean, n: number): void {
    if (f.tx === null) this.ctx.skipBytes(n);
    else if (from_client) this.ctx.requestBytes(f.tx, n);
    else this.ctx.responseBytes(f.tx, n, f.interim);
  }

  private messageDone(f: Framer, from_client: boolean): void {
    if (!from_client && f.tx !== null) this.ctx.endResponse(f.tx);
    f.tx = null;
    f.state = State.HEAD;
    f.head_len = 0;
    f.interim = false;
  }

  /** Skips `n` bytes after losing the framing; the next segment that starts a message resynchronises. */
  private lose(f: Framer, from_client: boolean, n: number, kind: string): number {
    this.ctx.count(kind);
    if (f.tx !== null) {
      if (from_client) f.tx.note('request_unparsed');
      else this.ctx.abandon(f.tx, 'response_unparsed');
    }
    f.tx = null;
    f.state = State.RESYNC;
    f.head_len = 0;
    this.ctx.skipBytes(n);
    return n;
  }

  onGap(from_client: boolean, bytes: number): void {
    const f = from_client ? this.req : this.rsp;
    const tx = f.tx;
    if (f.state === State.BODY && bytes <= f.remaining) {
      // Still in step: the lost bytes were body bytes.
      tx?.setOutcome('partial');
      tx?.note(from_client ? 'gap_in_request' : 'gap_in_response');
      f.remaining -= bytes;
      if (f.remaining === 0) this.messageDone(f, from_client);
      return;
    }
    if (f.state === State.UNTIL_CLOSE) {
      tx?.setOutcome('partial');
      tx?.note('gap_in_response');
      return;
    }
    if (f.state === State.TUNNEL) return;
    if (!from_client) {
      if (tx !== null) this.ctx.abandon(tx, 'gap_in_response');
      else if (f.state === State.HEAD && f.head_len === 0) {
        // Lost between messages: the oldest unanswered request's response was in the hole.
        const waiting = this.ctx.oldestAwaitingResponse();
        if (waiting !== null) this.ctx.abandon(waiting, 'response_lost');
      }
    } else if (tx !== null) {
      tx.setOutcome('partial');
      tx.note('gap_in_request');
    }
    f.tx = null;
    f.state = State.RESYNC;
    f.head_len = 0;
  }

  onFin(from_client: boolean): void {
    if (!from_client && this.rsp.state === State.UNTIL_CLOSE) this.messageDone(this.rsp, false);
  }

  onClose(reason: CloseReason): void {
    if (reason === 'closed' || reason === 'end') this.onFin(false);
  }
}

export const httpAnalyzer: Analyzer = {
  id: 'http',
  transports: ['tcp'],
  default_ports: [80, 8000, 8008, 8080, 8888, 3128, 9200],
  probe(transport, from_client, buf, off, len) {
    if (transport !== 'tcp') return Probe.NO;
    if (from_client !== false && isRequestStart(buf, off, len)) return Probe.YES;
    if (from_client !== true && isResponseStart(buf, off, len)) return Probe.YES;
    return Probe.NO;
  },
  fromClient(_transport, buf, off, len) {
    if (isRequestStart(buf, off, len)) return true;
    if (isResponseStart(buf, off, len)) return false;
    return null;
  },
  create: (ctx) => new HttpSession(ctx),
};
