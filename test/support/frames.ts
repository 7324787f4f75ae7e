/**
 * Hand-built frames for scenario tests: Ethernet + IPv4/IPv6 + TCP/UDP as bytes, and a
 * `Script` that feeds them, with timestamps chosen by the test, through a Pipeline.
 *
 * Header lengths are right (IPv4 IHL 5 and total length, IPv6 payload length, TCP
 * data offset with options padded to 32 bits, UDP length); checksums are zero (the
 * decoder does not verify them).
 */
import { Pipeline, type SensorOptions } from '../../sensor/src/pipeline.ts';
import type { ConnectionRecord, OutputRecord, StatisticsRecord, TransactionRecord } from '../../sensor/src/output/records.ts';

export const FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10;

export type Bytes = Uint8Array | string;

export function bytes(b: Bytes): Uint8Array {
  return typeof b === 'string' ? new Uint8Array(Buffer.from(b, 'latin1')) : b;
}

export function concat(...parts: Bytes[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts.map(bytes)));
}

/** "10.0.0.1" → 4 bytes; "2001:db8::1" → 16 bytes. */
export function ipBytes(text: string): Uint8Array {
  if (!text.includes(':')) return new Uint8Array(text.split('.').map(Number));
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, null];
  const groups = (s: string | null): number[] => (s === null || s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const h = groups(head), t = groups(tail);
  const all = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = new Uint8Array(16);
  all.forEach((g, i) => { out[i * 2] = g >> 8; out[i * 2 + 1] = g & 0xff; });
  return out;
}

function u16(n: number): number[] {
  return [(n >> 8) & 0xff, n & 0xff];
}

function u32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/** Ethernet II + IPv4 (IHL 5, DF, TTL 64) or IPv6 (hop limit 64) around a transport segment. */
export function ipFrame(src: string, dst: string, proto: number, l4: Uint8Array): Uint8Array {
  const s = ipBytes(src), d = ipBytes(dst);
  const v6 = s.length === 16;
  const eth = [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, ...u16(v6 ? 0x86dd : 0x0800)];
  const ip = v6
    ? [0x60, 0, 0, 0, ...u16(l4.length), proto, 64, ...s, ...d]
    : [0x45, 0, ...u16(20 + l4.length), 0, 0, 0x40, 0, 64, proto, 0, 0, ...s, ...d];
  return concat(new Uint8Array([...eth, ...ip]), l4);
}

export interface TcpSpec {
  src: string; dst: string; sport: number; dport: number;
  flags: number;
  seq?: number; ack?: number; window?: number;
  /** SYN options */
  mss?: number; wscale?: number; sack_permitted?: boolean;
  payload?: Bytes;
}

export function tcpFrame(t: TcpSpec): Uint8Array {
  const opts: number[] = [];
  if (t.mss !== undefined) opts.push(2, 4, ...u16(t.mss));
  if (t.sack_permitted) opts.push(4, 2);
  if (t.wscale !== undefined) opts.push(1, 3, 3, t.wscale);
  while (opts.length % 4 !== 0) opts.push(0);
  const hl = 20 + opts.length;
  const header = [...u16(t.sport), ...u16(t.dport), ...u32(t.seq ?? 0), ...u32(t.ack ?? 0),
    (hl / 4) << 4, t.flags, ...u16(t.window ?? 65535), 0, 0, 0, 0, ...opts];
  return ipFrame(t.src, t.dst, 6, concat(new Uint8Array(header), t.payload ?? ''));
}

export function udpFrame(src: string, sport: number, dst: string, dport: number, payload: Bytes): Uint8Array {
  const p = bytes(payload);
  return ipFrame(src, dst, 17, concat(new Uint8Array([...u16(sport), ...u16(dport), ...u16(8 + p.length), 0, 0]), p));
}

/**
 * Frames of one TCP connection in logical order: it keeps each side's next sequence
 * number and acknowledges everything the peer has sent so far. Tests decide what is
 * fed, dropped, repeated or reordered.
 */
export class TcpConn {
  /** next sequence number of client (c) and server (s) */
  readonly next = { c: 0, s: 0 };
  /** raw advertised window used when a frame does not say */
  readonly win = { c: 502, s: 512 };

  constructor(readonly client: string, readonly cport: number, readonly server: string, readonly sport: number,
              readonly isn = { c: 1000, s: 5000 }) {
    this.next.c = isn.c;
    this.next.s = isn.s;
  }

  private frame(side: 'c' | 's', flags: number, o: Partial<TcpSpec>): Uint8Array {
    const peer = side === 'c' ? 's' : 'c';
    const [src, sp, dst, dp] = side === 'c'
      ? [this.client, this.cport, this.server, this.sport] : [this.server, this.sport, this.client, this.cport];
    return tcpFrame({ src, dst, sport: sp, dport: dp, flags, seq: this.next[side],
      ack: (flags & ACK) !== 0 ? this.next[peer] : 0, window: this.win[side], ...o });
  }

  syn(o: Partial<TcpSpec> = {}): Uint8Array {
    const f = this.frame('c', SYN, { seq: this.isn.c, ...o });
    this.next.c = (this.isn.c + 1) >>> 0;
    return f;
  }

  synAck(o: Partial<TcpSpec> = {}): Uint8Array {
    const f = this.frame('s', SYN | ACK, { seq: this.isn.s, ...o });
    this.next.s = (this.isn.s + 1) >>> 0;
    return f;
  }

  /** a segment from `side`: ACK (+PSH with data, + `more_flags`), seq advanced by the payload */
  send(side: 'c' | 's', payload: Bytes = '', o: Partial<TcpSpec> & { more_flags?: number } = {}): Uint8Array {
    const p = bytes(payload);
    const { more_flags = 0, ...rest } = o;
    const f = this.frame(side, ACK | (p.length > 0 ? PSH : 0) | more_flags, { ...rest, payload: p });
    this.next[side] = (this.next[side] + p.length) >>> 0;
    return f;
  }

  ack(side: 'c' | 's', o: Partial<TcpSpec> = {}): Uint8Array {
    return this.send(side, '', o);
  }

  /** FIN+ACK, which occupies one sequence number */
  fin(side: 'c' | 's', o: Partial<TcpSpec> = {}): Uint8Array {
    const f = this.send(side, '', { ...o, more_flags: FIN });
    this.next[side] = (this.next[side] + 1) >>> 0;
    return f;
  }

  rst(side: 'c' | 's', o: Partial<TcpSpec> = {}): Uint8Array {
    return this.send(side, '', { ...o, more_flags: RST });
  }
}

/** 1 700 000 000 s = 2023-11-14T22:13:20Z: the time origin of scripts. */
export const T0_SEC = 1_700_000_000;

/** RFC 3339 text of T0 + `ns` (nanoseconds), worked out independently of the sensor's formatter. */
export function iso(ns: number): string {
  const sec = T0_SEC + Math.floor(ns / 1e9);
  return `${new Date(sec * 1000).toISOString().slice(0, 19)}.${String(ns % 1e9).padStart(9, '0')}Z`;
}

export interface ScriptResult {
  records: OutputRecord[];
  transactions: TransactionRecord[];
  connections: ConnectionRecord[];
  statistics: StatisticsRecord;
}

/** Frames with their capture times, fed in order through one Pipeline. */
export class Script {
  private readonly packets: { sec: number; nsec: number; frame: Uint8Array }[] = [];

  constructor(readonly options: Partial<SensorOptions> = {}) {}

  /** a frame captured `ns` nanoseconds after T0 */
  at(ns: number, frame: Uint8Array): this {
    return this.atTime(T0_SEC + Math.floor(ns / 1e9), ns % 1e9, frame);
  }

  atTime(ts_sec: number, ts_nsec: number, frame: Uint8Array): this {
    this.packets.push({ sec: ts_sec, nsec: ts_nsec, frame });
    return this;
  }

  run(): ScriptResult {
    const records: OutputRecord[] = [];
    const p = new Pipeline(this.options, (r) => records.push(r));
    for (const { sec, nsec, frame } of this.packets) p.onPacket(frame, 0, frame.length, frame.length, 1, sec, nsec);
    p.finish();
    return {
      records,
      transactions: records.filter((r): r is TransactionRecord => r.type === 'transaction'),
      connections: records.filter((r): r is ConnectionRecord => r.type === 'connection'),
      statistics: records.find((r): r is StatisticsRecord => r.type === 'statistics')!,
    };
  }
}

/** A classic pcap file (microsecond timestamps, LINKTYPE_ETHERNET) of (ns after T0, frame) pairs. */
export function pcapFile(packets: [number, Uint8Array][]): Uint8Array {
  const le32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
  const parts: Bytes[] = [new Uint8Array([0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, ...le32(0), ...le32(0), ...le32(65535), ...le32(1)])];
  for (const [ns, f] of packets) {
    parts.push(new Uint8Array([...le32(T0_SEC + Math.floor(ns / 1e9)), ...le32(Math.floor((ns % 1e9) / 1000)), ...le32(f.length), ...le32(f.length)]), f);
  }
  return concat(...parts);
}
