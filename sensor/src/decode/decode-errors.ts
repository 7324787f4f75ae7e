/**
 * The counted outcomes of decoding a packet that did not (cleanly) reach the flow
 * stage. Each kind is an index into the decoder's preallocated counter array, so the
 * hot path counts with one indexed increment and no string handling.
 *
 * Two categories:
 * - decode errors: the packet is malformed or its headers were cut short by the
 *   snap length (`TCP_BAD_OPTION` and `TCP_OPTIONS_TRUNCATED` still let the packet through);
 * - skipped: a well-formed packet the sensor does not follow (not IP, not TCP/UDP, ...).
 *
 * The reported name of a kind is its key in lower case (`IPV4_BAD_IHL` → `ipv4_bad_ihl`).
 */
export const Kind = {
  /** no error */
  OK: 0,

  // ---- decode errors -------------------------------------------------------------
  /** link-layer header (Ethernet, SLL, SLL2, NULL/LOOP) cut short */
  LINK_TRUNCATED: 1,
  /** an 802.1Q / 802.1ad tag cut short */
  VLAN_TRUNCATED: 2,
  /** raw-IP link type whose first nibble is neither 4 nor 6 */
  IP_BAD_VERSION: 3,
  /** IPv4 header cut short */
  IPV4_TRUNCATED: 4,
  /** ethertype says IPv4, version nibble disagrees */
  IPV4_BAD_VERSION: 5,
  /** IHL < 5 (header shorter than 20 bytes; RFC 791 §3.1) */
  IPV4_BAD_IHL: 6,
  /** total length smaller than the header, or larger than the frame on the wire */
  IPV4_BAD_LENGTH: 7,
  /** IPv6 fixed header or extension header chain cut short */
  IPV6_TRUNCATED: 8,
  /** ethertype says IPv6, version nibble disagrees */
  IPV6_BAD_VERSION: 9,
  /** payload length larger than the frame on the wire */
  IPV6_BAD_LENGTH: 10,
  /** extension header running past the payload length, or a fragment header inside a reassembled datagram */
  IPV6_BAD_EXT_HEADER: 11,
  /** a fragment whose data was cut by the snap length (cannot be reassembled) */
  FRAGMENT_TRUNCATED: 12,
  /** non-last fragment not a multiple of 8 bytes, or reassembled datagram beyond 65535 (RFC 791, RFC 8200 §4.5) */
  FRAGMENT_BAD_LENGTH: 13,
  /** fragments disagree on where the datagram ends; the datagram is dropped */
  FRAGMENT_INCONSISTENT: 14,
  /** TCP header (including options) cut short */
  TCP_TRUNCATED: 15,
  /** IP payload too short to hold a 20-byte TCP header */
  TCP_BAD_LENGTH: 16,
  /** data offset < 5, or beyond the IP payload */
  TCP_BAD_OFFSET: 17,
  /** malformed option list; options before the fault are kept and the packet still decodes */
  TCP_BAD_OPTION: 18,
  /** UDP header cut short */
  UDP_TRUNCATED: 19,
  /** UDP length < 8, or larger than the IP payload */
  UDP_BAD_LENGTH: 20,
  /** TCP options cut by the snap length: the 20-byte header is decoded, options only as far as captured, and the packet still goes on */
  TCP_OPTIONS_TRUNCATED: 21,

  // ---- skipped ------------------------------------------------------------------
  /** a link type the decoder does not know */
  UNSUPPORTED_LINKTYPE: 22,
  /** ARP, LLC, and every other non-IP ethertype / address family */
  NON_IP: 23,
  /** IP but neither TCP nor UDP (ICMP, ESP, tunnels, no-next-header, ...) */
  OTHER_TRANSPORT: 24,
  /** IPv6 jumbogram (payload length 0 with hop-by-hop options, RFC 2675) */
  IPV6_JUMBO: 25,
} as const;

/** A counted kind (see {@link Kind}). */
export type KindCode = (typeof Kind)[keyof typeof Kind];

/** Number of kinds: the length of a counter array indexed by kind. */
export const KIND_COUNT = 26;

/** First kind in the "skipped" category; kinds below it (except OK) are decode errors. */
export const FIRST_SKIPPED_KIND: KindCode = Kind.UNSUPPORTED_LINKTYPE;

/** Reported name of each kind, indexed by kind: the key in lower case. */
export const KIND_NAMES: readonly string[] = (() => {
  const names = new Array<string>(KIND_COUNT).fill('');
  for (const [key, code] of Object.entries(Kind)) names[code] = key.toLowerCase();
  return names;
})();
