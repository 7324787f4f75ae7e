import type { Summary } from '@wiretime/proto/gen/wiretime/v1/summary_pb.ts';

/** Summaries per batch at most (the collector accepts up to 10 000). */
export const MAX_BATCH_SUMMARIES = 1000;
/**
 * Encoded bytes per batch, about. A summary with its sketches is ~1–20 KB; a batch must stay
 * well under the collector's message limit (16 MiB). Each batch costs the collector and
 * PostgreSQL a fixed share (a transaction, its round trips, the gRPC message's buffers): on the
 * ingest bench (HTTP summaries of ~15 KB), 4 MiB batches took ~150–170 µs of collector CPU and
 * ~215–250 µs of PostgreSQL CPU per summary against ~195–235 and ~240–270 for 1 MiB ones;
 * 8 MiB gained nothing more.
 */
export const MAX_BATCH_BYTES = 1 << 22;

/** The encoded size of a summary, estimated from its parts (within a few %, without encoding it). */
export function estimatedBytes(s: Summary): number {
  let size = 32 + s.server.length + s.signature.length + s.protocol.length;
  for (const m of s.metrics) size += 36 + m.name.length + m.sketch.length;
  return size;
}

/** Summaries cut into batches for the spool, in order: at most `max_summaries` and about `max_bytes` each. */
export function splitIntoBatches(summaries: readonly Summary[], max_summaries = MAX_BATCH_SUMMARIES, max_bytes = MAX_BATCH_BYTES): Summary[][] {
  const out: Summary[][] = [];
  let chunk: Summary[] = [];
  let bytes = 0;
  for (const s of summaries) {
    const size = estimatedBytes(s);
    if (chunk.length > 0 && (chunk.length >= max_summaries || bytes + size > max_bytes)) {
      out.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(s);
    bytes += size;
  }
  if (chunk.length > 0) out.push(chunk);
  return out;
}
