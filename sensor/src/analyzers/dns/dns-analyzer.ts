import type { Analyzer, AnalyzerContext, AnalyzerSession, CloseReason } from '../analyzer.ts';
import { Probe } from '../analyzer.ts';
import { latin1 } from '../../decode/latin1.ts';
import type { Transaction } from '../../transaction/transaction.ts';

/** Queries awaiting an answer per conversation; past this the oldest is given up as a timeout. */
const MAX_PENDING = 256;
/** Bytes of a DNS-over-TCP message kept for parsing its header and question. */
const TCP_PARSE_BYTES = 512;

const QTYPES: Record<number, string> = {
  1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 13: 'HINFO', 15: 'MX', 16: 'TXT', 28: 'AAAA',
  29: 'LOC', 33: 'SRV', 35: 'NAPTR', 39: 'DNAME', 41: 'OPT', 43: 'DS', 46: 'RRSIG', 47: 'NSEC', 48: 'DNSKEY',
  50: 'NSEC3', 52: 'TLSA', 64: 'SVCB', 65: 'HTTPS', 99: 'SPF', 249: 'TKEY', 250: 'TSIG', 251: 'IXFR',
  252: 'AXFR', 255: 'ANY', 256: 'URI', 257: 'CAA',
};

export function qtypeName(qtype: number): string {
  return QTYPES[qtype] ?? `TYPE${qtype}`;
}

/** Header and first question of a DNS message (RFC 1035 §4.1). */
export interface DnsMessage {
  id: number;
  is_response: boolean;
  opcode: number;
  rcode: number;
  qdcount: number;
  qname: string;
  qtype: number;
}

/**
 * Parses the header and the first question; null when it is not a sane DNS message.
 * `complete`: the whole message is in [off, off+len) (UDP); when false only a prefix is.
 */
export function parseDnsMessage(buf: Uint8Array, off: number, len: number): DnsMessage | null {
  if (len < 12) return null;
  const id = (buf[off]! << 8) | buf[off + 1]!;
  const flags = (buf[off + 2]! << 8) | buf[off + 3]!;
  const qdcount = (buf[off + 4]! << 8) | buf[off + 5]!;
  const opcode = (flags >> 11) & 0xf;
  if (opcode > 6 || opcode === 3) return null;
  const msg: DnsMessage = { id, is_response: (flags & 0x8000) !== 0, opcode, rcode: flags & 0xf, qdcount, qname: '', qtype: 0 };
  if (qdcount === 0) return msg;
  // QNAME: labels up to 63 bytes, name up to 255 (RFC 1035 §2.3.4); no compression expected in a question.
  let p = off + 12;
  const end = off + len;
  let name = '';
  let total = 0;
  for (;;) {
    if (p >= end) return null;
    const l = buf[p]!;
    if (l === 0) {
      p++;
      break;
    }
    if ((l & 0xc0) !== 0 || p + 1 + l > end) return null;
    total += l + 1;
    if (total > 255) return null;
    name += (name.length > 0 ? '.' : '') + latin1(buf, p + 1, p + 1 + l);
    p += 1 + l;
  }
  if (p + 4 > end) return null;
  msg.qname = name.length > 0 ? name : '.';
  msg.qtype = (buf[p]! << 8) | buf[p + 1]!;
  return msg;
}

/**
 * DNS over UDP and TCP (RFC 1035 §4.2): queries matched to answers by id. A query
 * sent again before its answer is counted as a retransmission and timing restarts
 * from the last copy, as tshark's dns.time does; an answer nobody waits for (a
 * duplicate) is counted.
 */
export class DnsSession implements AnalyzerSession {
  private readonly ctx: AnalyzerContext;
  private readonly tcp: boolean;
  private readonly pending: Transaction[] = [];
  private readonly pending_ids: number[] = [];
  /** DNS over TCP framing, per direction: [client, server] */
  private readonly frames = [new TcpFrame(), new TcpFrame()];

  constructor(ctx: AnalyzerContext, transport: 'tcp' | 'udp') {
    this.ctx = ctx;
    this.tcp = transport === 'tcp';
  }

  onData(from_client: boolean, buf: Uint8Array, off: number, len: number): void {
    if (!this.tcp) {
      this.onMessageStart(buf, off, len, len, from_client);
      this.onMessageEnd(buf, off, len);
      return;
    }
    const f = this.frames[from_client ? 0 : 1]!;
    const end = off + len;
    let pos = off;
    while (pos < end) {
      if (f.need_length > 0) {
        // Two-byte length prefix (RFC 1035 §4.2.2), possibly split.
        if (f.need_length === 2) f.start_mark = this.ctx.packetMark();
        f.length = (f.length << 8) | buf[pos]!;
        f.need_length--;
        pos++;
        this.reportFrame(f, from_client, 1);
        if (f.need_length === 0) {
          f.remaining = f.length;
          f.kept = 0;
          if (f.length === 0) f.need_length = 2;
        }
        continue;
      }
      const n = Math.min(f.remaining, end - pos);
      const keep = Math.min(n, TCP_PARSE_BYTES - f.kept);
      if (keep > 0) {
        f.bytes.set(buf.subarray(pos, pos + keep), f.kept);
        f.kept += keep;
      }
      if (f.remaining === f.length) {
        // First bytes of the message: decide what it is now, so timing starts at this packet.
        f.tx = this.onMessageStart(buf, pos, n, f.length, from_client);
        // The 2-byte prefix was seen before the transaction was known: count it, and its packet.
        if (f.tx !== null) {
          const request = from_client;
          if (request) f.tx.request_bytes += 2;
          else f.tx.response_bytes += 2;
          this.ctx.startedAt(f.tx, f.start_mark, request);
        }
      } else this.reportFrame(f, from_client, n);
      f.remaining -= n;
      pos += n;
      if (f.remaining === 0) {
        this.onMessageEnd(f.bytes, 0, f.kept);
        f.tx = null;
        f.need_length = 2;
        f.length = 0;
      }
    }
  }

  private reportFrame(f: TcpFrame, from_client: boolean, n: number): void {
    if (f.tx === null) this.ctx.skipBytes(n);
    else if (from_client) this.ctx.requestBytes(f.tx, n);
    else this.ctx.responseBytes(f.tx, n, false);
  }

  /** The first bytes of a message are in the current packet: `n` of its `total` bytes. */
  private onMessageStart(buf: Uint8Array, off: number, n: number, total: number, from_client: boolean): Transaction | null {
    const msg = parseDnsMessage(buf, off, n);
    if (msg === null) {
      this.ctx.count('dns_malformed');
      this.ctx.skipBytes(n);
      return null;
    }
    if (!msg.is_response) {
      const i = this.findPending(msg);
      let tx: Transaction;
      if (i >= 0) {
        tx = this.pending[i]!;
        this.ctx.restartRequest(tx);
        this.ctx.count('dns_query_retransmit');
        tx.request_bytes = 0;
      } else {
        tx = this.ctx.beginRequest('dns');
        tx.signature = qtypeName(msg.qtype);
        tx.subject = `${qtypeName(msg.qtype)} ${msg.qname}`.slice(0, 300);
        if (this.pending.length >= MAX_PENDING) {
          const oldest = this.pending.shift()!;
          this.pending_ids.shift();
          this.ctx.abandon(oldest, 'no_response');
          oldest.outcome = 'timeout';
        }
        this.pending.push(tx);
        this.pending_ids.push(msg.id);
      }
      this.ctx.requestBytes(tx, n);
      if (!from_client) tx.note('query_from_server_side');
      return tx;
    }
    const i = this.findPending(msg);
    if (i < 0) {
      this.ctx.count('dns_unmatched_response');
      this.ctx.skipBytes(n);
      return null;
    }
    const tx = this.pending[i]!;
    this.pending.splice(i, 1);
    this.pending_ids.splice(i, 1);
    tx.status = msg.rcode;
    if (msg.rcode !== 0) tx.setOutcome('error');
    this.ctx.responseBytes(tx, n, false);
    if (n >= total) this.ctx.endResponse(tx);
    else this.completing.push(tx);
    return tx;
  }

  /** responses over TCP whose last byte has not arrived yet */
  private readonly completing: Transaction[] = [];

  private onMessageEnd(_buf: Uint8Array, _off: number, _len: number): void {
    if (this.tcp && this.completing.length > 0) this.ctx.endResponse(this.completing.shift()!);
  }

  private findPending(msg: DnsMessage): number {
    for (let i = 0; i < this.pending_ids.length; i++) if (this.pending_ids[i] === msg.id) return i;
    return -1;
  }

  onGap(from_client: boolean, bytes: number): void {
    this.ctx.skipBytes(bytes);
    // Framing over TCP is lost; drop what is in flight.
    const f = this.frames[from_client ? 0 : 1]!;
    if (f.tx !== null) {
      f.tx.setOutcome('partial');
      f.tx.note(from_client ? 'gap_in_request' : 'gap_in_response');
      if (!from_client) this.ctx.endResponse(f.tx);
    }
    f.tx = null;
    f.need_length = 2;
    f.length = 0;
    this.ctx.count('dns_tcp_framing_lost');
  }

  onFin(_from_client: boolean): void {}

  onClose(_reason: CloseReason): void {}
}

class TcpFrame {
  need_length = 2;
  /** packet mark of the message's first prefix byte */
  start_mark = 0;
  length = 0;
  remaining = 0;
  kept = 0;
  bytes = new Uint8Array(TCP_PARSE_BYTES);
  tx: Transaction | null = null;
}

function looksLikeDns(transport: 'tcp' | 'udp', buf: Uint8Array, off: number, len: number): DnsMessage | null {
  if (transport === 'tcp') {
    if (len < 14) return null;
    const l = (buf[off]! << 8) | buf[off + 1]!;
    if (l < 12) return null;
    return parseDnsMessage(buf, off + 2, Math.min(len - 2, l));
  }
  return parseDnsMessage(buf, off, len);
}

/** NetBIOS name and datagram services use DNS's message format (RFC 1002 §4.2) but are not DNS. */
const NETBIOS_PORTS = [137, 138];

export const dnsAnalyzer: Analyzer = {
  id: 'dns',
  transports: ['udp', 'tcp'],
  default_ports: [53, 5353, 5355],
  probe(transport, _from_client, buf, off, len, src_port, dst_port) {
    if (NETBIOS_PORTS.includes(src_port) || NETBIOS_PORTS.includes(dst_port)) return Probe.NO;
    const msg = looksLikeDns(transport, buf, off, len);
    // Over TCP the 2-byte length prefix may come alone: too short to tell is not a no (MAYBE counts on DNS ports only).
    if (msg === null) return transport === 'tcp' && len < 14 ? Probe.MAYBE : Probe.NO;
    // One question and a known class of opcode: as sure as a payload test gets.
    return msg.qdcount === 1 && msg.qtype !== 0 ? Probe.YES : Probe.MAYBE;
  },
  fromClient(transport, buf, off, len) {
    const msg = looksLikeDns(transport, buf, off, len);
    return msg === null ? null : !msg.is_response;
  },
  create: (ctx, transport) => new DnsSession(ctx, transport),
};
