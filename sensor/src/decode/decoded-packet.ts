/**
 * One decoded packet: a reused struct the decoder fills in place (no allocation per
 * packet). Valid until the next call to `Decoder.decode`.
 *
 * Addresses: an IPv4 address is `src0` (unsigned 32-bit, network order read as a
 * big-endian number) with `src1..src3` zero; an IPv6 address is `src0..src3`, four
 * big-endian 32-bit words. `ip_version` tells which.
 */
export class DecodedPacket {
  /** capture timestamp: whole seconds since the epoch and nanoseconds within it */
  ts_sec = 0;
  ts_nsec = 0;
  /** bytes on the wire, as the capture reports */
  wire_len = 0;

  /** 4 or 6; 0 when no IP layer was decoded */
  ip_version = 0;
  src0 = 0; src1 = 0; src2 = 0; src3 = 0;
  dst0 = 0; dst1 = 0; dst2 = 0; dst3 = 0;
  /** IP protocol number of the transport (6 TCP, 17 UDP), after IPv6 extension headers */
  transport = 0;
  /** outermost 802.1Q VLAN id, -1 when untagged */
  vlan_id = -1;

  src_port = 0;
  dst_port = 0;

  /** TCP only */
  tcp_flags = 0;
  /** unsigned 32-bit sequence and acknowledgement numbers */
  seq = 0;
  ack = 0;
  /** raw (unscaled) advertised window */
  window = 0;
  /** TCP options; -1 when the option is absent */
  opt_mss = -1;
  opt_wscale = -1;
  opt_sack_permitted = false;
  opt_ts_val = -1;
  opt_ts_ecr = -1;

  /**
   * Transport payload: `payload_buf[payload_off, payload_off + payload_len)`. The
   * buffer is the capture buffer, or the reassembly buffer of an IP datagram that
   * arrived in fragments.
   */
  payload_buf: Uint8Array = EMPTY;
  payload_off = 0;
  /** payload bytes present in the capture */
  payload_len = 0;
  /** payload bytes the IP/TCP headers announce (> payload_len when the snap length cut the packet) */
  payload_wire_len = 0;
}

const EMPTY = new Uint8Array(0);

export const TcpFlag = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

export const IpProto = { TCP: 6, UDP: 17 } as const;
