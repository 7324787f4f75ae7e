import type { DecodeCursor } from './decode-cursor.ts';
import type { DecodedPacket } from './decoded-packet.ts';
import { Kind } from './decode-errors.ts';

/**
 * Decodes the UDP header at `c.off` (RFC 768) within the IP payload
 * `[c.off, c.wire_end)`, of which `[c.off, c.cap_end)` was captured. The UDP length
 * bounds the payload: bytes after it inside the IP payload are not payload. Returns
 * `Kind.OK` or the counted kind. The checksum is not verified.
 */
export function decodeUdp(c: DecodeCursor, pkt: DecodedPacket): number {
  const b = c.buf;
  const o = c.off;
  const wire_len = c.wire_end - o;
  if (wire_len < 8) return Kind.UDP_BAD_LENGTH;
  if (c.cap_end - o < 8) return Kind.UDP_TRUNCATED;
  // Length counts header and data; 0 only appears in IPv6 jumbograms (RFC 2675 §4),
  // which are not decoded.
  const ulen = (b[o + 4] << 8) | b[o + 5];
  if (ulen < 8 || ulen > wire_len) return Kind.UDP_BAD_LENGTH;

  pkt.src_port = (b[o] << 8) | b[o + 1];
  pkt.dst_port = (b[o + 2] << 8) | b[o + 3];
  const end = o + ulen;
  const cap_end = c.cap_end < end ? c.cap_end : end;
  pkt.payload_buf = b;
  pkt.payload_off = o + 8;
  pkt.payload_len = cap_end - o - 8;
  pkt.payload_wire_len = ulen - 8;
  return Kind.OK;
}
