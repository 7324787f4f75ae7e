import { LinkType } from '../capture/packet-source.ts';
import type { DecodeCursor } from './decode-cursor.ts';
import type { DecodedPacket } from './decoded-packet.ts';
import { Kind } from './decode-errors.ts';

/** Ethertype of IPv4. */
export const ETHERTYPE_IPV4 = 0x0800;
/** Ethertype of IPv6. */
export const ETHERTYPE_IPV6 = 0x86dd;

/** 802.1Q customer tag (IEEE 802.1Q). */
const ETHERTYPE_VLAN = 0x8100;
/** 802.1ad service tag (the outer tag of QinQ). */
const ETHERTYPE_QINQ = 0x88a8;
/** Pre-802.1ad vendor QinQ outer tag, still seen on older switches. */
const ETHERTYPE_QINQ_OLD = 0x9100;

/**
 * DLT_RAW as some capture files carry it: 12 (most BSDs, Linux libpcap before
 * LINKTYPE_RAW existed) and 14 (OpenBSD). Wireshark reads both as raw IP too.
 */
const DLT_RAW_12 = 12;
const DLT_RAW_14 = 14;

/**
 * Decodes the link layer at `c.off`: on success leaves `c.off` at the network header,
 * `c.ethertype` set, and `pkt.vlan_id` set to the outermost tag's VLAN id (it must be
 * -1 on entry). Returns `Kind.OK` or the counted kind.
 */
export function decodeLink(c: DecodeCursor, linktype: number, pkt: DecodedPacket): number {
  const b = c.buf;
  const end = c.cap_end;
  let o = c.off;
  let et: number;
  switch (linktype) {
    case LinkType.ETHERNET:
      // dst MAC (6), src MAC (6), ethertype (2)
      if (end - o < 14) return Kind.LINK_TRUNCATED;
      et = (b[o + 12] << 8) | b[o + 13];
      o += 14;
      break;
    case LinkType.LINUX_SLL:
      // LINKTYPE_LINUX_SLL: packet type (2), ARPHRD type (2), address length (2),
      // address (8), protocol type (2) at offset 14 — an ethertype for IP.
      if (end - o < 16) return Kind.LINK_TRUNCATED;
      et = (b[o + 14] << 8) | b[o + 15];
      o += 16;
      break;
    case LinkType.LINUX_SLL2:
      // LINKTYPE_LINUX_SLL2: protocol type (2) at offset 0, reserved (2), interface
      // index (4), ARPHRD type (2), packet type (1), address length (1), address (8).
      if (end - o < 20) return Kind.LINK_TRUNCATED;
      et = (b[o] << 8) | b[o + 1];
      o += 20;
      break;
    case LinkType.NULL: {
      // LINKTYPE_NULL: a 4-byte AF_ value in the byte order of the host that wrote the
      // capture, which the file does not record. The values are small, so read it
      // both ways: AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD, OpenBSD),
      // 28 (FreeBSD) or 30 (Darwin).
      if (end - o < 4) return Kind.LINK_TRUNCATED;
      const le = (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
      const be = ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
      et = addressFamilyEthertype(le);
      if (et === 0) et = addressFamilyEthertype(be);
      if (et === 0) return Kind.NON_IP;
      o += 4;
      break;
    }
    case LinkType.LOOP: {
      // LINKTYPE_LOOP (OpenBSD loopback): like NULL but the family is always big-endian.
      if (end - o < 4) return Kind.LINK_TRUNCATED;
      et = addressFamilyEthertype(((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0);
      if (et === 0) return Kind.NON_IP;
      o += 4;
      break;
    }
    case LinkType.RAW:
    case LinkType.IPV4:
    case LinkType.IPV6:
    case DLT_RAW_12:
    case DLT_RAW_14: {
      // Raw IP: no link header; the version nibble says which IP it is.
      if (end - o < 1) return Kind.LINK_TRUNCATED;
      const v = b[o] >> 4;
      if (v === 4) et = ETHERTYPE_IPV4;
      else if (v === 6) et = ETHERTYPE_IPV6;
      else return Kind.IP_BAD_VERSION;
      c.off = o;
      c.ethertype = et;
      return Kind.OK;
    }
    default:
      return Kind.UNSUPPORTED_LINKTYPE;
  }

  // VLAN tags (IEEE 802.1Q): TPID (already read as the ethertype), then TCI —
  // PCP (3 bits), DEI (1), VID (12) — then the next ethertype. 802.1ad (0x88a8) and
  // the old 0x9100 mark QinQ outer tags; any number of tags may be stacked.
  while (et === ETHERTYPE_VLAN || et === ETHERTYPE_QINQ || et === ETHERTYPE_QINQ_OLD) {
    if (end - o < 4) return Kind.VLAN_TRUNCATED;
    if (pkt.vlan_id < 0) pkt.vlan_id = ((b[o] << 8) | b[o + 1]) & 0x0fff;
    et = (b[o + 2] << 8) | b[o + 3];
    o += 4;
  }
  c.off = o;
  c.ethertype = et;
  return Kind.OK;
}

/** Ethertype for a BSD AF_ value, 0 when it is neither AF_INET nor AF_INET6. */
function addressFamilyEthertype(family: number): number {
  if (family === 2) return ETHERTYPE_IPV4;
  if (family === 24 || family === 28 || family === 30) return ETHERTYPE_IPV6;
  return 0;
}
