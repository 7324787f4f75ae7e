/**
 * Streaming writer of classic pcap files (microsecond timestamps, little-endian,
 * LINKTYPE_ETHERNET) with builders for Ethernet/IPv4/TCP and Ethernet/IPv4/UDP frames.
 *
 * Constant memory: frames are built in place in one reused output buffer, which is
 * flushed to the file descriptor with writeSync whenever the next record might not fit.
 * IPv4 header checksums are always right; TCP and UDP checksums are computed over the
 * pseudo-header unless `transport_checksums` is false (then they are left 0, which for
 * UDP means "no checksum" and for TCP is wrong).
 */
import { openSync, writeSync, closeSync } from 'node:fs';

export const PCAP_MAGIC_USEC = 0xa1b2c3d4;
export const LINKTYPE_ETHERNET = 1;

/** largest frame the builders produce: 14 + 20 + 60 + 1448 rounded up generously */
export const MAX_FRAME = 2048;

export interface FrameEnds {
  src_mac: Uint8Array; // 6 bytes
  dst_mac: Uint8Array; // 6 bytes
  src_ip: number; // unsigned 32-bit, network order as a number
  dst_ip: number;
  ttl: number;
  ip_id: number;
  dont_fragment: boolean;
}

/** Where records go instead of a file: called with each frame, which is only valid during the call. */
export type RecordSink = (frame: Uint8Array, offset: number, len: number, ts_sec: number, ts_usec: number) => void;

export class PcapWriter {
  readonly buf: Uint8Array;
  private readonly view: DataView;
  private pos = 0;
  private fd: number;
  private readonly sink: RecordSink | null;
  /** records written */
  packets = 0;
  /** bytes written to the file, headers included */
  file_bytes = 0;
  transport_checksums = true;

  /** `target`: a file path, or a function that takes each record instead (no file header then). */
  constructor(target: string | RecordSink, options: { snaplen?: number; buffer_bytes?: number } = {}) {
    this.buf = new Uint8Array(options.buffer_bytes ?? 1 << 22);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    if (typeof target === 'function') {
      this.sink = target;
      this.fd = -1;
      return;
    }
    this.sink = null;
    this.fd = openSync(target, 'w');
    const v = this.view;
    v.setUint32(0, PCAP_MAGIC_USEC, true);
    v.setUint16(4, 2, true);
    v.setUint16(6, 4, true);
    v.setInt32(8, 0, true); // thiszone
    v.setUint32(12, 0, true); // sigfigs
    v.setUint32(16, options.snaplen ?? 262144, true);
    v.setUint32(20, LINKTYPE_ETHERNET, true);
    this.pos = 24;
  }

  /** Offset in `buf` where the next frame goes (after its 16-byte record header). */
  private frameStart(): number {
    if (this.pos + 16 + MAX_FRAME > this.buf.length) this.flush();
    return this.pos + 16;
  }

  private commit(ts_sec: number, ts_usec: number, frame_len: number): void {
    const v = this.view;
    const p = this.pos;
    v.setUint32(p, ts_sec, true);
    v.setUint32(p + 4, ts_usec, true);
    v.setUint32(p + 8, frame_len, true);
    v.setUint32(p + 12, frame_len, true);
    this.packets++;
    if (this.sink !== null) {
      this.sink(this.buf, p + 16, frame_len, ts_sec, ts_usec);
      return;
    }
    this.pos = p + 16 + frame_len;
  }

  flush(): void {
    if (this.fd < 0) return;
    let off = 0;
    while (off < this.pos) off += writeSync(this.fd, this.buf, off, this.pos - off);
    this.file_bytes += this.pos;
    this.pos = 0;
  }

  close(): void {
    if (this.fd < 0) return;
    this.flush();
    closeSync(this.fd);
    this.fd = -1;
  }

  /**
   * Ethernet + IPv4 + TCP. `opts` holds `opts_len` bytes of TCP options (a multiple of
   * 4). The payload is `payload[poff, poff + plen)`.
   */
  tcp(
    ts_sec: number, ts_usec: number, ends: FrameEnds,
    sport: number, dport: number, seq: number, ack: number, flags: number, window: number,
    opts: Uint8Array, opts_len: number,
    payload: Uint8Array | null, poff: number, plen: number,
  ): void {
    const f = this.frameStart();
    const len = buildTcpFrame(this.buf, this.view, f, ends, sport, dport, seq, ack, flags, window, opts, opts_len, payload, poff, plen, this.transport_checksums);
    this.commit(ts_sec, ts_usec, len);
  }

  /** A frame built elsewhere: `frame[0, len)`. */
  raw(ts_sec: number, ts_usec: number, frame: Uint8Array, len: number): void {
    const f = this.frameStart();
    this.buf.set(frame.subarray(0, len), f);
    this.commit(ts_sec, ts_usec, len);
  }

  /** Ethernet + IPv4 + UDP with `payload[poff, poff + plen)`. */
  udp(
    ts_sec: number, ts_usec: number, ends: FrameEnds, sport: number, dport: number,
    payload: Uint8Array, poff: number, plen: number,
  ): void {
    const b = this.buf;
    const f = this.frameStart();
    const ip = writeEthIp(b, f, ends, 17, 8 + plen);
    const u = ip + 20;
    const v = this.view;
    v.setUint16(u, sport);
    v.setUint16(u + 2, dport);
    v.setUint16(u + 4, 8 + plen);
    v.setUint16(u + 6, 0);
    b.set(payload.subarray(poff, poff + plen), u + 8);
    if (this.transport_checksums) {
      const c = fold(pseudoHeaderSum(ends.src_ip, ends.dst_ip, 17, 8 + plen) + sum16(b, u, 8 + plen));
      v.setUint16(u + 6, c === 0 ? 0xffff : c);
    }
    this.commit(ts_sec, ts_usec, 42 + plen);
  }
}

/**
 * Builds an Ethernet + IPv4 + TCP frame at `b[f...]` (`view` over the same bytes) and
 * returns its length. `opts` holds `opts_len` bytes of TCP options (a multiple of 4);
 * the payload is `payload[poff, poff + plen)`.
 */
export function buildTcpFrame(
  b: Uint8Array, view: DataView, f: number, ends: FrameEnds,
  sport: number, dport: number, seq: number, ack: number, flags: number, window: number,
  opts: Uint8Array, opts_len: number,
  payload: Uint8Array | null, poff: number, plen: number, checksum = true,
): number {
  const ip = writeEthIp(b, f, ends, 6, 20 + opts_len + plen);
  const t = ip + 20;
  const v = view;
  v.setUint16(t, sport);
  v.setUint16(t + 2, dport);
  v.setUint32(t + 4, seq >>> 0);
  v.setUint32(t + 8, ack >>> 0);
  b[t + 12] = ((20 + opts_len) >> 2) << 4;
  b[t + 13] = flags;
  v.setUint16(t + 14, window);
  b[t + 16] = 0; b[t + 17] = 0; // checksum
  b[t + 18] = 0; b[t + 19] = 0; // urgent pointer
  if (opts_len > 0) b.set(opts.subarray(0, opts_len), t + 20);
  if (plen > 0) b.set(payload!.subarray(poff, poff + plen), t + 20 + opts_len);
  const tcp_len = 20 + opts_len + plen;
  if (checksum) {
    const sum = pseudoHeaderSum(ends.src_ip, ends.dst_ip, 6, tcp_len) + sum16(b, t, tcp_len);
    v.setUint16(t + 16, fold(sum));
  }
  return 34 + tcp_len;
}

/** Writes Ethernet and IPv4 headers at `f`; returns the offset of the IPv4 header. */
function writeEthIp(b: Uint8Array, f: number, e: FrameEnds, proto: number, l4_len: number): number {
  b.set(e.dst_mac, f);
  b.set(e.src_mac, f + 6);
  b[f + 12] = 0x08; b[f + 13] = 0x00;
  const ip = f + 14;
  const total = 20 + l4_len;
  b[ip] = 0x45;
  b[ip + 1] = 0;
  b[ip + 2] = total >>> 8; b[ip + 3] = total & 0xff;
  b[ip + 4] = (e.ip_id >>> 8) & 0xff; b[ip + 5] = e.ip_id & 0xff;
  b[ip + 6] = e.dont_fragment ? 0x40 : 0; b[ip + 7] = 0;
  b[ip + 8] = e.ttl;
  b[ip + 9] = proto;
  b[ip + 10] = 0; b[ip + 11] = 0;
  b[ip + 12] = e.src_ip >>> 24; b[ip + 13] = (e.src_ip >>> 16) & 0xff; b[ip + 14] = (e.src_ip >>> 8) & 0xff; b[ip + 15] = e.src_ip & 0xff;
  b[ip + 16] = e.dst_ip >>> 24; b[ip + 17] = (e.dst_ip >>> 16) & 0xff; b[ip + 18] = (e.dst_ip >>> 8) & 0xff; b[ip + 19] = e.dst_ip & 0xff;
  const c = fold(sum16(b, ip, 20));
  b[ip + 10] = c >>> 8; b[ip + 11] = c & 0xff;
  return ip;
}

/** One's-complement partial sum of `len` bytes as big-endian 16-bit words (odd tail padded). */
export function sum16(b: Uint8Array, off: number, len: number): number {
  let s = 0;
  const end = off + (len & ~1);
  for (let i = off; i < end; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (len & 1) s += b[off + len - 1]! << 8;
  return s;
}

function pseudoHeaderSum(src: number, dst: number, proto: number, len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + len;
}

/** Folds a partial sum to 16 bits and complements it. */
export function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return ~s & 0xffff;
}

export function ipv4(a: number, b: number, c: number, d: number): number {
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

export function mac(...bytes: number[]): Uint8Array {
  return Uint8Array.from(bytes);
}
