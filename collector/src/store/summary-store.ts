// Idempotent storage of ingest batches (IngestRequest) in PostgreSQL or PGlite; schema in
// collector/src/migrations/. One batch = one transaction:
//   1. sensors: INSERT … ON CONFLICT DO NOTHING (so the idempotency record's foreign key holds;
//      it writes nothing when the sensor is known, and an unknown sensor cannot send a duplicate);
//   2. ingest_batches, keyed (sensor, stream, sequence): INSERT … ON CONFLICT DO NOTHING
//      RETURNING: no row back → 'duplicate',
//      nothing else written. A concurrent copy of the same batch on another collector waits on
//      the primary key until this transaction ends, then finds it;
//   3. servers / signatures not in this store's cache: multi-row INSERT … ON CONFLICT DO NOTHING,
//      then SELECT their ids (a separate statement, so rows committed meanwhile by another
//      collector are seen). Keys are sorted so concurrent collectors lock them in the same order;
//   4. summaries_l1 and summary_sketches: on PostgreSQL by binary COPY (copy-binary.ts) inside a
//      savepoint; when a key was already stored (the COPY fails on it), and always on PGlite,
//      by multi-row INSERT … ON CONFLICT DO NOTHING RETURNING the key, in chunks, then the
//      sketches of the rows actually inserted;
//   5. sensors.last_seen and stats, ingest_batches.summaries_stored.
// The day partitions the batch needs are created beforehand in their own short transaction
// (creating a partition locks the parent; doing it inside the batch would hold that lock for
// the whole batch).
// Every value is a bound parameter; statements are chunked below PostgreSQL's 65 535 parameters.
import type { IngestRequest } from '../../../proto/src/gen/wiretime/v1/ingest_pb.ts';
import type { Summary } from '../../../proto/src/gen/wiretime/v1/summary_pb.ts';
import { migrate } from './migrate.ts';
import { PgSql } from './pg-sql.ts';
import { PgliteSql } from './pglite-sql.ts';
import { CopyBinaryWriter, jsonbKeyOrder } from './copy-binary.ts';
import { patchIds, type IngestRows, type ServerDimension, type SignatureDimension } from './ingest-rows.ts';
import type { SensorStats } from '../../../proto/src/gen/wiretime/v1/summary_pb.ts';
import { MAX_PARAMETERS, type Queryable, type Sql } from './sql.ts';

const INT8_MAX = (1n << 63n) - 1n;
const DAY_S = 86_400n;

export interface SummaryStoreOptions {
  /** rows per multi-row INSERT (further capped by the 65 535-parameter limit); default 1000 */
  maxRowsPerStatement?: number;
}

/** Splits rows into chunks that fit one statement of `columns` parameters per row. */
export function chunkRows<T>(rows: readonly T[], columns: number, maxRows: number = Infinity): T[][] {
  const per = Math.max(1, Math.min(maxRows, Math.floor(MAX_PARAMETERS / columns)));
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += per) out.push(rows.slice(i, i + per));
  return out;
}

/** "($1,$2,$3),($4,$5,$6)…" for rows×columns parameters, with optional casts per column. */
export function valuesList(rows: number, columns: number, casts: readonly string[] = []): string {
  const parts: string[] = [];
  let n = 1;
  for (let r = 0; r < rows; r++) {
    const cols: string[] = [];
    for (let c = 0; c < columns; c++) cols.push(casts[c] ? `$${n++}::${casts[c]}` : `$${n++}`);
    parts.push(`(${cols.join(',')})`);
  }
  return parts.join(',');
}

function int8(v: bigint, what: string): bigint {
  if (v < 0n || v > INT8_MAX) throw new RangeError(`${what} ${v} does not fit a PostgreSQL bigint`);
  return v;
}

/** A JSON number for jsonb: doubles in their shortest exact form (as JSON.stringify writes them), non-finite values as null. */
function jsonNumber(x: number): string {
  return x - x === 0 ? String(x) : 'null'; // finite; String(-0) is "0" as in JSON
}

const NO_COPY = new Error('storeRows: no COPY on this connection');
const COPY_FACTS = 'COPY summaries_l1 (server_id, signature_id, interval_start, sensor_id, interval_s, count, partial, outcomes, metrics) FROM STDIN WITH (FORMAT binary)';
const COPY_SKETCHES = 'COPY summary_sketches (server_id, signature_id, interval_start, sensor_id, interval_s, metric, sketch) FROM STDIN WITH (FORMAT binary)';

/** updateSensor's parameters from a batch's stats (RangeError when a counter does not fit a bigint) */
function statsParams(st: SensorStats | undefined): unknown[] | null {
  return st
    ? [int8(st.packets, 'packets'), int8(st.bytes, 'bytes'), int8(st.kernelDrops, 'kernel_drops'),
        int8(st.interfaceDrops, 'interface_drops'), int8(st.flowsActive, 'flows_active'), int8(st.transactions, 'transactions'),
        int8(st.spoolBytes, 'spool_bytes'), st.captureTimeS > 0n ? isoFromSeconds(st.captureTimeS) : null]
    : null;
}

function isoFromSeconds(s: bigint): string {
  return new Date(Number(s) * 1000).toISOString();
}

interface PreparedSummary {
  s: Summary;
  startIso: string;
  serverKey: string;
  signatureKey: string;
  /** unique within the batch given the sensor: server key, signature key, start, interval */
  key: string;
  outcomes: string;
  metrics: string;
  sketches: { metric: string; sketch: Uint8Array }[];
}

function prepare(s: Summary): PreparedSummary {
  const outcomes: Record<string, bigint> = {};
  for (const o of s.outcomes) outcomes[o.outcome] = (outcomes[o.outcome] ?? 0n) + o.count;
  const outcomeJson = `{${Object.entries(outcomes).sort(([a], [b]) => jsonbKeyOrder(a, b)).map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
  const seen = new Set<string>();
  const metricParts: [string, string][] = [];
  const sketches: { metric: string; sketch: Uint8Array }[] = [];
  for (const m of s.metrics) {
    if (seen.has(m.name)) continue; // first one wins, in the jsonb and in summary_sketches alike
    seen.add(m.name);
    metricParts.push([m.name, `${JSON.stringify(m.name)}:{"max":${jsonNumber(m.max)},"min":${jsonNumber(m.min)},"sum":${jsonNumber(m.sum)},` +
      `"count":${m.count},"negative_clamped":${m.negativeClamped}}`]);
    if (m.sketch.length > 0) sketches.push({ metric: m.name, sketch: m.sketch });
  }
  metricParts.sort(([a], [b]) => jsonbKeyOrder(a, b));
  const serverKey = `${s.server}\u0000${s.serverPort}\u0000${s.transport}`;
  const signatureKey = `${s.protocol}\u0000${s.signature}`;
  return {
    s,
    startIso: isoFromSeconds(s.intervalStartS),
    serverKey,
    signatureKey,
    key: `${serverKey}\u0001${signatureKey}\u0001${s.intervalStartS}\u0001${s.intervalS}`,
    outcomes: outcomeJson,
    metrics: `{${metricParts.map(([, part]) => part).join(',')}}`,
    sketches,
  };
}

/** The summaries of a batch that are stored: the first of each key (RangeError for a count that does not fit a bigint). */
function keptSummaries(batch: IngestRequest): PreparedSummary[] {
  const prepared: PreparedSummary[] = [];
  const keys = new Set<string>();
  for (const s of batch.summaries) {
    int8(s.count, 'summary count');
    const p = prepare(s);
    if (keys.has(p.key)) continue; // same key twice in one batch: the first one is stored
    keys.add(p.key);
    prepared.push(p);
  }
  return prepared;
}

/** The binary COPY payloads of summaries_l1 and summary_sketches (null: no sketches) for prepared summaries. */
function copyPayloads(prepared: PreparedSummary[], sensor: string, serverId: (k: string) => bigint, signatureId: (k: string) => bigint): { facts: Buffer; sketches: Buffer | null } {
  const facts = new CopyBinaryWriter(prepared.length * 4096);
  let sketch_bytes = 0;
  for (const p of prepared) {
    facts.tuple(9).int8(serverId(p.serverKey)).int8(signatureId(p.signatureKey)).timestamptzSeconds(p.s.intervalStartS).text(sensor)
      .int4(p.s.intervalS).int8(p.s.count).bool(p.s.partial).jsonb(p.outcomes).jsonb(p.metrics);
    for (const k of p.sketches) sketch_bytes += k.sketch.length + 128;
  }
  if (sketch_bytes === 0) return { facts: facts.finish(), sketches: null };
  const sketches = new CopyBinaryWriter(sketch_bytes);
  for (const p of prepared) {
    for (const k of p.sketches) {
      sketches.tuple(7).int8(serverId(p.serverKey)).int8(signatureId(p.signatureKey)).timestamptzSeconds(p.s.intervalStartS).text(sensor)
        .int4(p.s.intervalS).text(k.metric).bytea(k.sketch);
    }
  }
  return { facts: facts.finish(), sketches: sketches.finish() };
}

/**
 * What `storeBatch` writes for a valid batch, without a database: the COPY payloads with the
 * given dimension ids, the rows kept, and their servers and signatures by key (in order of
 * first appearance). The reference the fast decoder (ingest-rows.ts) is tested against.
 */
export function referenceRows(batch: IngestRequest, serverId: (k: string) => bigint, signatureId: (k: string) => bigint) {
  const prepared = keptSummaries(batch);
  const servers = new Map<string, ServerDimension>();
  const signatures = new Map<string, SignatureDimension>();
  const days: bigint[] = [];
  for (const p of prepared) {
    if (!servers.has(p.serverKey)) servers.set(p.serverKey, { address: p.s.server, port: p.s.serverPort, transport: p.s.transport });
    if (!signatures.has(p.signatureKey)) signatures.set(p.signatureKey, { protocol: p.s.protocol, name: p.s.signature });
    const day = p.s.intervalStartS - (((p.s.intervalStartS % DAY_S) + DAY_S) % DAY_S);
    if (!days.includes(day)) days.push(day);
  }
  return { rows: prepared.length, ...copyPayloads(prepared, batch.sensorId, serverId, signatureId), servers, signatures, days };
}

export class SummaryStore {
  private readonly maxRows: number;
  /** dimension ids known to be committed: key → id */
  private readonly serverIds = new Map<string, bigint>();
  private readonly signatureIds = new Map<string, bigint>();
  /** UTC days (epoch seconds of midnight) whose partitions exist */
  private readonly partitionDays = new Set<bigint>();
  /** sensors this store has committed a batch of (so their `sensors` row exists) */
  private readonly knownSensors = new Set<string>();

  constructor(readonly sql: Sql, options: SummaryStoreOptions = {}) {
    this.maxRows = options.maxRowsPerStatement ?? 1000;
  }

  /** database_url → PostgreSQL through pg; else PGlite in data_dir, or in memory. Runs migrations. */
  static async open(database_url: string | null, data_dir: string | null, options: SummaryStoreOptions = {}): Promise<SummaryStore> {
    const sql: Sql = database_url ? new PgSql(database_url) : await PgliteSql.open(data_dir);
    try {
      await migrate(sql);
    } catch (err) {
      await sql.close().catch(() => {});
      throw err;
    }
    return new SummaryStore(sql, options);
  }

  /** Stores one batch in one transaction. Idempotent: a (sensor_id, stream_id, sequence) already stored returns 'duplicate' and writes nothing. */
  async storeBatch(batch: IngestRequest): Promise<'stored' | 'duplicate'> {
    const sensor = batch.sensorId;
    const stream = batch.streamId;
    const sequence = int8(batch.sequence, 'sequence');
    const prepared = keptSummaries(batch);
    const days = new Set<bigint>();
    for (const { s } of prepared) {
      const day = s.intervalStartS - (((s.intervalStartS % DAY_S) + DAY_S) % DAY_S);
      if (!this.partitionDays.has(day)) days.add(day);
    }
    const stats = statsParams(batch.stats);
    if (days.size > 0) await this.ensurePartitions([...days].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));

    const newServers = new Map<string, bigint>();
    const newSignatures = new Map<string, bigint>();
    const result = await this.sql.transaction(async (tx) => {
      await tx.query('INSERT INTO sensors (sensor_id) VALUES ($1) ON CONFLICT (sensor_id) DO NOTHING', [sensor]);
      const fresh = await tx.query(
        'INSERT INTO ingest_batches (sensor_id, stream_id, sequence, summary_count) VALUES ($1, $2, $3, $4) ON CONFLICT (sensor_id, stream_id, sequence) DO NOTHING RETURNING sequence',
        [sensor, stream, sequence, batch.summaries.length],
      );
      if (fresh.length === 0) return 'duplicate' as const;

      const servers = new Map<string, ServerDimension>();
      for (const p of prepared) if (!servers.has(p.serverKey)) servers.set(p.serverKey, { address: p.s.server, port: p.s.serverPort, transport: p.s.transport });
      const signatures = new Map<string, SignatureDimension>();
      for (const p of prepared) if (!signatures.has(p.signatureKey)) signatures.set(p.signatureKey, { protocol: p.s.protocol, name: p.s.signature });
      await this.resolveServers(tx, servers, newServers);
      await this.resolveSignatures(tx, signatures, newSignatures);
      const serverId = (k: string) => this.serverIds.get(k) ?? newServers.get(k)!;
      const signatureId = (k: string) => this.signatureIds.get(k) ?? newSignatures.get(k)!;

      // Facts. On PostgreSQL by binary COPY straight into the partitioned tables: the batch is
      // new (its idempotency row went in above), so its keys normally are too. A key stored
      // before under another batch (an interval replayed under a new sequence or stream) makes
      // the COPY fail on the primary key; then the batch goes in again by INSERT … ON CONFLICT
      // DO NOTHING, which keeps the first copy.
      if (tx.copyIn !== undefined && prepared.length > 0) {
        await tx.query('SAVEPOINT facts');
        try {
          await this.copyFacts(tx, prepared, sensor, serverId, signatureId);
          await tx.query('RELEASE SAVEPOINT facts');
          await tx.query('UPDATE ingest_batches SET summaries_stored = $4 WHERE sensor_id = $1 AND stream_id = $2 AND sequence = $3', [sensor, stream, sequence, prepared.length]);
          await this.updateSensor(tx, sensor, stats);
          return 'stored' as const;
        } catch (err) {
          if ((err as { code?: string }).code !== '23505') throw err; // unique_violation
          await tx.query('ROLLBACK TO SAVEPOINT facts');
        }
      }
      // RETURNING tells which keys were new: a key already stored (an interval replayed
      // under another sequence number) keeps its first copy, and its sketches are not written.
      const inserted: PreparedSummary[] = [];
      for (const chunk of chunkRows(prepared, 9, this.maxRows)) {
        const params: unknown[] = [];
        for (const p of chunk) {
          params.push(serverId(p.serverKey), signatureId(p.signatureKey), p.startIso, sensor, p.s.intervalS,
            p.s.count, p.s.partial, p.outcomes, p.metrics);
        }
        const rows = await tx.query<{ server_id: bigint; signature_id: bigint; interval_start: Date; interval_s: number }>(
          `INSERT INTO summaries_l1 (server_id, signature_id, interval_start, sensor_id, interval_s, count, partial, outcomes, metrics)
           VALUES ${valuesList(chunk.length, 9)}
           ON CONFLICT DO NOTHING
           RETURNING server_id, signature_id, interval_start, interval_s`,
          params,
        );
        if (rows.length === chunk.length) {
          inserted.push(...chunk);
        } else {
          const got = new Set(rows.map((r) => `${r.server_id}|${r.signature_id}|${r.interval_start.getTime() / 1000}|${r.interval_s}`));
          for (const p of chunk) {
            if (got.has(`${serverId(p.serverKey)}|${signatureId(p.signatureKey)}|${p.s.intervalStartS}|${p.s.intervalS}`)) inserted.push(p);
          }
        }
      }

      const sketchRows: unknown[][] = [];
      for (const p of inserted) {
        for (const k of p.sketches) {
          sketchRows.push([serverId(p.serverKey), signatureId(p.signatureKey), p.startIso, sensor, p.s.intervalS, k.metric, k.sketch]);
        }
      }
      for (const chunk of chunkRows(sketchRows, 7, this.maxRows)) {
        await tx.query(
          `INSERT INTO summary_sketches (server_id, signature_id, interval_start, sensor_id, interval_s, metric, sketch)
           VALUES ${valuesList(chunk.length, 7)}
           ON CONFLICT DO NOTHING`,
          chunk.flat(),
        );
      }

      await tx.query('UPDATE ingest_batches SET summaries_stored = $4 WHERE sensor_id = $1 AND stream_id = $2 AND sequence = $3', [sensor, stream, sequence, inserted.length]);
      await this.updateSensor(tx, sensor, stats);
      return 'stored' as const;
    });
    // Only ids from a committed transaction may be remembered (a rolled-back insert's id is gone).
    if (result === 'stored') {
      for (const [k, v] of newServers) this.serverIds.set(k, v);
      for (const [k, v] of newSignatures) this.signatureIds.set(k, v);
      this.knownSensors.add(sensor);
    }
    return result;
  }

  /**
   * `storeBatch` for a batch the ingest decoder already turned into COPY payloads
   * (ingest-rows.ts): same rows, same idempotency, fewer statements. The batch's summary keys
   * are normally new, so the payloads go in by COPY without a savepoint; a key stored before
   * (an interval replayed under a new sequence or stream) fails the COPY, the transaction rolls
   * back whole, and the batch goes through `storeBatch`, which keeps the first copies. On
   * PGlite (no COPY) it is `storeBatch` of the protobuf-es decoding.
   */
  async storeRows(rows: IngestRows): Promise<'stored' | 'duplicate'> {
    if (this.sql.engine !== 'postgresql') return this.storeBatch(rows.request()); // COPY from a client stream: PostgreSQL only
    const sensor = rows.sensorId;
    const stream = rows.streamId;
    const sequence = int8(rows.sequence, 'sequence');
    const stats = statsParams(rows.stats);
    const days = rows.days.filter((d) => !this.partitionDays.has(d));
    if (days.length > 0) await this.ensurePartitions(days.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));

    const newServers = new Map<string, bigint>();
    const newSignatures = new Map<string, bigint>();
    let result: 'stored' | 'duplicate';
    try {
      result = await this.sql.transaction(async (tx) => {
        if (tx.copyIn === undefined) throw NO_COPY; // a wrapped Sql without COPY (tests): storeBatch below
        // a sensor this store has committed a batch of is in `sensors` (rows there are never deleted)
        if (!this.knownSensors.has(sensor)) await tx.query('INSERT INTO sensors (sensor_id) VALUES ($1) ON CONFLICT (sensor_id) DO NOTHING', [sensor]);
        // summaries_stored is known up front: the COPY stores every row of the batch, or the transaction fails
        const fresh = await tx.query(
          'INSERT INTO ingest_batches (sensor_id, stream_id, sequence, summary_count, summaries_stored) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sensor_id, stream_id, sequence) DO NOTHING RETURNING sequence',
          [sensor, stream, sequence, rows.summaryCount, rows.rows],
        );
        if (fresh.length === 0) return 'duplicate' as const;
        await this.resolveServers(tx, rows.servers, newServers);
        await this.resolveSignatures(tx, rows.signatures, newSignatures);
        if (rows.rows > 0) {
          patchIds(rows, (k) => this.serverIds.get(k) ?? newServers.get(k)!, (k) => this.signatureIds.get(k) ?? newSignatures.get(k)!);
          await tx.copyIn!(COPY_FACTS, rows.facts);
          if (rows.sketches !== null) await tx.copyIn!(COPY_SKETCHES, rows.sketches);
        }
        await this.updateSensor(tx, sensor, stats);
        return 'stored' as const;
      });
    } catch (err) {
      if (err !== NO_COPY && (err as { code?: string }).code !== '23505') throw err; // unique_violation
      return this.storeBatch(rows.request());
    }
    rows.release(); // only after a COPY that completed: a failed one may still be writing from them
    if (result === 'stored') {
      for (const [k, v] of newServers) this.serverIds.set(k, v);
      for (const [k, v] of newSignatures) this.signatureIds.set(k, v);
      this.knownSensors.add(sensor);
    }
    return result;
  }

  private async updateSensor(tx: Queryable, sensor: string, stats: unknown[] | null): Promise<void> {
    if (stats) {
      await tx.query(
        `UPDATE sensors SET last_seen = now(), stats_at = now(), packets = $2, bytes = $3, kernel_drops = $4,
           interface_drops = $5, flows_active = $6, transactions = $7, spool_bytes = $8, capture_time = $9::timestamptz
         WHERE sensor_id = $1`,
        [sensor, ...stats],
      );
    } else {
      await tx.query('UPDATE sensors SET last_seen = now() WHERE sensor_id = $1', [sensor]);
    }
  }

  /** Both fact tables of a batch by binary COPY (PostgreSQL only). */
  private async copyFacts(tx: Queryable, prepared: PreparedSummary[], sensor: string,
    serverId: (k: string) => bigint, signatureId: (k: string) => bigint): Promise<void> {
    const { facts, sketches } = copyPayloads(prepared, sensor, serverId, signatureId);
    await tx.copyIn!(COPY_FACTS, facts);
    if (sketches !== null) await tx.copyIn!(COPY_SKETCHES, sketches);
  }

  /** highest stored sequence of one stream of a sensor (0n when none) */
  async lastSequence(sensor_id: string, stream_id: string): Promise<bigint> {
    const rows = await this.sql.query<{ s: bigint | null }>('SELECT max(sequence) AS s FROM ingest_batches WHERE sensor_id = $1 AND stream_id = $2', [sensor_id, stream_id]);
    return rows[0]?.s ?? 0n;
  }

  close(): Promise<void> {
    return this.sql.close();
  }

  /** Creates the day partitions (both fact tables) for the given UTC midnights, in one short transaction. */
  private async ensurePartitions(days: bigint[]): Promise<void> {
    await this.sql.transaction(async (tx) => {
      for (const day of days) await tx.query('SELECT wiretime_ensure_day_partition($1::timestamptz)', [isoFromSeconds(day)]);
    });
    for (const day of days) this.partitionDays.add(day);
  }

  /** ids of the batch's servers (by key, in order of first appearance) that this store does not know yet, into `out` */
  private async resolveServers(tx: Queryable, servers: Map<string, ServerDimension>, out: Map<string, bigint>): Promise<void> {
    const missing = new Map<string, ServerDimension>();
    for (const [k, v] of servers) if (!this.serverIds.has(k)) missing.set(k, v);
    if (missing.size === 0) return;
    const list = [...missing.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const chunk of chunkRows(list, 4, this.maxRows)) {
      const params: unknown[] = [];
      for (const [, s] of chunk) params.push(s.address, s.port, s.transport);
      await tx.query(
        `INSERT INTO servers (address, port, transport) VALUES ${valuesList(chunk.length, 3, ['inet'])}
         ON CONFLICT (address, port, transport) DO NOTHING`,
        params,
      );
      const lookup: unknown[] = [];
      chunk.forEach(([, s], i) => lookup.push(i, s.address, s.port, s.transport));
      const rows = await tx.query<{ i: number; id: bigint }>(
        `SELECT v.i, s.server_id AS id
         FROM (VALUES ${valuesList(chunk.length, 4, ['int4', 'inet', 'int4', 'text'])}) AS v (i, address, port, transport)
         JOIN servers s ON s.address = v.address AND s.port = v.port AND s.transport = v.transport`,
        lookup,
      );
      for (const r of rows) out.set(chunk[r.i]![0], r.id);
    }
  }

  private async resolveSignatures(tx: Queryable, signatures: Map<string, SignatureDimension>, out: Map<string, bigint>): Promise<void> {
    const missing = new Map<string, SignatureDimension>();
    for (const [k, v] of signatures) if (!this.signatureIds.has(k)) missing.set(k, v);
    if (missing.size === 0) return;
    const list = [...missing.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const chunk of chunkRows(list, 3, this.maxRows)) {
      const params: unknown[] = [];
      for (const [, s] of chunk) params.push(s.protocol, s.name);
      await tx.query(
        `INSERT INTO signatures (protocol, name) VALUES ${valuesList(chunk.length, 2)}
         ON CONFLICT (protocol, name) DO NOTHING`,
        params,
      );
      const lookup: unknown[] = [];
      chunk.forEach(([, s], i) => lookup.push(i, s.protocol, s.name));
      const rows = await tx.query<{ i: number; id: bigint }>(
        `SELECT v.i, g.signature_id AS id
         FROM (VALUES ${valuesList(chunk.length, 3, ['int4', 'text', 'text'])}) AS v (i, protocol, name)
         JOIN signatures g ON g.protocol = v.protocol AND g.name = v.name`,
        lookup,
      );
      for (const r of rows) out.set(chunk[r.i]![0], r.id);
    }
  }
}
