import type { DecodeCursor } from './decode-cursor.ts';
import type { DecodedPacket } from './decoded-packet.ts';
import { Kind } from './decode-errors.ts';

/**
 * Decodes the IPv4 header at `c.off` (RFC 791 §3.1). On success fills the addresses,
 * `ip_version` and `transport`, leaves `c.off` at the transport header (or at the
 * fragment data when `c.fragment` is set) and trims `c.cap_end` / `c.wire_end` to the
 * datagram's total length — so trailing Ethernet padding never counts as payload.
 * Returns `Kind.OK` or the counted kind. The header checksum is not verified (checksum
 * offload makes it wrong in captures taken on the sending host).
 */
export function decodeIpv4(c: DecodeCursor, pkt: DecodedPacket): number {
  const b = c.buf;
  const o = c.off;
  if (c.cap_end - o < 20) return Kind.IPV4_TRUNCATED;
  const vihl = b[o];
  if (vihl >> 4 !== 4) return Kind.IPV4_BAD_VERSION;
  const hl = (vihl & 0x0f) << 2;
  if (hl < 20) return Kind.IPV4_BAD_IHL;
  const total = (b[o + 2] << 8) | b[o + 3];
  // Total length covers header and data (RFC 791 §3.1). Smaller than the header is
  // malformed; larger than what the frame carried on the wire is too. (A total length
  // of 0 is what TSO-offloaded packets captured on the sender look like; counted here.)
  if (total < hl) return Kind.IPV4_BAD_LENGTH;
  const wire_end = o + total;
  if (wire_end > c.wire_end) return Kind.IPV4_BAD_LENGTH;
  if (c.cap_end - o < hl) return Kind.IPV4_TRUNCATED;

  pkt.ip_version = 4;
  pkt.transport = b[o + 9];
  pkt.src0 = ((b[o + 12] << 24) | (b[o + 13] << 16) | (b[o + 14] << 8) | b[o + 15]) >>> 0;
  pkt.dst0 = ((b[o + 16] << 24) | (b[o + 17] << 16) | (b[o + 18] << 8) | b[o + 19]) >>> 0;

  // Flags (3 bits: reserved, DF, MF) and fragment offset (13 bits, in 8-byte units).
  const ff = (b[o + 6] << 8) | b[o + 7];
  if ((ff & 0x3fff) !== 0) {
    c.fragment = true;
    c.frag_more = (ff & 0x2000) !== 0;
    c.frag_offset = (ff & 0x1fff) << 3;
    c.frag_id = (b[o + 4] << 8) | b[o + 5];
    c.frag_hdr_len = hl;
  }

  c.off = o + hl;
  c.wire_end = wire_end;
  if (c.cap_end > wire_end) c.cap_end = wire_end;
  return Kind.OK;
}
