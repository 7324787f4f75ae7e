/**
 * What every packet source (capture file, live interface) hands to the pipeline.
 *
 * Ownership: `buf` belongs to the source and is reused for the next packet (or the
 * next chunk); a sink copies whatever must outlive the call. Timestamps are the
 * capture's own (pcap header, pcapng EPB, kernel), split into whole seconds since
 * the Unix epoch and nanoseconds within the second so that nanosecond captures stay
 * exact (epoch nanoseconds do not fit a double's 53-bit mantissa).
 */
export interface PacketSink {
  /**
   * One captured packet.
   * @param buf       bytes of the capture; the packet is `buf[offset, offset + caplen)`
   * @param caplen    bytes captured
   * @param wirelen   bytes on the wire (>= caplen when the snap length cut it)
   * @param linktype  LINKTYPE_* of the packet's interface (1 Ethernet, 113 SLL, 276 SLL2, 0 NULL, 108 LOOP, 101 raw, 228 IPv4, 229 IPv6)
   * @param ts_sec    whole seconds since the epoch
   * @param ts_nsec   nanoseconds within the second, 0..999 999 999
   */
  onPacket(buf: Uint8Array, offset: number, caplen: number, wirelen: number, linktype: number, ts_sec: number, ts_nsec: number): void;
}

/** LINKTYPE_* values (https://www.tcpdump.org/linktypes.html) the decoder understands. */
export const LinkType = {
  NULL: 0,
  ETHERNET: 1,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

/** A capture that cannot be read past some point. Everything before `offset` was delivered. */
export class CaptureError extends Error {
  readonly file: string;
  readonly offset: number;
  readonly reason: string;
  constructor(file: string, offset: number, reason: string) {
    super(`${file}: at byte offset ${offset}: ${reason}`);
    this.name = 'CaptureError';
    this.file = file;
    this.offset = offset;
    this.reason = reason;
  }
}
