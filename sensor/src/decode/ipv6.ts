import type { DecodeCursor } from './decode-cursor.ts';
import type { DecodedPacket } from './decoded-packet.ts';
import { Kind } from './decode-errors.ts';

// Extension headers the walk steps over (RFC 8200 §4). ESP (50, RFC 4303: the rest is
// encrypted) and No Next Header (59) end the walk like an upper-layer header does.
const HOP_BY_HOP = 0;
const ROUTING = 43;
const FRAGMENT = 44;
const AH = 51; // RFC 4302
const DESTINATION_OPTIONS = 60;

/**
 * Decodes the IPv6 fixed header at `c.off` (RFC 8200 §3) and walks its extension
 * headers. On success fills the addresses and `ip_version`; then either
 * - `pkt.transport` is the upper-layer protocol and `c.off` its header, or
 * - `c.fragment` is set (a non-atomic fragment): `c.off` is the fragment data and
 *   `c.frag_*` describe it; the walk resumes on the reassembled datagram with
 *   {@link walkIpv6Headers}.
 * `c.cap_end` / `c.wire_end` are trimmed to the payload length. Returns `Kind.OK` or
 * the counted kind.
 */
export function decodeIpv6(c: DecodeCursor, pkt: DecodedPacket): number {
  const b = c.buf;
  const o = c.off;
  if (c.cap_end - o < 40) return Kind.IPV6_TRUNCATED;
  if (b[o] >> 4 !== 6) return Kind.IPV6_BAD_VERSION;
  const plen = (b[o + 4] << 8) | b[o + 5];
  const nh = b[o + 6];
  // Payload length 0 with a hop-by-hop header is a jumbogram (RFC 2675 §2): the real
  // length is in the Jumbo Payload option. Not supported.
  if (plen === 0 && nh === HOP_BY_HOP) return Kind.IPV6_JUMBO;
  const wire_end = o + 40 + plen;
  if (wire_end > c.wire_end) return Kind.IPV6_BAD_LENGTH;

  pkt.ip_version = 6;
  pkt.src0 = ((b[o + 8] << 24) | (b[o + 9] << 16) | (b[o + 10] << 8) | b[o + 11]) >>> 0;
  pkt.src1 = ((b[o + 12] << 24) | (b[o + 13] << 16) | (b[o + 14] << 8) | b[o + 15]) >>> 0;
  pkt.src2 = ((b[o + 16] << 24) | (b[o + 17] << 16) | (b[o + 18] << 8) | b[o + 19]) >>> 0;
  pkt.src3 = ((b[o + 20] << 24) | (b[o + 21] << 16) | (b[o + 22] << 8) | b[o + 23]) >>> 0;
  pkt.dst0 = ((b[o + 24] << 24) | (b[o + 25] << 16) | (b[o + 26] << 8) | b[o + 27]) >>> 0;
  pkt.dst1 = ((b[o + 28] << 24) | (b[o + 29] << 16) | (b[o + 30] << 8) | b[o + 31]) >>> 0;
  pkt.dst2 = ((b[o + 32] << 24) | (b[o + 33] << 16) | (b[o + 34] << 8) | b[o + 35]) >>> 0;
  pkt.dst3 = ((b[o + 36] << 24) | (b[o + 37] << 16) | (b[o + 38] << 8) | b[o + 39]) >>> 0;

  c.off = o + 40;
  c.wire_end = wire_end;
  if (c.cap_end > wire_end) c.cap_end = wire_end;
  if (nh === 6 || nh === 17) {
    pkt.transport = nh; // the common case: no extension headers
    return Kind.OK;
  }
  const code = walkIpv6Headers(c, pkt, nh, true);
  if (c.fragment) c.frag_hdr_len = c.off - o;
  return code;
}

/**
 * Walks the extension header chain starting with header `nh` at `c.off` until an
 * upper-layer header, ESP or no-next-header (RFC 8200 §4.1), leaving `pkt.transport`
 * and `c.off` at it. With `allow_fragment` a non-atomic fragment header stops the
 * walk with `c.fragment` set; without it (inside a reassembled datagram) a fragment
 * header is malformed. Returns `Kind.OK` or the counted kind.
 */
export function walkIpv6Headers(c: DecodeCursor, pkt: DecodedPacket, nh: number, allow_fragment: boolean): number {
  const b = c.buf;
  const cap_end = c.cap_end;
  const wire_end = c.wire_end;
  let p = c.off;
  for (;;) {
    let len: number;
    if (nh === HOP_BY_HOP || nh === ROUTING || nh === DESTINATION_OPTIONS) {
      // Next Header (1), Hdr Ext Len (1) in 8-octet units not counting the first 8.
      if (wire_end - p < 2) return Kind.IPV6_BAD_EXT_HEADER;
      if (cap_end - p < 2) return Kind.IPV6_TRUNCATED;
      len = (b[p + 1] + 1) << 3;
    } else if (nh === AH) {
      // RFC 4302 §2.2: Payload Len is the AH length in 4-octet units minus 2.
      if (wire_end - p < 2) return Kind.IPV6_BAD_EXT_HEADER;
      if (cap_end - p < 2) return Kind.IPV6_TRUNCATED;
      len = (b[p + 1] + 2) << 2;
    } else if (nh === FRAGMENT) {
      // RFC 8200 §4.5: Next Header (1), reserved (1), Fragment Offset (13 bits, 8-octet
      // units), Res (2), M (1), Identification (4).
      if (!allow_fragment) return Kind.IPV6_BAD_EXT_HEADER;
      if (wire_end - p < 8) return Kind.IPV6_BAD_EXT_HEADER;
      if (cap_end - p < 8) return Kind.IPV6_TRUNCATED;
      const fo = (b[p + 2] << 8) | b[p + 3];
      if ((fo & 0xfff9) === 0) {
        // Atomic fragment (offset 0, M = 0; RFC 6946 §4): the whole packet, no reassembly.
        nh = b[p];
        p += 8;
        continue;
      }
      c.fragment = true;
      c.frag_next = b[p];
      c.frag_offset = fo & 0xfff8;
      c.frag_more = (fo & 1) !== 0;
      c.frag_id = ((b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]) >>> 0;
      pkt.transport = FRAGMENT;
      c.off = p + 8;
      return Kind.OK;
    } else {
      // Upper layer, ESP, no-next-header or anything unknown: the walk ends.
      pkt.transport = nh;
      c.off = p;
      return Kind.OK;
    }
    if (wire_end - p < len) return Kind.IPV6_BAD_EXT_HEADER;
    if (cap_end - p < len) return Kind.IPV6_TRUNCATED;
    nh = b[p];
    p += len;
  }
}
