import { Kind } from './decode-errors.ts';

/** {@link IpReassembler.add}: the fragment was taken; the datagram is not complete yet. */
export const REASSEMBLY_PENDING = -1;
/** {@link IpReassembler.add}: the datagram is complete; see `out_buf`, `out_len`, `out_proto`. */
export const REASSEMBLY_COMPLETE: number = Kind.OK;

const EMPTY = new Uint8Array(0);

/** Smallest reassembly buffer allocated while the datagram's end is still unknown. */
const MIN_CAPACITY = 2048;

/** One datagram being put together. */
class Datagram {
  /** the fragmentable part so far; null once the datagram was dropped (the rest of its fragments are swallowed until it expires) */
  buf: Uint8Array | null;
  /** byte ranges present, sorted, disjoint and not touching: [start0, end0, start1, end1, ...] */
  ranges: number[] = [];
  /** bytes present (sum of the ranges) */
  held = 0;
  /** length of the datagram once the last fragment (MF = 0) arrived, else -1 */
  total = -1;
  /** upper-layer protocol, from the offset-0 fragment; -1 until it arrives */
  proto = -1;
  /** capture time of the first fragment, seconds */
  readonly first_ts: number;

  constructor(first_ts: number) {
    this.first_ts = first_ts;
    this.buf = EMPTY;
  }
}

/**
 * IPv4 (RFC 791 §3.2, "reassembly") and IPv6 (RFC 8200 §4.5) fragment reassembly,
 * keyed by a caller-built string: fragments are rare, so this path may allocate.
 *
 * Fragments may arrive in any order and overlap; where they overlap the bytes that
 * arrived first are kept (RFC 5722 forbids overlaps in IPv6; keeping the first copy
 * is what most stacks and IDSs do for IPv4). A datagram is complete when every byte
 * from 0 to the end announced by the last fragment (MF = 0) is present.
 *
 * Bounded: at most `max_datagrams` in flight (the oldest is evicted), each expires
 * `timeout_s` of capture time after its first fragment, and one whose header plus
 * data would exceed `max_bytes` is dropped.
 */
export class IpReassembler {
  /** result of the last {@link add} that returned REASSEMBLY_COMPLETE: the datagram's fragmentable part */
  out_buf: Uint8Array = EMPTY;
  /** length of `out_buf`'s datagram (the buffer may be longer) */
  out_len = 0;
  /** upper-layer protocol (IPv4 protocol, or the offset-0 fragment header's next header for IPv6) */
  out_proto = 0;
  /** capture time (seconds) after which the oldest datagram expires; Infinity when none is pending */
  next_expiry = Infinity;

  /** fragments handed to {@link add} */
  received = 0;
  /** datagrams completed */
  reassembled = 0;
  /** datagrams that timed out incomplete */
  expired = 0;
  /** incomplete datagrams evicted because `max_datagrams` were in flight */
  evicted = 0;
  /** datagrams dropped for exceeding `max_bytes` */
  too_large = 0;
  /** data bytes held by incomplete datagrams */
  bytes_pending = 0;

  private readonly pending = new Map<string, Datagram>();
  private readonly max_datagrams: number;
  private readonly timeout_s: number;
  private readonly max_bytes: number;

  constructor(max_datagrams: number, timeout_s: number, max_bytes: number) {
    this.max_datagrams = Math.max(1, Math.floor(max_datagrams));
    this.timeout_s = timeout_s;
    this.max_bytes = max_bytes;
  }

  /** datagrams in flight (including dropped ones still swallowing their fragments) */
  get in_flight(): number {
    return this.pending.size;
  }

  /**
   * Adds one fragment: data `b[data_off, data_off + data_len)` at byte `frag_offset` of
   * datagram `key`. `more` is the MF flag, `proto` the upper-layer protocol this
   * fragment announces (used from the offset-0 fragment), `hdr_len` the bytes of IP
   * header in front of the data (for the `max_bytes` bound), `now` the capture time
   * in seconds. Returns REASSEMBLY_PENDING, REASSEMBLY_COMPLETE or a decode-error kind.
   */
  add(key: string, now: number, b: Uint8Array, data_off: number, data_len: number, frag_offset: number, more: boolean, proto: number, hdr_len: number): number {
    this.received++;
    const start = frag_offset;
    const end = frag_offset + data_len;
    // Every fragment but the last carries a multiple of 8 bytes: offsets are counted in
    // 8-byte units (RFC 791 §3.2; RFC 8200 §4.5 says to discard the fragment otherwise).
    if (more && (data_len & 7) !== 0) return Kind.FRAGMENT_BAD_LENGTH;

    let d = this.pending.get(key);
    if (d === undefined) {
      if (this.pending.size >= this.max_datagrams) this.evictOldest();
      d = new Datagram(now);
      this.pending.set(key, d);
      if (this.pending.size === 1) this.next_expiry = now + this.timeout_s;
    }
    const buf = d.buf;
    if (buf === null) return REASSEMBLY_PENDING;

    if (hdr_len + end > this.max_bytes) {
      this.too_large++;
      this.drop(d);
      return REASSEMBLY_PENDING;
    }
    // The last fragment fixes the end; every other fragment must stay inside it.
    const last_end = d.ranges.length === 0 ? 0 : d.ranges[d.ranges.length - 1];
    if (!more) {
      if (d.total >= 0 ? d.total !== end : last_end > end) return this.inconsistent(d);
      d.total = end;
    } else if (d.total >= 0 && end > d.total) {
      return this.inconsistent(d);
    }
    if (start === 0 && d.proto < 0) d.proto = proto;
    this.insert(d, buf, b, data_off, start, end);

    if (d.total >= 0 && d.ranges.length === 2 && d.ranges[0] === 0 && d.ranges[1] === d.total) {
      this.remove(key, d);
      this.reassembled++;
      this.out_buf = d.buf as Uint8Array;
      this.out_len = d.total;
      this.out_proto = d.proto;
      return REASSEMBLY_COMPLETE;
    }
    return REASSEMBLY_PENDING;
  }

  /**
   * Drops incomplete datagrams whose first fragment is more than the timeout older than
   * `now`, oldest first (the map keeps arrival order). Capture time that runs backwards
   * only delays expiry.
   */
  expire(now: number): void {
    for (const [key, d] of this.pending) {
      if (now - d.first_ts <= this.timeout_s) break;
      if (d.buf !== null) this.expired++;
      this.remove(key, d);
    }
  }

  /** Copies the parts of `[start, end)` not yet present (first data wins) and records the range. */
  private insert(d: Datagram, buf: Uint8Array, b: Uint8Array, data_off: number, start: number, end: number): void {
    if (end > buf.length) {
      // Grow: exact once the end is known, else double (bounded by max_bytes above).
      const cap = d.total >= 0 ? d.total : Math.max(end, Math.min(Math.max(MIN_CAPACITY, buf.length * 2), this.max_bytes));
      const grown = new Uint8Array(cap);
      grown.set(buf);
      d.buf = buf = grown;
    }
    const r = d.ranges;
    let cur = start;
    let copied = 0;
    for (let i = 0; i < r.length && cur < end; i += 2) {
      const rs = r[i];
      const re = r[i + 1];
      if (re <= cur) continue;
      if (rs >= end) break;
      if (rs > cur) {
        buf.set(b.subarray(data_off + cur - start, data_off + rs - start), cur);
        copied += rs - cur;
      }
      cur = re;
    }
    if (cur < end) {
      buf.set(b.subarray(data_off + cur - start, data_off + end - start), cur);
      copied += end - cur;
    }
    d.held += copied;
    this.bytes_pending += copied;

    // Merge [start, end) into the sorted range list, coalescing what it overlaps or touches.
    const merged: number[] = [];
    let ms = start;
    let me = end;
    let placed = false;
    for (let i = 0; i < r.length; i += 2) {
      const rs = r[i];
      const re = r[i + 1];
      if (re < ms) {
        merged.push(rs, re);
      } else if (rs > me) {
        if (!placed) {
          merged.push(ms, me);
          placed = true;
        }
        merged.push(rs, re);
      } else {
        if (rs < ms) ms = rs;
        if (re > me) me = re;
      }
    }
    if (!placed) merged.push(ms, me);
    d.ranges = merged;
  }

  private inconsistent(d: Datagram): number {
    this.drop(d);
    return Kind.FRAGMENT_INCONSISTENT;
  }

  /** Frees a datagram's data but keeps its entry, so its remaining fragments are swallowed until it expires. */
  private drop(d: Datagram): void {
    this.bytes_pending -= d.held;
    d.held = 0;
    d.buf = null;
    d.ranges = [];
  }

  private evictOldest(): void {
    for (const [key, d] of this.pending) {
      if (d.buf !== null) this.evicted++;
      this.remove(key, d);
      return;
    }
  }

  private remove(key: string, d: Datagram): void {
    this.bytes_pending -= d.held;
    d.held = 0;
    this.pending.delete(key);
    this.next_expiry = Infinity;
    for (const head of this.pending.values()) {
      this.next_expiry = head.first_ts + this.timeout_s;
      break;
    }
  }
}

/** Reassembly key of an IPv4 fragment: (source, destination, identification, protocol) — RFC 791 §3.2. */
export function ipv4FragmentKey(src: number, dst: number, id: number, proto: number): string {
  return `4/${src}/${dst}/${id}/${proto}`;
}

/**
 * Reassembly key of an IPv6 fragment: (source, destination, identification) — RFC 8200
 * §4.5. The protocol is not part of it: only the offset-0 fragment's Next Header counts.
 */
export function ipv6FragmentKey(s0: number, s1: number, s2: number, s3: number, d0: number, d1: number, d2: number, d3: number, id: number): string {
  return `6/${s0}/${s1}/${s2}/${s3}/${d0}/${d1}/${d2}/${d3}/${id}`;
}
