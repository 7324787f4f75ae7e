// PostgreSQL's binary COPY format (https://www.postgresql.org/docs/current/sql-copy.html,
// "Binary Format"), for the few column types the fact tables use. Written here rather than
// taken from a package: pg-copy-streams moves the bytes but does not encode tuples, and the
// one encoder package (pg-copy-streams-binary) is a stream-of-objects API, unmaintained since
// 2021, that allocates per field; this is ~100 lines over one growing buffer.
//
// Binary rather than text COPY because a sketch (bytea, ~1–2 KB) would be hex-encoded in text
// COPY — twice the bytes on the wire and a hex parse per byte on the server.

/** The 11-byte signature that starts a binary COPY payload; then 32-bit flags and header extension length (0, 0). */
export const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
/** 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch, in Unix seconds */
export const PG_EPOCH_S = 946_684_800n;

/** Builds one COPY … FROM STDIN WITH (FORMAT binary) payload, tuple by tuple. */
export class CopyBinaryWriter {
  private buf: Buffer;
  private pos = 0;
  private fields_left = 0;

  constructor(initial_bytes = 1 << 16) {
    this.buf = Buffer.allocUnsafe(Math.max(initial_bytes, 64));
    this.raw(SIGNATURE);
    this.int32(0); // flags: no OIDs
    this.int32(0); // header extension length
  }

  /** Starts a tuple of `fields` fields; exactly that many field calls must follow. */
  tuple(fields: number): this {
    if (this.fields_left !== 0) throw new Error(`CopyBinaryWriter: previous tuple is ${this.fields_left} fields short`);
    this.ensure(2);
    this.buf.writeInt16BE(fields, this.pos);
    this.pos += 2;
    this.fields_left = fields;
    return this;
  }

  null(): this {
    this.field(-1);
    return this;
  }

  int8(v: bigint): this {
    this.field(8);
    this.buf.writeBigInt64BE(v, this.pos);
    this.pos += 8;
    return this;
  }

  int4(v: number): this {
    this.field(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  bool(v: boolean): this {
    this.field(1);
    this.buf[this.pos++] = v ? 1 : 0;
    return this;
  }

  /** timestamptz from whole Unix seconds: microseconds since 2000-01-01 UTC */
  timestamptzSeconds(unix_s: bigint): this {
    this.field(8);
    this.buf.writeBigInt64BE((unix_s - PG_EPOCH_S) * 1_000_000n, this.pos);
    this.pos += 8;
    return this;
  }

  text(v: string): this {
    const n = Buffer.byteLength(v, 'utf8');
    this.field(n);
    this.pos += this.buf.write(v, this.pos, n, 'utf8');
    return this;
  }

  /** jsonb's binary form: a version byte (1), then the JSON text */
  jsonb(json: string): this {
    const n = Buffer.byteLength(json, 'utf8');
    this.field(n + 1);
    this.buf[this.pos++] = 1;
    this.pos += this.buf.write(json, this.pos, n, 'utf8');
    return this;
  }

  bytea(v: Uint8Array): this {
    this.field(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
    return this;
  }

  /** The payload with its trailer. The writer must not be used afterwards. */
  finish(): Buffer {
    if (this.fields_left !== 0) throw new Error(`CopyBinaryWriter: last tuple is ${this.fields_left} fields short`);
    this.ensure(2);
    this.buf.writeInt16BE(-1, this.pos);
    this.pos += 2;
    return this.buf.subarray(0, this.pos);
  }

  /** A field header (length, or -1 for NULL) with room for its `len` bytes after it. */
  private field(len: number): void {
    if (this.fields_left-- <= 0) throw new Error('CopyBinaryWriter: more fields than the tuple announced');
    this.ensure(4 + Math.max(len, 0));
    this.buf.writeInt32BE(len, this.pos);
    this.pos += 4;
  }

  private int32(v: number): void {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
  }

  private raw(b: Buffer): void {
    this.ensure(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
}

/**
 * jsonb's own order of object keys (PostgreSQL's lengthCompareJsonbString: shorter first, then
 * bytewise; for the ASCII names validation admits, string order is byte order). The jsonb texts
 * are written with their keys in this order because PostgreSQL sorts the keys of every object it
 * parses and finds a sorted one at once: SELECT text::jsonb of an ingest-bench metrics text
 * (29 metrics) took ~40 µs a row with the keys in metric order and ~29 µs sorted. The stored
 * jsonb is the same either way.
 */
export function jsonbKeyOrder(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}
