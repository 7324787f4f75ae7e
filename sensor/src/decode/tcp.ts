import type { DecodeCursor } from './decode-cursor.ts';
import type { DecodedPacket } from './decoded-packet.ts';
import { Kind } from './decode-errors.ts';

/**
 * Decodes the TCP header at `c.off` (RFC 9293 §3.1) within the IP payload
 * `[c.off, c.wire_end)`, of which `[c.off, c.cap_end)` was captured. Fills ports,
 * sequence numbers, flags, window, options and the payload view. Returns `Kind.OK`,
 * `Kind.TCP_BAD_OPTION` (packet decoded, option list malformed) or the counted kind.
 * The optional TCP fields must be reset by the caller.
 */
export function decodeTcp(c: DecodeCursor, pkt: DecodedPacket): number {
  const b = c.buf;
  const o = c.off;
  const wire_len = c.wire_end - o;
  const cap_len = c.cap_end - o;
  if (wire_len < 20) return Kind.TCP_BAD_LENGTH;
  if (cap_len < 20) return Kind.TCP_TRUNCATED;
  // Data Offset: header length in 32-bit words, at least 5.
  const hl = (b[o + 12] >> 4) << 2;
  if (hl < 20 || hl > wire_len) return Kind.TCP_BAD_OFFSET;

  pkt.src_port = (b[o] << 8) | b[o + 1];
  pkt.dst_port = (b[o + 2] << 8) | b[o + 3];
  pkt.seq = ((b[o + 4] << 24) | (b[o + 5] << 16) | (b[o + 6] << 8) | b[o + 7]) >>> 0;
  pkt.ack = ((b[o + 8] << 24) | (b[o + 9] << 16) | (b[o + 10] << 8) | b[o + 11]) >>> 0;
  pkt.tcp_flags = b[o + 13];
  pkt.window = (b[o + 14] << 8) | b[o + 15];

  pkt.payload_buf = b;
  pkt.payload_off = o + hl;
  pkt.payload_wire_len = wire_len - hl;
  if (cap_len < hl) {
    // The snap length cut the options: the base header still times the packet.
    pkt.payload_len = 0;
    decodeTcpOptions(b, o + 20, o + cap_len, pkt);
    return Kind.TCP_OPTIONS_TRUNCATED;
  }
  pkt.payload_len = cap_len - hl;
  if (hl === 20) return Kind.OK;
  return decodeTcpOptions(b, o + 20, o + hl, pkt);
}

/**
 * Parses the TCP option list `b[p, end)` (RFC 9293 §3.2): EOL (0) ends the list, NOP (1)
 * is one byte, every other option is kind, length (counting both), data. Picks up MSS
 * (kind 2, RFC 9293 §3.7.1), window scale (kind 3, RFC 7323 §2), SACK-permitted (kind 4,
 * RFC 2018 §2) and timestamps (kind 8, RFC 7323 §3); unknown kinds are stepped over.
 * A malformed list stops the parse: options found before the fault are kept and
 * `Kind.TCP_BAD_OPTION` is returned.
 */
export function decodeTcpOptions(b: Uint8Array, p: number, end: number, pkt: DecodedPacket): number {
  while (p < end) {
    const kind = b[p];
    if (kind === 0) return Kind.OK;
    if (kind === 1) {
      p++;
      continue;
    }
    if (end - p < 2) return Kind.TCP_BAD_OPTION;
    const len = b[p + 1];
    if (len < 2 || len > end - p) return Kind.TCP_BAD_OPTION;
    switch (kind) {
      case 2:
        if (len !== 4) return Kind.TCP_BAD_OPTION;
        pkt.opt_mss = (b[p + 2] << 8) | b[p + 3];
        break;
      case 3: {
        if (len !== 3) return Kind.TCP_BAD_OPTION;
        // RFC 7323 §2.3: a shift count above 14 MUST be treated as 14.
        const shift = b[p + 2];
        pkt.opt_wscale = shift > 14 ? 14 : shift;
        break;
      }
      case 4:
        if (len !== 2) return Kind.TCP_BAD_OPTION;
        pkt.opt_sack_permitted = true;
        break;
      case 8:
        if (len !== 10) return Kind.TCP_BAD_OPTION;
        pkt.opt_ts_val = ((b[p + 2] << 24) | (b[p + 3] << 16) | (b[p + 4] << 8) | b[p + 5]) >>> 0;
        pkt.opt_ts_ecr = ((b[p + 6] << 24) | (b[p + 7] << 16) | (b[p + 8] << 8) | b[p + 9]) >>> 0;
        break;
      default:
        break;
    }
    p += len;
  }
  return Kind.OK;
}
