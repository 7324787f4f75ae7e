/**
 * Streaming reader for pcap and pcapng capture files.
 *
 * Our own: no npm pcap library is worth adopting. `pcap-parser` (0.2.1) is tiny and old,
 * one 151-line file last touched in 2012 that reads microsecond pcap only, with
 * `new Buffer` and an event object per packet; `pcap` is a native libpcap binding built
 * with node-gyp. Neither reads pcapng, nor streams without allocating per packet.
 *
 * Formats: pcap as in draft-ietf-opsawg-pcap, pcapng as in draft-ietf-opsawg-pcapng
 * (section numbers below are that draft's).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { CaptureError, type PacketSink } from './packet-source.ts';

/** Options for {@link readCaptureFile}. */
export interface ReadCaptureOptions {
  /** bytes read per chunk; default 4 MiB (larger chunks leave the L2 cache before they are parsed) */
  chunk_bytes?: number;
  /** called after each chunk with bytes consumed so far and the file size (for a progress line) */
  on_progress?: (bytes_read: number, file_bytes: number) => void;
  /** checked between chunks; when it returns true, reading stops early (SIGINT) */
  should_stop?: () => boolean;
}

/** What {@link readCaptureFile} found. */
export interface CaptureFileSummary {
  /** the file's format; 'pcap' also when the magic number was not recognised (see `error`) */
  format: 'pcap' | 'pcapng';
  /** packets delivered to the sink */
  packets: number;
  /** offset after the last complete record consumed */
  bytes_read: number;
  /** interface description blocks seen over all sections; 1 for pcap */
  interfaces: number;
  /** damage found: packets before it were delivered */
  error: CaptureError | null;
}

const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;
const MIN_CHUNK_BYTES = 64;
/** Records (pcap packet records, pcapng blocks) larger than this are treated as damage. */
const MAX_RECORD_BYTES = 256 * 1024 * 1024;
const NS_PER_S = 1_000_000_000;
const TWO_POW_32 = 4_294_967_296;

const PCAP_FILE_HEADER_BYTES = 24;
const PCAP_RECORD_HEADER_BYTES = 16;
/** Magic numbers as read big-endian from the first four bytes of the file. */
const PCAP_MICRO_BE = 0xa1b2c3d4;
const PCAP_MICRO_LE = 0xd4c3b2a1;
const PCAP_NANO_BE = 0xa1b23c4d;
const PCAP_NANO_LE = 0x4d3cb2a1;

const BLOCK_SHB = 0x0a0d0d0a;
const BLOCK_IDB = 0x00000001;
const BLOCK_PB = 0x00000002;
const BLOCK_SPB = 0x00000003;
const BLOCK_EPB = 0x00000006;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const BYTE_ORDER_MAGIC_SWAPPED = 0x4d3c2b1a;
const BLOCK_HEADER_BYTES = 12;
const OPT_ENDOFOPT = 0;
const OPT_IF_TSRESOL = 9;
const OPT_IF_TSOFFSET = 14;

/**
 * Reads a pcap or pcapng file and hands every packet to `sink`, in file order.
 *
 * Memory stays constant whatever the file size: one chunk buffer is reused (grown once
 * for a record larger than a chunk), and packets are passed as offsets into it, so the
 * sink must copy what it keeps (see {@link PacketSink}).
 *
 * Damage (a record cut short, impossible lengths, an unsupported pcapng version, an
 * unknown magic number) never rejects: reading stops there and the summary carries a
 * {@link CaptureError} whose offset is the start of the bad record; a read that fails
 * midway ends reading the same way. Only failing to open the file (ENOENT, EACCES...)
 * rejects, with a CaptureError at offset 0. Errors thrown by the sink propagate unchanged.
 */
export async function readCaptureFile(path: string, sink: PacketSink, options: ReadCaptureOptions = {}): Promise<CaptureFileSummary> {
  let handle: FileHandle;
  let file_bytes: number;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw ioError(path, 0, err);
  }
  try {
    try {
      const st = await handle.stat();
      // A pipe or FIFO (`tcpdump -w - | wiretime sensor -r -`) has no size and no offsets.
      file_bytes = st.isFile() ? st.size : Infinity;
    } catch (err) {
      throw ioError(path, 0, err);
    }
    const reader = new ChunkReader(path, handle, file_bytes, chunkBytes(options.chunk_bytes));
    try {
      return await readFormat(path, reader, sink, options);
    } finally {
      await reader.settle();
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
}

async function readFormat(path: string, reader: ChunkReader, sink: PacketSink, options: ReadCaptureOptions): Promise<CaptureFileSummary> {
  const summary: CaptureFileSummary = { format: 'pcap', packets: 0, bytes_read: 0, interfaces: 0, error: null };
  if (!(await reader.refill(4))) {
    const have = reader.end;
    summary.error = reader.read_error
      ?? new CaptureError(path, 0, have === 0 ? 'empty file' : `file too short for a capture header (${have} bytes)`);
    return summary;
  }
  const magic = reader.view.getUint32(0, false);
  let parser: RecordParser;
  if (magic === BLOCK_SHB) {
    summary.format = 'pcapng';
    parser = new PcapngParser(sink);
  } else if (magic === PCAP_MICRO_BE || magic === PCAP_MICRO_LE || magic === PCAP_NANO_BE || magic === PCAP_NANO_LE) {
    if (!(await reader.refill(PCAP_FILE_HEADER_BYTES))) {
      summary.error = reader.read_error ?? new CaptureError(path, 0, `truncated pcap file header (${reader.end} of ${PCAP_FILE_HEADER_BYTES} bytes)`);
      return summary;
    }
    const little_endian = magic === PCAP_MICRO_LE || magic === PCAP_NANO_LE;
    const nano = magic === PCAP_NANO_BE || magic === PCAP_NANO_LE;
    // pcap draft section 4: LinkType is the low 16 bits; the upper bits carry FCS information.
    const linktype = reader.view.getUint32(20, little_endian) & 0xffff;
    parser = new PcapParser(sink, little_endian, nano, linktype);
    reader.pos = PCAP_FILE_HEADER_BYTES;
  } else {
    summary.error = new CaptureError(path, 0, `unknown magic 0x${magic.toString(16).padStart(8, '0')} (not pcap or pcapng)`);
    return summary;
  }

  summary.error = await parseAll(path, reader, parser, options);
  summary.packets = parser.packets;
  summary.interfaces = parser.interfaces;
  summary.bytes_read = reader.offset();
  return summary;
}

/** Parses chunk after chunk until end of file, damage or a stop request. */
async function parseAll(path: string, reader: ChunkReader, parser: RecordParser, options: ReadCaptureOptions): Promise<CaptureError | null> {
  for (;;) {
    reader.pos = parser.parse(reader.buf, reader.view, reader.pos, reader.end);
    if (parser.damage !== null) return new CaptureError(path, reader.offset(), parser.damage);
    options.on_progress?.(reader.offset(), reader.file_bytes);
    if (options.should_stop?.()) return null;
    const need_bytes = parser.bytesNeeded(reader.view, reader.pos, reader.end);
    if (!(await reader.refill(need_bytes))) {
      if (reader.read_error !== null) return reader.read_error;
      const left_bytes = reader.bytesLeft();
      if (left_bytes === 0) return null;
      return new CaptureError(path, reader.offset(), parser.truncation(reader.view, reader.pos, left_bytes));
    }
  }
}

/** A format's record loop: parses whole records out of the chunk buffer. */
interface RecordParser {
  packets: number;
  interfaces: number;
  /** reason the record at the returned position is bad; null while the file is sound */
  damage: string | null;
  /**
   * Parses every whole record in `buf[pos, end)`; returns where the first incomplete
   * (or damaged, see `damage`) record starts.
   */
  parse(buf: Uint8Array, view: DataView, pos: number, end: number): number;
  /** Bytes from `pos` needed to complete the record there (its header when that is not all in). */
  bytesNeeded(view: DataView, pos: number, end: number): number;
  /** Why the `left_bytes` at `pos`, all that remains of the file, are not a record. */
  truncation(view: DataView, pos: number, left_bytes: number): string;
}

class PcapParser implements RecordParser {
  packets = 0;
  interfaces = 1;
  damage: string | null = null;
  private readonly sink: PacketSink;
  private readonly little_endian: boolean;
  private readonly ns_per_tick: number;
  private readonly linktype: number;

  constructor(sink: PacketSink, little_endian: boolean, nano: boolean, linktype: number) {
    this.sink = sink;
    this.little_endian = little_endian;
    this.ns_per_tick = nano ? 1 : 1000;
    this.linktype = linktype;
  }

  parse(buf: Uint8Array, view: DataView, pos: number, end: number): number {
    const le = this.little_endian === true; // a known boolean: the reads below then test no other type
    const ns_per_tick = this.ns_per_tick;
    const linktype = this.linktype;
    const sink = this.sink;
    let packets = 0;
    while (pos + PCAP_RECORD_HEADER_BYTES <= end) {
      const caplen = view.getUint32(pos + 8, le);
      const data = pos + PCAP_RECORD_HEADER_BYTES;
      if (data + caplen > end || caplen > MAX_RECORD_BYTES) {
        if (caplen > MAX_RECORD_BYTES) this.damage = `packet record claims ${caplen} captured bytes (limit ${MAX_RECORD_BYTES})`;
        break;
      }
      let ts_sec = view.getUint32(pos, le);
      let ts_nsec = view.getUint32(pos + 4, le) * ns_per_tick;
      if (ts_nsec >= NS_PER_S) {
        // An out-of-range sub-second field (tcpdump's timestamp_invalid_nano.pcap) is
        // carried into the seconds, reading it unsigned. Wireshark's own time arithmetic
        // agrees (frame.time_delta 1.000000001 s for 10^9 ns after x.999999999) until
        // the field reaches 2^31, where wiretap's signed 32-bit nsecs wraps negative.
        const carry_s = Math.floor(ts_nsec / NS_PER_S);
        ts_sec += carry_s;
        ts_nsec -= carry_s * NS_PER_S;
      }
      const wirelen = view.getUint32(pos + 12, le);
      // pcap draft section 5: a reader may raise an original length below the captured one.
      sink.onPacket(buf, data, caplen, wirelen < caplen ? caplen : wirelen, linktype, ts_sec, ts_nsec);
      packets++;
      pos = data + caplen;
    }
    this.packets += packets;
    return pos;
  }

  bytesNeeded(view: DataView, pos: number, end: number): number {
    if (end - pos < PCAP_RECORD_HEADER_BYTES) return PCAP_RECORD_HEADER_BYTES;
    return PCAP_RECORD_HEADER_BYTES + view.getUint32(pos + 8, this.little_endian);
  }

  truncation(view: DataView, pos: number, left_bytes: number): string {
    if (left_bytes < PCAP_RECORD_HEADER_BYTES) return `truncated packet record header (${left_bytes} of ${PCAP_RECORD_HEADER_BYTES} bytes)`;
    const caplen = view.getUint32(pos + 8, this.little_endian);
    return `truncated packet record: ${caplen} captured bytes, ${left_bytes - PCAP_RECORD_HEADER_BYTES} left in file`;
  }
}

/** How an interface's timestamp unit count becomes seconds and nanoseconds. */
const UNIT_DECIMAL = 0; // 10^-k s with k <= 9: one long division
const UNIT_DECIMAL_FINE = 1; // 10^-k s with k > 9: divide down to nanoseconds first
const UNIT_BINARY = 2; // 2^-k s

class PcapngParser implements RecordParser {
  packets = 0;
  interfaces = 0;
  damage: string | null = null;
  private readonly sink: PacketSink;
  private little_endian = true;

  // Interfaces of the current section, indexed by interface id (draft section 4.2).
  private if_count = 0;
  private readonly if_linktype: number[] = [];
  private readonly if_snaplen: number[] = [];
  private readonly if_unit_kind: number[] = [];
  /** UNIT_DECIMAL: units per second; UNIT_DECIMAL_FINE, UNIT_BINARY: k of 10^-k or 2^-k */
  private readonly if_unit_param: number[] = [];
  /** UNIT_DECIMAL: nanoseconds per unit */
  private readonly if_ns_per_unit: number[] = [];
  private readonly if_offset_s: number[] = [];
  /** last timestamp on interface 0, for Simple Packet Blocks (which carry none) */
  private if0_last_sec = 0;
  private if0_last_nsec = 0;

  // Output of toTime and divide64: fields, not return objects, so nothing is allocated per packet.
  private ts_sec = 0;
  private ts_nsec = 0;
  private quotient_hi = 0;
  private quotient_lo = 0;
  private readonly limbs = new Float64Array(8);

  constructor(sink: PacketSink) {
    this.sink = sink;
  }

  parse(buf: Uint8Array, view: DataView, pos: number, end: number): number {
    while (pos + BLOCK_HEADER_BYTES <= end) {
      const type = view.getUint32(pos, this.little_endian);
      if (type === BLOCK_SHB) {
        // Section 4.1: the SHB type is a palindrome; its byte order comes from the magic.
        const magic = view.getUint32(pos + 8, true);
        if (magic === BYTE_ORDER_MAGIC) this.little_endian = true;
        else if (magic === BYTE_ORDER_MAGIC_SWAPPED) this.little_endian = false;
        else {
          this.damage = `section header block has byte-order magic 0x${magic.toString(16).padStart(8, '0')}`;
          break;
        }
      }
      const le = this.little_endian === true;
      const block_bytes = view.getUint32(pos + 4, le);
      if (block_bytes < BLOCK_HEADER_BYTES || block_bytes % 4 !== 0 || block_bytes > MAX_RECORD_BYTES) {
        this.damage = block_bytes > MAX_RECORD_BYTES
          ? `block length ${block_bytes} over the ${MAX_RECORD_BYTES}-byte limit`
          : `block length ${block_bytes} is not a multiple of 4 of at least 12 (section 3.1)`;
        break;
      }
      if (pos + block_bytes > end) break;
      const trailer_bytes = view.getUint32(pos + block_bytes - 4, le);
      if (trailer_bytes !== block_bytes) {
        this.damage = `block length ${block_bytes} but trailing length ${trailer_bytes}`;
        break;
      }
      if (type === BLOCK_EPB) {
        if (!this.enhancedPacket(buf, view, pos, block_bytes, le)) break;
      } else if (type === BLOCK_SPB) {
        if (!this.simplePacket(buf, view, pos, block_bytes, le)) break;
      } else if (type === BLOCK_IDB) {
        if (!this.interfaceDescription(view, pos, block_bytes, le)) break;
      } else if (type === BLOCK_SHB) {
        if (!this.sectionHeader(view, pos, block_bytes, le)) break;
      } else if (type === BLOCK_PB) {
        if (!this.obsoletePacket(buf, view, pos, block_bytes, le)) break;
      }
      // Other blocks (NRB, ISB, DSB, custom, local-use) carry no packets: skipped.
      pos += block_bytes;
    }
    return pos;
  }

  bytesNeeded(view: DataView, pos: number, end: number): number {
    if (end - pos < BLOCK_HEADER_BYTES) return BLOCK_HEADER_BYTES;
    // parse() validated the header (and an SHB's byte order) before stopping here.
    return view.getUint32(pos + 4, this.little_endian);
  }

  truncation(view: DataView, pos: number, left_bytes: number): string {
    if (left_bytes < BLOCK_HEADER_BYTES) return `truncated block header (${left_bytes} of ${BLOCK_HEADER_BYTES} bytes)`;
    return `truncated block: length ${view.getUint32(pos + 4, this.little_endian)}, ${left_bytes} bytes left in file`;
  }

  /** Section 4.1. */
  private sectionHeader(view: DataView, pos: number, block_bytes: number, le: boolean): boolean {
    if (block_bytes < 28) return this.fail(`section header block of ${block_bytes} bytes (minimum 28)`);
    const major = view.getUint16(pos + 12, le);
    const minor = view.getUint16(pos + 14, le);
    // Section 3.4 says to skip a section of another version; like Wireshark ("unknown SHB
    // version") and gopacket (ErrNgVersionMismatch) we stop instead.
    if (major !== 1) return this.fail(`unsupported pcapng version ${major}.${minor} (only 1.x is read)`);
    this.if_count = 0;
    return true;
  }

  /** Section 4.2. */
  private interfaceDescription(view: DataView, pos: number, block_bytes: number, le: boolean): boolean {
    if (block_bytes < 20) return this.fail(`interface description block of ${block_bytes} bytes (minimum 20)`);
    let tsresol = 6;
    let offset_s = 0;
    const options_end = pos + block_bytes - 4;
    let opt = pos + 16;
    while (opt + 4 <= options_end) {
      const code = view.getUint16(opt, le);
      const length = view.getUint16(opt + 2, le);
      if (code === OPT_ENDOFOPT) break;
      const value = opt + 4;
      if (value + length > options_end) return this.fail(`interface option ${code} of ${length} bytes overruns its block`);
      if (code === OPT_IF_TSRESOL) {
        if (length !== 1) return this.fail(`if_tsresol of ${length} bytes (must be 1)`);
        tsresol = view.getUint8(value);
      } else if (code === OPT_IF_TSOFFSET) {
        if (length !== 8) return this.fail(`if_tsoffset of ${length} bytes (must be 8)`);
        offset_s = le
          ? view.getInt32(value + 4, true) * TWO_POW_32 + view.getUint32(value, true)
          : view.getInt32(value, false) * TWO_POW_32 + view.getUint32(value + 4, false);
      }
      opt = value + ((length + 3) & ~3);
    }
    const id = this.if_count++;
    this.interfaces++;
    this.if_linktype[id] = view.getUint16(pos + 8, le);
    this.if_snaplen[id] = view.getUint32(pos + 12, le);
    this.if_offset_s[id] = offset_s;
    // if_tsresol: MSB clear = 10^-k s, MSB set = 2^-k s; absent = 10^-6.
    const k = tsresol & 0x7f;
    const binary = (tsresol & 0x80) !== 0;
    this.if_unit_kind[id] = binary ? UNIT_BINARY : k <= 9 ? UNIT_DECIMAL : UNIT_DECIMAL_FINE;
    this.if_unit_param[id] = !binary && k <= 9 ? 10 ** k : k;
    this.if_ns_per_unit[id] = !binary && k <= 9 ? 10 ** (9 - k) : 0;
    if (id === 0) {
      this.if0_last_sec = 0;
      this.if0_last_nsec = 0;
    }
    return true;
  }

  /** Section 4.3. */
  private enhancedPacket(buf: Uint8Array, view: DataView, pos: number, block_bytes: number, le: boolean): boolean {
    return this.timedPacket(buf, view, pos, block_bytes, le, view.getUint32(pos + 8, le), 'enhanced packet block');
  }

  /** Appendix A: the obsolete Packet Block, an EPB with a 16-bit interface id and a drops count. */
  private obsoletePacket(buf: Uint8Array, view: DataView, pos: number, block_bytes: number, le: boolean): boolean {
    return this.timedPacket(buf, view, pos, block_bytes, le, view.getUint16(pos + 8, le), 'packet block');
  }

  /** The layout EPB and the obsolete PB share after the interface id: timestamp, captured and original length, data. */
  private timedPacket(buf: Uint8Array, view: DataView, pos: number, block_bytes: number, le: boolean, id: number, what: string): boolean {
    if (block_bytes < 32) return this.fail(`${what} of ${block_bytes} bytes (minimum 32)`);
    if (id >= this.if_count) return this.fail(`packet on interface ${id}, but the section defines ${this.if_count}`);
    const caplen = view.getUint32(pos + 20, le);
    if (caplen > block_bytes - 32) return this.fail(`captured length ${caplen} exceeds the block's ${block_bytes - 32} bytes of room`);
    this.toTime(id, view.getUint32(pos + 12, le), view.getUint32(pos + 16, le));
    this.deliver(buf, pos + 28, caplen, view.getUint32(pos + 24, le), id);
    return true;
  }

  /** Section 4.4: no timestamp, no interface id (always interface 0), no captured length. */
  private simplePacket(buf: Uint8Array, view: DataView, pos: number, block_bytes: number, le: boolean): boolean {
    if (block_bytes < 16) return this.fail(`simple packet block of ${block_bytes} bytes (minimum 16)`);
    if (this.if_count === 0) return this.fail('simple packet block before any interface description block');
    const wirelen = view.getUint32(pos + 8, le);
    const snaplen = this.if_snaplen[0];
    let caplen = Math.min(wirelen, block_bytes - 16);
    if (snaplen !== 0 && snaplen < caplen) caplen = snaplen; // snaplen 0 = no limit
    this.ts_sec = this.if0_last_sec;
    this.ts_nsec = this.if0_last_nsec;
    this.deliver(buf, pos + 12, caplen, wirelen, 0);
    return true;
  }

  private deliver(buf: Uint8Array, data: number, caplen: number, wirelen: number, id: number): void {
    if (id === 0) {
      this.if0_last_sec = this.ts_sec;
      this.if0_last_nsec = this.ts_nsec;
    }
    // Section 4.3: a reader may raise an original length below the captured one.
    this.sink.onPacket(buf, data, caplen, wirelen < caplen ? caplen : wirelen, this.if_linktype[id], this.ts_sec, this.ts_nsec);
    this.packets++;
  }

  private fail(reason: string): boolean {
    this.damage = reason;
    return false;
  }

  /**
   * Converts a 64-bit count of interface `id`'s time units, given as 32-bit halves, into
   * `ts_sec`/`ts_nsec`, exactly (section 4.3: the count plus if_tsoffset seconds is the
   * time since the epoch). Sub-nanosecond units are floored.
   */
  private toTime(id: number, hi: number, lo: number): void {
    const kind = this.if_unit_kind[id];
    if (kind === UNIT_DECIMAL) {
      const remainder = this.divide64(hi, lo, this.if_unit_param[id]);
      this.ts_sec = this.quotient_hi * TWO_POW_32 + this.quotient_lo + this.if_offset_s[id];
      this.ts_nsec = remainder * this.if_ns_per_unit[id];
    } else if (kind === UNIT_DECIMAL_FINE) {
      // Down to whole nanoseconds in steps of at most 10^9, then split off the seconds.
      for (let k = this.if_unit_param[id] - 9; k > 0 && (hi !== 0 || lo !== 0); k -= 9) {
        this.divide64(hi, lo, 10 ** Math.min(k, 9));
        hi = this.quotient_hi;
        lo = this.quotient_lo;
      }
      this.ts_nsec = this.divide64(hi, lo, NS_PER_S);
      this.ts_sec = this.quotient_hi * TWO_POW_32 + this.quotient_lo + this.if_offset_s[id];
    } else {
      const k = this.if_unit_param[id];
      let sec: number;
      let frac_hi: number;
      let frac_lo: number;
      if (k >= 64) {
        sec = 0;
        frac_hi = hi;
        frac_lo = lo;
      } else if (k >= 32) {
        sec = Math.floor(hi / 2 ** (k - 32));
        frac_hi = k === 32 ? 0 : hi & (0xffffffff >>> (64 - k));
        frac_lo = lo;
      } else {
        sec = hi * 2 ** (32 - k) + (k === 0 ? lo : lo >>> k);
        frac_hi = 0;
        frac_lo = k === 0 ? 0 : lo & (0xffffffff >>> (32 - k));
      }
      this.ts_sec = sec + this.if_offset_s[id];
      this.ts_nsec = this.binaryFractionToNs(frac_hi, frac_lo, k);
    }
  }

  /**
   * Long division of the 64-bit (hi, lo) by `divisor` (at most 2^37) in base 2^16, so every
   * intermediate stays an exact double. Quotient in quotient_hi/lo; returns the remainder.
   */
  private divide64(hi: number, lo: number, divisor: number): number {
    let r = hi >>> 16;
    const q3 = Math.floor(r / divisor);
    r = (r - q3 * divisor) * 65536 + (hi & 0xffff);
    const q2 = Math.floor(r / divisor);
    r = (r - q2 * divisor) * 65536 + (lo >>> 16);
    const q1 = Math.floor(r / divisor);
    r = (r - q1 * divisor) * 65536 + (lo & 0xffff);
    const q0 = Math.floor(r / divisor);
    this.quotient_hi = q3 * 65536 + q2;
    this.quotient_lo = q1 * 65536 + q0;
    return r - q0 * divisor;
  }

  /** floor(frac * 10^9 / 2^k) for a 64-bit frac < 2^k, via 16-bit limbs of frac * 10^9. */
  private binaryFractionToNs(frac_hi: number, frac_lo: number, k: number): number {
    const limbs = this.limbs;
    let p = (frac_lo & 0xffff) * NS_PER_S;
    limbs[0] = p % 65536;
    p = (frac_lo >>> 16) * NS_PER_S + Math.floor(p / 65536);
    limbs[1] = p % 65536;
    p = (frac_hi & 0xffff) * NS_PER_S + Math.floor(p / 65536);
    limbs[2] = p % 65536;
    p = (frac_hi >>> 16) * NS_PER_S + Math.floor(p / 65536);
    limbs[3] = p % 65536;
    p = Math.floor(p / 65536);
    limbs[4] = p % 65536;
    limbs[5] = Math.floor(p / 65536);
    const first = k >> 4;
    if (first >= 6) return 0;
    const shift = k & 15;
    let ns = Math.floor(limbs[first] / 2 ** shift);
    for (let i = first + 1; i < 6; i++) ns += limbs[i] * 2 ** (16 * (i - first) - shift);
    return ns;
  }
}

/** The one chunk buffer over the file: `buf[pos, end)` is read but not yet parsed. */
class ChunkReader {
  buf: Uint8Array;
  view: DataView;
  pos = 0;
  end = 0;
  readonly file_bytes: number;
  /** a read that failed after the file was opened: ends reading like damage does */
  read_error: CaptureError | null = null;
  /** file offset of buf[0] */
  private base = 0;
  private eof = false;
  private readonly path: string;
  private readonly handle: FileHandle;

  constructor(path: string, handle: FileHandle, file_bytes: number, chunk_bytes: number) {
    this.path = path;
    this.handle = handle;
    this.file_bytes = file_bytes;
    // A file smaller than a chunk gets a buffer of its size (+1 to see the end in one read).
    this.buf = new Uint8Array(Math.max(MIN_CHUNK_BYTES, Math.min(chunk_bytes, file_bytes + 1)));
    this.view = new DataView(this.buf.buffer);
  }

  /** Where to read: the offset in a regular file; null (the current position) in a pipe. */
  private position(offset: number): number | null {
    return this.file_bytes === Infinity ? null : offset;
  }

  /** File offset of `pos`: everything before it is consumed. */
  offset(): number {
    return this.base + this.pos;
  }

  /** Bytes of the file from `pos` on, once refill has failed. */
  bytesLeft(): number {
    return this.eof ? this.end - this.pos : Math.max(this.file_bytes - this.offset(), this.end - this.pos);
  }

  /**
   * Makes `need_bytes` bytes available at `pos`: moves the unparsed tail to the start of
   * the buffer (growing it, once, for a record larger than a chunk) and reads to fill it.
   * False when the file ends first (or a read fails: see `read_error`).
   */
  async refill(need_bytes: number): Promise<boolean> {
    if (this.end - this.pos >= need_bytes) return true;
    if (this.pending !== null && (await this.takePrefetched(need_bytes))) {
      this.prefetch();
      return true;
    }
    await this.settle();
    if (this.pos > 0) {
      this.buf.copyWithin(0, this.pos, this.end);
      this.base += this.pos;
      this.end -= this.pos;
      this.pos = 0;
    }
    if (need_bytes > this.buf.length) {
      // A record longer than the rest of the file is cut short: allocate nothing for it.
      if (this.base + need_bytes > this.file_bytes) return false;
      const grown = new Uint8Array(Math.min(Math.max(need_bytes, 2 * this.buf.length), MAX_RECORD_BYTES + PCAP_RECORD_HEADER_BYTES));
      grown.set(this.buf.subarray(0, this.end));
      this.buf = grown;
      this.view = new DataView(grown.buffer);
    }
    while (this.end < need_bytes && !this.eof) {
      try {
        const { bytesRead } = await this.handle.read(this.buf, this.end, this.buf.length - this.end, this.position(this.base + this.end));
        if (bytesRead === 0) this.eof = true;
        this.end += bytesRead;
      } catch (err) {
        this.read_error = ioError(this.path, this.offset(), err);
        return false;
      }
    }
    if (this.end >= need_bytes) this.prefetch();
    return this.end >= need_bytes;
  }

  /** Waits for a read ahead still in flight (before the file is closed or the buffers reused). */
  async settle(): Promise<void> {
    if (this.pending === null) return;
    const pending = this.pending;
    this.pending = null;
    // The bytes read ahead (or its error) are dropped; the slow path reads them again.
    await pending;
  }

  // ---- read-ahead: the next chunk is read on libuv's thread pool while this one is parsed

  /** bytes kept free at the start of the spare buffer for the unparsed tail of the current one */
  private static readonly TAIL_ROOM = 256 * 1024;
  private spare: Uint8Array | null = null;
  private pending: Promise<number | CaptureError> | null = null;
  /** file offset the read-ahead started at */
  private pending_offset = 0;

  private prefetch(): void {
    // Not on a pipe: there the writer sets the pace, and a read left pending there could
    // only end with more data, so stopping (SIGINT) would wait for the writer.
    if (this.eof || this.pending !== null || this.file_bytes === Infinity) return;
    const offset = this.base + this.end;
    if (offset >= this.file_bytes) return;
    const room = ChunkReader.TAIL_ROOM;
    if (this.spare === null || this.spare.length !== this.buf.length) {
      if (this.buf.length <= room * 2) return; // small buffers: not worth it
      this.spare = new Uint8Array(this.buf.length);
    }
    const spare = this.spare;
    this.pending_offset = offset;
    this.pending = this.handle.read(spare, room, spare.length - room, this.position(offset)).then(
      (r) => r.bytesRead,
      (err: unknown) => ioError(this.path, offset, err),
    );
  }

  /**
   * Swaps in the buffer read ahead, with the current tail moved in front of it.
   * False (nothing changed but the read-ahead consumed) when that cannot give `need_bytes`.
   */
  private async takePrefetched(need_bytes: number): Promise<boolean> {
    const room = ChunkReader.TAIL_ROOM;
    const tail = this.end - this.pos;
    const result = await this.pending!;
    this.pending = null;
    if (result instanceof CaptureError) {
      this.read_error = result;
      return false;
    }
    const spare = this.spare!;
    if (tail > room || this.pending_offset !== this.base + this.end || need_bytes > tail + result) {
      // Cannot use it as it is: give the slow path a clean start at the same place.
      return false;
    }
    spare.set(this.buf.subarray(this.pos, this.end), room - tail);
    const old = this.buf;
    this.base += this.pos - (room - tail);
    this.buf = spare;
    this.view = new DataView(spare.buffer);
    this.spare = old;
    this.pos = room - tail;
    this.end = room + result;
    if (result === 0) this.eof = true;
    return this.end - this.pos >= need_bytes;
  }
}

function chunkBytes(requested: number | undefined): number {
  if (requested === undefined || !Number.isFinite(requested)) return DEFAULT_CHUNK_BYTES;
  return Math.min(Math.max(Math.floor(requested), MIN_CHUNK_BYTES), MAX_RECORD_BYTES);
}

function ioError(path: string, offset: number, err: unknown): CaptureError {
  const error = new CaptureError(path, offset, err instanceof Error ? err.message : String(err));
  error.cause = err;
  return error;
}
