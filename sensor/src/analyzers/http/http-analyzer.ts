import type { Analyzer, AnalyzerContext, AnalyzerSession, CloseReason } from '../analyzer.ts';
import { Probe } from '../analyzer.ts';
import { latin1 } from '../../decode/latin1.ts';
import { indexOfLF } from './index-of-lf.ts';
import type { Transaction } from '../../transaction/transaction.ts';

/** Longest request or response head (start line + headers) accepted; longer is malformed. */
const MAX_HEAD_BYTES = 64 * 1024;
/** Longest path kept in a transaction's subject. */
const MAX_SUBJECT_PATH = 256;

/**
 * Methods named as they are: the IANA HTTP Method Registry (RFC 9110 §18.2 and the WebDAV,
 * CalDAV, versioning and binding RFCs that register the rest) without PRI, which only opens
 * HTTP/2 (RFC 9113 §3.4), and with PURGE, which caches (Varnish, Squid, nginx) take to drop
 * a page. The common ones first: a request's method is found by trying them in turn.
 */
const METHODS = ['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE',
  'LOCK', 'UNLOCK', 'REPORT', 'SEARCH', 'PURGE', 'QUERY', 'ACL', 'BASELINE-CONTROL', 'BIND', 'CHECKIN', 'CHECKOUT', 'LABEL', 'LINK', 'MERGE',
  'MKACTIVITY', 'MKCALENDAR', 'MKREDIRECTREF', 'MKWORKSPACE', 'ORDERPATCH', 'REBIND', 'UNBIND', 'UNCHECKOUT', 'UNLINK', 'UPDATE',
  'UPDATEREDIRECTREF', 'VERSION-CONTROL'];
/**
 * The default name of a request whose method is none of METHODS: any token is a method
 * (RFC 9110 §9.1), but a name per method would let a client make names without bound; the
 * subject keeps the method, for rules to name it.
 */
export const OTHER_METHOD = 'OTHER';
/** Longest method taken outside METHODS, in bytes. */
const MAX_METHOD = 32;
const METHOD_BYTES = METHODS.map((m) => Buffer.from(m + ' ', 'latin1'));
const HTTP_SLASH = Buffer.from('HTTP/1.', 'latin1');
const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;

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
  return isRequestLine(buf, off, off + len);
}

/** RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

/**
 * A request with a method outside METHODS is taken only on the whole request line in
 * `buf[off, end)` (RFC 9112 §3): a token of 1 to MAX_METHOD bytes, SP, a request-target of
 * visible bytes, SP, `HTTP/1.0` or `HTTP/1.1`, CRLF or a bare LF; what a stray segment of
 * another protocol or of a body does not look like. A line split over segments is not taken.
 */
function isRequestLine(b: Uint8Array, off: number, end: number): boolean {
  let i = off;
  const method_end = Math.min(end, off + MAX_METHOD + 1);
  while (i < method_end && TCHAR[b[i]!] === 1) i++;
  if (i === off || i >= method_end || b[i] !== SP) return false;
  const target = ++i;
  while (i < end && b[i]! > SP && b[i]! < 0x7f) i++;
  if (i === target || b[i] !== SP || httpMinor(b, i + 1, end) < 0) return false;
  i += 9;
  return i < end && (b[i] === LF || (b[i] === CR && i + 1 < end && b[i + 1] === LF));
}

/** 0 or 1 when b[at, at + 8) within `end` is `HTTP/1.0` or `HTTP/1.1`, else −1. */
function httpMinor(b: Uint8Array, at: number, end: number): number {
  if (at + 8 > end || !startsWith(b, at, end - at, HTTP_SLASH)) return -1;
  const d = b[at + 7]! - 0x30;
  return d === 0 || d === 1 ? d : -1;
}

/** How many CR and LF bytes b[pos, end) starts with: empty lines before a request line. */
function emptyLineBytes(b: Uint8Array, pos: number, end: number): number {
  let k = pos;
  while (k < end && (b[k] === CR || b[k] === LF)) k++;
  return k - pos;
}

function isResponseStart(buf: Uint8Array, off: number, len: number): boolean {
  return startsWith(buf, off, len, HTTP_SLASH);
}

const CONTENT_LENGTH = Buffer.from('content-length', 'latin1');
const TRANSFER_ENCODING = Buffer.from('transfer-encoding', 'latin1');
const EXPECT = Buffer.from('expect', 'latin1');
const CHUNKED = Buffer.from('chunked', 'latin1');
const CONTINUE_100 = Buffer.from('100-continue', 'latin1');

/** Parsed head of a message: only what delimiting and naming need. */
interface Head {
  method: string;
  /** a request's "METHOD path" (path without query, at most MAX_SUBJECT_PATH long): the transaction's subject */
  subject: string;
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
  for (let i = from; i < to; i++) if (b[i] === c) return i;
  return -1;
}

/** Case-insensitive field name at b[p] followed by ':' (no space before the colon, RFC 9112 §5.1); returns the index after ':' or -1. */
function fieldValueStart(b: Uint8Array, p: number, end: number, lower_name: Uint8Array): number {
  if (end - p <= lower_name.length) return -1;
  for (let i = 0; i < lower_name.length; i++) if ((b[p + i]! | 0x20) !== lower_name[i]) return -1;
  return b[p + lower_name.length] === 0x3a ? p + lower_name.length + 1 : -1;
}

/** Optional whitespace around a field value (RFC 9110 §5.6.3) is skipped from either end. */
function skipOws(b: Uint8Array, from: number, to: number): number {
  while (from < to && (b[from] === SP || b[from] === HTAB)) from++;
  return from;
}

function trimOwsEnd(b: Uint8Array, from: number, to: number): number {
  while (to > from && (b[to - 1] === SP || b[to - 1] === HTAB)) to--;
  return to;
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
  return OTHER_METHOD;
}

function resetHead(head: Head): void {
  head.method = '';
  head.subject = '';
  head.status = -1;
  head.content_length = -1;
  head.chunked = false;
  head.expect_continue = false;
  head.http10 = false;
  head.http09 = false;
  head.malformed = false;
}

/** The start line b[p, le) (RFC 9112 §3, §4); only a request's subject becomes a new string. */
function parseStartLine(b: Uint8Array, p: number, le: number, is_request: boolean, head: Head): void {
  if (is_request) {
    const sp1 = indexOfByte(b, SP, p, le);
    if (sp1 <= p) {
      head.malformed = true;
      return;
    }
    head.method = methodName(b, p, sp1);
    const sp2 = indexOfByte(b, SP, sp1 + 1, le);
    const target_end = sp2 < 0 ? le : sp2;
    const q = indexOfByte(b, 0x3f /* ? */, sp1 + 1, target_end);
    const path_end = Math.min(q < 0 ? target_end : q, sp1 + 1 + MAX_SUBJECT_PATH);
    // One slice of the line, method as sent, one space, path: a flat string, where joining
    // method and path would make a rope that the signature rules' first read of it flattens again.
    head.subject = latin1(b, p, path_end);
    if (sp2 < 0) {
      // No version: an HTTP/0.9 simple request, the line is the whole request.
      head.http09 = head.method === 'GET';
      head.malformed = !head.http09;
    } else {
      const minor = le - sp2 === 9 ? httpMinor(b, sp2 + 1, le) : -1;
      if (minor < 0) head.malformed = true;
      else head.http10 = minor === 0;
    }
    return;
  }
  // "HTTP/1.x NNN reason"
  const d0 = b[p + 9]! - 0x30, d1 = b[p + 10]! - 0x30, d2 = b[p + 11]! - 0x30;
  if (le - p >= 12 && b[p + 8] === SP && d0 >= 0 && d0 <= 9 && d1 >= 0 && d1 <= 9 && d2 >= 0 && d2 <= 9) {
    head.status = d0 * 100 + d1 * 10 + d2;
    head.http10 = b[p + 7] === 0x30;
  } else head.malformed = true;
}

/** One header field line b[p, le) (RFC 9112 §5): only those that delimit the message are looked at. */
function parseField(b: Uint8Array, p: number, le: number, head: Head): void {
  const c = b[p]! | 0x20;
  let v: number;
  if (c === 0x63 /* c */ && (v = fieldValueStart(b, p, le, CONTENT_LENGTH)) >= 0) {
    const from = skipOws(b, v, le);
    const to = trimOwsEnd(b, from, le);
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
    const from = skipOws(b, v, le);
    const to = trimOwsEnd(b, from, le);
    if (to - from >= CHUNKED.length && equalsIgnoreCase(b, to - CHUNKED.length, to, CHUNKED)) {
      const before = to - CHUNKED.length - 1;
      if (before < from || b[before] === 0x2c || b[before] === SP || b[before] === HTAB) head.chunked = true;
    }
  } else if (c === 0x65 /* e */ && (v = fieldValueStart(b, p, le, EXPECT)) >= 0) {
    const from = skipOws(b, v, le);
    if (equalsIgnoreCase(b, from, trimOwsEnd(b, from, le), CONTINUE_100)) head.expect_continue = true;
  }
}

const NO_BYTES = new Uint8Array(0);

/** One direction's message framing (RFC 9112). */
class Framer {
  state = State.HEAD;
  /** bytes of the current head so far (bounded by MAX_HEAD_BYTES) */
  head_bytes = 0;
  /** head lines completed so far; 0 while the start line is being read */
  head_lines = 0;
  /** a head line cut by a segment end, collected until its LF arrives (allocated on first need) */
  line_buf: Uint8Array = NO_BYTES;
  line_len = 0;
  /** bytes left in the body or the current chunk */
  remaining = 0;
  /** chunked coding: bytes of the current chunk-size, chunk-end or trailer line (CR not counted) */
  chunk_line_bytes = 0;
  /** chunk-size line: value and digits so far, extension reached, a byte that does not belong */
  chunk_size = 0;
  chunk_digits = 0;
  chunk_ext = false;
  chunk_bad = false;
  /** the transaction this direction's current message belongs to */
  tx: Transaction | null = null;
  /** current response is an interim 1xx */
  interim = false;
  /** the last parsed head (reused) */
  readonly head: Head = { method: '', subject: '', status: -1, content_length: -1, chunked: false, expect_continue: false, http10: false, http09: false, malformed: false };

  /** Keeps the part of a head line that a segment end cut off. */
  appendLine(buf: Uint8Array, off: number, n: number): void {
    if (this.line_len + n > this.line_buf.length) {
      let size = Math.max(256, this.line_buf.length * 2);
      while (size < this.line_len + n) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.line_buf.subarray(0, this.line_len));
      this.line_buf = grown;
    }
    this.line_buf.set(buf.subarray(off, off + n), this.line_len);
    this.line_len += n;
  }

  /** Between messages: nothing of a head seen yet. */
  atMessageStart(): boolean {
    return this.head_bytes === 0;
  }

  resetHead(): void {
    this.head_bytes = 0;
    this.head_lines = 0;
    this.line_len = 0;
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
      // A segment that starts a request, perhaps after the empty lines RFC 9112 §2.2 lets a client send first.
      const blank = from_client ? emptyLineBytes(buf, off, end) : 0;
      if (from_client ? isRequestStart(buf, off + blank, len - blank) : isResponseStart(buf, off, len)) f.state = State.HEAD;
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
        // Line-oriented parts of chunked coding (RFC 9112 §7.1), read byte by byte (they are short).
        let i = pos;
        let complete = false;
        for (; i < end; i++) {
          const c = buf[i]!;
          if (c === LF) {
            complete = true;
            i++;
            break;
          }
          if (c !== CR) f.chunk_line_bytes++;
          if (f.state === State.CHUNK_SIZE) this.chunkSizeByte(f, c);
        }
        const n = i - pos;
        if (f.chunk_line_bytes > 4096) return this.lose(f, from_client, n, 'http_bad_chunk');
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
          f.chunk_line_bytes = 0;
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
    if (f.atMessageStart()) {
      // A new message starts here.
      resetHead(f.head);
      if (from_client) {
        const blank = emptyLineBytes(buf, pos, end);
        if (blank > 0) {
          // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before a request
          // line (some clients send a CRLF after a POST body); it belongs to no request.
          this.ctx.skipBytes(blank);
          return blank;
        }
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
    // Head lines, each parsed as soon as its LF is here: in place when the line lies
    // within this segment, from line_buf when a segment end cut it.
    let done = false;
    let i = pos;
    while (i < end) {
      const lf = indexOfLF(buf, i, end);
      if (lf < 0) {
        f.appendLine(buf, i, end - i);
        i = end;
        break;
      }
      let b = buf;
      let ls = i;
      let le = lf;
      if (f.line_len > 0) {
        f.appendLine(buf, i, lf - i);
        b = f.line_buf;
        ls = 0;
        le = f.line_len;
      }
      if (le > ls && b[le - 1] === CR) le--;
      f.line_len = 0;
      i = lf + 1;
      if (f.head_lines === 0) {
        // RFC 9112 §2.2: empty lines before a request line are ignored.
        if (le === ls) continue;
        parseStartLine(b, ls, le, from_client, f.head);
        f.head_lines = 1;
        if (f.head.http09) {
          done = true;
          break;
        }
      } else if (le === ls) {
        // The blank line ends the head (RFC 9112 §2.1; a bare LF is tolerated, §2.2).
        done = true;
        break;
      } else {
        parseField(b, ls, le, f.head);
        f.head_lines++;
      }
    }
    const n = i - pos;
    f.head_bytes += n;
    if (f.head_bytes > MAX_HEAD_BYTES) return this.lose(f, from_client, n, 'http_head_too_long');
    this.report(f, from_client, n);
    if (done) {
      f.resetHead();
      this.headDone(f, from_client);
    }
    return n;
  }

  private headDone(f: Framer, from_client: boolean): void {
    const head = f.head;
    const tx = f.tx;
    if (head.malformed) {
      this.ctx.count(from_client ? 'http_malformed_request' : 'http_malformed_response');
      tx?.note(from_client ? 'malformed_request' : 'malformed_response');
    }
    if (from_client) {
      if (tx !== null) {
        tx.signature = head.method;
        tx.subject = head.subject;
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
    f.chunk_line_bytes = 0;
    f.chunk_size = 0;
    f.chunk_digits = 0;
    f.chunk_ext = false;
    f.chunk_bad = false;
  }

  /** One byte of a chunk-size line: hex digits, then an optional extension (RFC 9112 §7.1.1). */
  private chunkSizeByte(f: Framer, c: number): void {
    if (c === CR || f.chunk_ext) return;
    const v = c >= 0x30 && c <= 0x39 ? c - 0x30 : (c | 0x20) >= 0x61 && (c | 0x20) <= 0x66 ? (c | 0x20) - 0x57 : -1;
    if (v >= 0 && f.chunk_digits < 14) {
      f.chunk_size = f.chunk_size * 16 + v;
      f.chunk_digits++;
    } else if (c === 0x3b /* ; */ || c === SP || c === HTAB) {
      f.chunk_ext = true;
    } else {
      f.chunk_bad = true;
    }
  }

  private chunkLine(f: Framer, from_client: boolean): void {
    const blank = f.chunk_line_bytes === 0;
    f.chunk_line_bytes = 0;
    if (f.state === State.CHUNK_SIZE) {
      const size = f.chunk_size;
      const bad = f.chunk_bad || f.chunk_digits === 0;
      f.chunk_size = 0;
      f.chunk_digits = 0;
      f.chunk_ext = false;
      f.chunk_bad = false;
      if (bad) {
        this.ctx.count('http_bad_chunk');
        f.tx?.note('bad_chunk');
        f.state = State.RESYNC;
        if (!from_client && f.tx !== null) this.ctx.abandon(f.tx, 'bad_chunk');
        return;
      }
      if (size === 0) f.state = State.TRAILER;
      else {
        f.state = State.CHUNK_DATA;
        f.remaining = size;
      }
    } else if (f.state === State.CHUNK_END) {
      f.state = State.CHUNK_SIZE;
    } else if (blank) {
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
    f.resetHead();
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
    f.resetHead();
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
      else if (f.state === State.HEAD && f.atMessageStart()) {
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
    f.resetHead();
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
