import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { IngestRequestSchema, type IngestRequest } from '@wiretime/proto/gen/wiretime/v1/ingest_pb.ts';
import type { SensorStats, Summary } from '@wiretime/proto/gen/wiretime/v1/summary_pb.ts';
import { encodeIngestRecord } from './ingest-record.ts';

/**
 * The sensor's durable spool of batches the collector has not acknowledged yet.
 *
 * On disk, in `dir`:
 * - `seg-<first sequence, 20 digits>.wts`: segment files, each a run of records
 *   `[u32 LE payload length][u32 LE CRC-32 of the payload][IngestRequest bytes]`, the
 *   sequences increasing by one. A segment is closed for writing once it would pass
 *   `segment_bytes` (a record larger than that gets a segment to itself).
 * - `acked`: the last acknowledged sequence in decimal, replaced atomically (write a temp
 *   file, fsync, rename, fsync the directory). Segments whose records are all acknowledged
 *   are deleted.
 * - `stream`: a random id written once when the spool is created. The collector keys a
 *   batch by (sensor, stream, sequence), so a spool that is lost and created again (its
 *   sequences start at 1 once more) is a new stream, and its batches are not mistaken for
 *   copies of the old spool's.
 *
 * The last sequence survives restarts: it is the larger of `acked` and the newest record.
 * A record cut short (power loss mid-write) or whose CRC does not match ends its segment:
 * it and anything after it in that file are dropped (`torn_records`), the file is
 * truncated back to its last good record, and the spool opens normally.
 *
 * The IngestRequests are stored without sensor_id: the shipper fills in its own.
 */
export interface SpoolOptions {
  dir: string;
  /** the most the segment files may hold together; default 1 GiB */
  max_bytes: number;
  /** a segment file is closed once it would pass this; default 16 MiB */
  segment_bytes: number;
  /**
   * Told once per episode when an append is refused because the spool is full (it
   * resets when an append succeeds again). By default a warning on stderr.
   */
  on_full?: (bytes: number) => void;
}

export const DEFAULT_SPOOL_OPTIONS = { max_bytes: 1024 ** 3, segment_bytes: 16 * 1024 ** 2 } as const;

export interface SpoolStats {
  /** batches with a sequence above the acknowledged one */
  depth_batches: number;
  /** bytes of the segment files on disk (a partly acknowledged segment counts whole) */
  depth_bytes: number;
  last_sequence: bigint;
  acked_sequence: bigint;
  /** appends refused because the spool was full */
  refused_batches: number;
  /** batches the collector refused as invalid, set aside under <dir>/rejected */
  rejected_batches: number;
  /** damaged records (torn tail after a crash, CRC mismatch) dropped when opening */
  torn_records: number;
}

const HEADER = 8;
/** the largest append scratch buffer kept between appends */
const MAX_SCRATCH_BYTES = 64 * 1024 ** 2;
const ACKED = 'acked';
const STREAM = 'stream';
/** What a stream id may hold (IngestRequest.stream_id). */
export const STREAM_ID = /^[0-9A-Za-z_-]{1,64}$/;
const SEGMENT = /^seg-(\d{20})\.wts$/;

interface Segment {
  path: string;
  first: bigint;
  last: bigint;
  records: number;
  bytes: number;
  /** file offset of record i (sequence first + i), so that reading resumes without rereading */
  offsets: number[];
}

export class Spool {
  private readonly options: SpoolOptions;
  private segments: Segment[];
  /** the open file of the newest segment, while it takes appends */
  private active: FileHandle | null = null;
  private last: bigint;
  private acked: bigint;
  private refused = 0;
  private rejected = 0;
  private torn: number;
  private full_episode = false;
  private closed = false;
  /** appends, acknowledgements and close run one at a time */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly listeners = new Set<() => void>();
  /** where appends encode their record (reused: appends run one at a time, each written before the next) */
  private scratch: Buffer = Buffer.alloc(0);

  /** this spool's stream id (see `stream` above) */
  readonly stream_id: string;

  private constructor(options: SpoolOptions, stream_id: string, segments: Segment[], acked: bigint, torn: number) {
    this.options = options;
    this.stream_id = stream_id;
    this.segments = segments;
    this.acked = acked;
    this.torn = torn;
    const newest = segments.at(-1);
    this.last = newest !== undefined && newest.last > acked ? newest.last : acked;
  }

  /**
   * The collector refused batch `sequence` for good (INVALID_ARGUMENT): it is copied to
   * `<dir>/rejected/<sequence>.batch` with the reason beside it, for an operator to look at,
   * and acknowledged so that the batches after it can go. Only the oldest unacknowledged
   * batch can be set aside; returns false for any other.
   */
  async reject(sequence: bigint, reason: string): Promise<boolean> {
    if (sequence !== this.acked + 1n || sequence > this.last) return false;
    for await (const batch of this.pending(this.acked)) {
      if (batch.sequence !== sequence) return false;
      const dir = join(this.options.dir, 'rejected');
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, `${sequence}.batch`), toBinary(IngestRequestSchema, batch));
      await writeFile(join(dir, `${sequence}.reason`), reason + '\n');
      break;
    }
    this.rejected++;
    await this.acknowledge(sequence);
    return true;
  }

  /** Opens (creating if need be) the spool in `options.dir` and recovers what it holds. */
  static async open(options: Partial<SpoolOptions> & { dir: string }): Promise<Spool> {
    const o: SpoolOptions = { ...DEFAULT_SPOOL_OPTIONS, ...options };
    if (!(o.segment_bytes > 0) || !(o.max_bytes > 0)) throw new Error('Spool: max_bytes and segment_bytes must be positive');
    await mkdir(o.dir, { recursive: true });
    await rm(join(o.dir, `${ACKED}.tmp`), { force: true });
    await rm(join(o.dir, `${STREAM}.tmp`), { force: true });
    const stream_id = await readOrCreateStream(o.dir);
    const acked = await readAcked(o.dir);
    const names = (await readdir(o.dir)).filter((n) => SEGMENT.test(n)).sort();
    const segments: Segment[] = [];
    let torn = 0;
    let changed = false;
    let previous = 0n;
    for (const name of names) {
      const path = join(o.dir, name);
      const scan = await scanSegment(path, previous);
      if (scan.damaged) torn++;
      if (scan.records === 0 || scan.last <= acked) {
        await unlink(path);
        changed = true;
        if (scan.records > 0) previous = scan.last;
        continue;
      }
      if (scan.damaged) {
        const fh = await open(path, 'r+');
        try {
          await fh.truncate(scan.valid_bytes);
          await fh.sync();
        } finally {
          await fh.close();
        }
      }
      segments.push({ path, first: scan.first, last: scan.last, records: scan.records, bytes: scan.valid_bytes, offsets: scan.offsets });
      previous = scan.last;
    }
    if (changed) await syncDir(o.dir);
    return new Spool(o, stream_id, segments, acked, torn);
  }

  /**
   * Stores a batch under the next sequence and resolves once it is on disk (fsync), or
   * resolves null when it would take the spool past `max_bytes` (refused and counted).
   */
  append(summaries: Summary[], stats?: SensorStats): Promise<bigint | null> {
    return this.serialize(async () => {
      this.assertOpen();
      const sequence = this.last + 1n;
      const record = encodeIngestRecord(sequence, summaries, stats, HEADER, this.scratch) ??
        withHeader(toBinary(IngestRequestSchema, create(IngestRequestSchema, { sequence, summaries, stats })));
      // the next append encodes into the same memory (this one is written before that starts)
      if (record.length > this.scratch.length && record.length <= MAX_SCRATCH_BYTES) this.scratch = record;
      const payload = record.subarray(HEADER);
      record.writeUInt32LE(payload.length, 0);
      record.writeUInt32LE(crc32(payload), 4);
      const held = this.diskBytes();
      if (held + record.length > this.options.max_bytes) {
        this.refused++;
        if (!this.full_episode) {
          this.full_episode = true;
          (this.options.on_full ?? ((bytes: number) => warnFull(this.options, bytes)))(held);
        }
        return null;
      }
      let segment = this.segments.at(-1);
      if (segment !== undefined && segment.records > 0 && segment.bytes + record.length > this.options.segment_bytes) {
        await this.closeActive();
        segment = undefined;
      }
      if (segment === undefined) {
        segment = { path: join(this.options.dir, `seg-${sequence.toString().padStart(20, '0')}.wts`), first: sequence, last: sequence - 1n, records: 0, bytes: 0, offsets: [] };
        this.active = await open(segment.path, 'a');
        await syncDir(this.options.dir);
        this.segments.push(segment);
      } else if (this.active === null) {
        this.active = await open(segment.path, 'a');
      }
      try {
        await writeAll(this.active, record);
        await this.active.datasync();
      } catch (err) {
        // leave no half record behind: cut the file back to its last good record
        await this.active.truncate(segment.bytes).catch(() => undefined);
        throw err;
      }
      segment.last = sequence;
      segment.offsets.push(segment.bytes);
      segment.records++;
      segment.bytes += record.length;
      this.last = sequence;
      this.full_episode = false;
      for (const l of this.listeners) l();
      return sequence;
    });
  }

  /**
   * The stored batches with a sequence above `after`, in order, read from disk one at a
   * time. Batches appended while iterating may or may not be included.
   */
  async *pending(after: bigint): AsyncGenerator<IngestRequest> {
    for await (const r of this.pendingRecords(after)) yield fromBinary(IngestRequestSchema, r.payload);
  }

  /**
   * `pending` without decoding: each batch's sequence and its IngestRequest bytes as stored
   * (without sensor_id and stream_id), for sending as they are; with `suffix` (the shipper's
   * encoded sensor_id and stream_id) appended in the same buffer, so that it is not copied
   * again to be sent.
   */
  async *pendingRecords(after: bigint, suffix: Uint8Array = NO_SUFFIX): AsyncGenerator<{ sequence: bigint; payload: Uint8Array }> {
    this.assertOpen();
    const limit = this.last;
    const segments = this.segments.filter((s) => s.last > after && s.records > 0).map((s) => ({ ...s }));
    for (const s of segments) {
      let fh: FileHandle;
      try {
        fh = await open(s.path, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // acknowledged and deleted meanwhile
        throw err;
      }
      try {
        // start at the first record past `after` (its sequences are consecutive within the segment)
        const skip = after >= s.first ? Number(after - s.first + 1n) : 0;
        const start = skip < s.offsets.length ? s.offsets[skip]! : s.bytes;
        for await (const r of readRecords(fh, s.bytes, start, suffix)) {
          if (r === null) throw new Error(`Spool: damaged record in ${s.path}`);
          if (r.sequence <= after) continue;
          if (r.sequence > limit) return;
          yield { sequence: r.sequence, payload: r.payload };
        }
      } finally {
        await fh.close();
      }
    }
  }

  /** Everything up to `sequence` is stored by the collector: persist the point, drop whole segments. */
  acknowledge(sequence: bigint): Promise<void> {
    return this.serialize(async () => {
      this.assertOpen();
      if (sequence > this.last) sequence = this.last;
      if (sequence <= this.acked) return;
      await writeAcked(this.options.dir, sequence);
      this.acked = sequence;
      let removed = 0;
      while (this.segments.length > 0 && this.segments[0]!.last <= sequence) {
        const s = this.segments.shift()!;
        if (this.segments.length === 0) await this.closeActive();
        await unlink(s.path).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        });
        removed++;
      }
      if (removed > 0) await syncDir(this.options.dir);
    });
  }

  /** Called after each successful append (the shipper's wake-up). Returns the unsubscribe. */
  onAppend(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stats(): SpoolStats {
    let depth = 0;
    for (const s of this.segments) {
      if (s.first > this.acked) depth += s.records;
      else if (s.last > this.acked) depth += Number(s.last - this.acked);
    }
    return {
      depth_batches: depth,
      depth_bytes: this.diskBytes(),
      last_sequence: this.last,
      acked_sequence: this.acked,
      refused_batches: this.refused,
      rejected_batches: this.rejected,
      torn_records: this.torn,
    };
  }

  close(): Promise<void> {
    return this.serialize(async () => {
      if (this.closed) return;
      this.closed = true;
      await this.closeActive();
      this.listeners.clear();
    });
  }

  private diskBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.bytes;
    return n;
  }

  private async closeActive(): Promise<void> {
    const fh = this.active;
    this.active = null;
    if (fh !== null) await fh.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('Spool: closed');
  }

  private serialize<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job, job);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

// ------------------------------------------------------------------ records on disk

interface ScanResult {
  first: bigint;
  last: bigint;
  records: number;
  valid_bytes: number;
  offsets: number[];
  /** bytes after the last good record */
  damaged: boolean;
}

async function scanSegment(path: string, previous: bigint): Promise<ScanResult> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const out: ScanResult = { first: 0n, last: 0n, records: 0, valid_bytes: 0, offsets: [], damaged: false };
    let prev = previous;
    for await (const r of readRecords(fh, size)) {
      if (r === null || r.sequence <= prev) break;
      if (out.records === 0) out.first = r.sequence;
      out.last = prev = r.sequence;
      out.offsets.push(out.valid_bytes);
      out.records++;
      out.valid_bytes = r.end;
    }
    out.damaged = out.valid_bytes < size;
    return out;
  } finally {
    await fh.close();
  }
}

interface RawRecord {
  sequence: bigint;
  payload: Uint8Array;
  /** file offset just past the record */
  end: number;
}

const NO_SUFFIX = new Uint8Array(0);

/**
 * The records of a segment from byte `start` up to `size` bytes; null (then stop) at a damaged
 * one. Each payload is followed by `suffix` in its buffer (not part of the record).
 */
async function* readRecords(fh: FileHandle, size: number, start = 0, suffix: Uint8Array = NO_SUFFIX): AsyncGenerator<RawRecord | null> {
  const header = Buffer.alloc(HEADER);
  let pos = start;
  while (pos < size) {
    if (size - pos < HEADER || (await readExactly(fh, header, pos)) < HEADER) {
      yield null;
      return;
    }
    const length = header.readUInt32LE(0);
    const crc = header.readUInt32LE(4);
    if (length === 0 || length > size - pos - HEADER) {
      yield null;
      return;
    }
    const buf = Buffer.allocUnsafe(length + suffix.length);
    const payload = suffix.length === 0 ? buf : buf.subarray(0, length);
    const sequence = (await readExactly(fh, payload, pos + HEADER)) === length && crc32(payload) === crc ? peekSequence(payload) : null;
    if (sequence === null) {
      yield null;
      return;
    }
    pos += HEADER + length;
    if (suffix.length > 0) buf.set(suffix, length);
    yield { sequence, payload: buf, end: pos };
  }
}

/** `payload` after HEADER bytes, in a new buffer */
function withHeader(payload: Uint8Array): Buffer {
  const record = Buffer.allocUnsafe(HEADER + payload.length);
  record.set(payload, HEADER);
  return record;
}

async function readExactly(fh: FileHandle, buf: Buffer, position: number): Promise<number> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

async function writeAll(fh: FileHandle, buf: Uint8Array): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done);
    done += bytesWritten;
  }
}

/**
 * IngestRequest.sequence (field 2, varint) read straight from the wire bytes, without
 * decoding the summaries; null when the bytes are not a well-formed message with one.
 */
export function peekSequence(b: Uint8Array): bigint | null {
  let i = 0;
  const varint = (): bigint | null => {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (i >= b.length) return null;
      const byte = b[i++]!;
      v |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return v;
    }
    return null;
  };
  let sequence: bigint | null = null;
  while (i < b.length) {
    const tag = varint();
    if (tag === null) return null;
    const field = tag >> 3n;
    const wire = Number(tag & 7n);
    if (wire === 0) {
      const v = varint();
      if (v === null) return null;
      if (field === 2n) sequence = v & 0xffff_ffff_ffff_ffffn;
    } else if (wire === 2) {
      const n = varint();
      if (n === null || n > BigInt(b.length - i)) return null;
      i += Number(n);
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else return null;
    if (i > b.length) return null;
  }
  return sequence !== null && sequence > 0n ? sequence : null;
}

// ------------------------------------------------------------------ ack point

async function readAcked(dir: string): Promise<bigint> {
  let text: string;
  try {
    text = await readFile(join(dir, ACKED), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0n;
    throw err;
  }
  const t = text.trim();
  if (!/^\d+$/.test(t)) throw new Error(`Spool: ${join(dir, ACKED)} does not hold a sequence number: ${JSON.stringify(t.slice(0, 40))}`);
  return BigInt(t);
}

async function writeAcked(dir: string, sequence: bigint): Promise<void> {
  await replaceFile(dir, ACKED, `${sequence}\n`);
}

/** The spool's stream id; a new random one (written durably) when the spool has none yet. */
async function readOrCreateStream(dir: string): Promise<string> {
  try {
    const t = (await readFile(join(dir, STREAM), 'utf8')).trim();
    if (!STREAM_ID.test(t)) throw new Error(`Spool: ${join(dir, STREAM)} does not hold a stream id: ${JSON.stringify(t.slice(0, 40))}`);
    return t;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const id = randomBytes(16).toString('base64url'); // 128 bits: two spools never share one
  await replaceFile(dir, STREAM, `${id}\n`);
  return id;
}

/** Writes `name` in `dir` atomically and durably: temp file, fsync, rename, fsync the directory. */
async function replaceFile(dir: string, name: string, text: string): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
  await syncDir(dir);
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function warnFull(o: SpoolOptions, bytes: number): void {
  process.emitWarning(`spool ${o.dir} is full (${bytes} of ${o.max_bytes} bytes): closed intervals are refused until the collector acknowledges`, { code: 'WIRETIME_SPOOL_FULL' });
}
