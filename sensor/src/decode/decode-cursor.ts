const EMPTY = new Uint8Array(0);

/**
 * Scratch state handed from one layer's parser to the next. A `Decoder` owns one and
 * reuses it for every packet, so the layers pass positions without allocating.
 *
 * Each parser reads the layer starting at `off` and, on success, leaves `off` at the
 * start of the next layer and narrows `cap_end` / `wire_end` to the bytes that layer
 * may use.
 */
export class DecodeCursor {
  /** buffer the current layer lives in: the capture buffer, or a reassembly buffer */
  buf: Uint8Array = EMPTY;
  /** offset of the current layer's first byte in `buf` */
  off = 0;
  /** end (exclusive) of the bytes present in `buf` for the current layer */
  cap_end = 0;
  /**
   * End (exclusive) of the current layer as it was on the wire, in `buf` coordinates:
   * the frame's wire length, then what the IP header announces. Always >= `cap_end`.
   */
  wire_end = 0;

  /** link layer → network layer: the ethertype found (0x0800 IPv4, 0x86dd IPv6, ...) */
  ethertype = 0;

  /** network layer → decoder: the packet is a (non-atomic) fragment; `off` is the start of its data */
  fragment = false;
  /** fragment offset in bytes */
  frag_offset = 0;
  /** more-fragments flag */
  frag_more = false;
  /** identification: IPv4 16-bit, IPv6 32-bit (unsigned) */
  frag_id = 0;
  /** IPv6: next header of the fragment header (the fragmentable part's first header) */
  frag_next = 0;
  /** bytes of IP header before the fragment data (IPv4 IHL*4; IPv6 40 + extension headers + 8) */
  frag_hdr_len = 0;
}
