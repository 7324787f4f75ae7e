// Sql over PGlite (PostgreSQL compiled to WASM) in this process: the embedded default, so that one
// command runs everything on a fresh machine. A data directory persists it; without one it lives
// in memory.
//
// WAL growth. PGlite runs PostgreSQL in single-user mode (`postgres --single`). There is no
// checkpointer process there, and XLogWrite only requests a checkpoint when max_wal_size is
// passed "IsUnderPostmaster": in single-user mode the WAL is only trimmed by an explicit
// CHECKPOINT or at shutdown. Measured with PGlite 0.5.16, 500 k narrow rows in 500-row
// transactions and max_wal_size=32MB but no explicit checkpoint: pg_wal 257 MB while open (STACK-NOTES
// saw 401 MB for 100 k wider rows), 33 MB after close. So this class
//   1. sets max_wal_size / min_wal_size small (they bound how many old segments a checkpoint keeps
//      for recycling), and full_page_writes=off (PGlite already runs with fsync off, so full-page
//      images buy no crash safety here, and frequent checkpoints would otherwise make every first
//      touch of a page after each one log the whole 8 kB page);
//   2. after every write transaction asks how far the WAL insert position is past the last
//      checkpoint's redo point, and runs CHECKPOINT when that passes `checkpointWalBytes`.
// pg_wal then stays near min_wal_size + checkpointWalBytes + one segment (16 MB segments, fixed at
// initdb).
import { PGlite } from '@electric-sql/pglite';
import type { Queryable, Row, Sql } from './sql.ts';

const INT8_OID = 20;

export interface PgliteSqlOptions {
  /** WAL bytes written since the last checkpoint that trigger a CHECKPOINT; default 16 MiB */
  checkpointWalBytes?: number;
  /** max_wal_size / min_wal_size in MB; default 32 (PostgreSQL requires ≥ 2 WAL segments = 32 MB) */
  walSizeMb?: number;
}

interface PgliteQueryTarget {
  query<T>(text: string, params?: unknown[]): Promise<{ rows: T[] }>;
  exec(text: string): Promise<unknown>;
}

class PgliteQueryable implements Queryable {
  constructor(private readonly target: PgliteQueryTarget) {}
  async query<R extends Row = Row>(text: string, params: readonly unknown[] = []): Promise<R[]> {
    const res = await this.target.query<R>(text, params as unknown[]);
    return res.rows;
  }
  async exec(text: string): Promise<void> {
    await this.target.exec(text);
  }
}

export class PgliteSql implements Sql {
  readonly engine = 'pglite' as const;
  /** checkpoints this instance ran to bound the WAL (for tests and statistics) */
  checkpoints = 0;
  private readonly direct: PgliteQueryable;
  private readonly checkpointWalBytes: number;

  private constructor(readonly db: PGlite, checkpointWalBytes: number) {
    this.direct = new PgliteQueryable(db);
    this.checkpointWalBytes = checkpointWalBytes;
  }

  /** dataDir null → in memory. */
  static async open(dataDir: string | null, opts: PgliteSqlOptions = {}): Promise<PgliteSql> {
    const walMb = Math.max(32, Math.round(opts.walSizeMb ?? 32));
    const db = await PGlite.create({
      ...(dataDir ? { dataDir } : {}),
      parsers: { [INT8_OID]: (v: string) => BigInt(v) },
      startParams: [
        ...PGlite.defaultStartParams,
        '-c', `max_wal_size=${walMb}MB`,
        '-c', `min_wal_size=${walMb}MB`,
        '-c', 'full_page_writes=off',
      ],
    });
    const sql = new PgliteSql(db, opts.checkpointWalBytes ?? 16 * 1024 * 1024);
    await sql.maybeCheckpoint();
    return sql;
  }

  query<R extends Row = Row>(text: string, params?: readonly unknown[]): Promise<R[]> {
    return this.direct.query<R>(text, params);
  }

  async exec(text: string): Promise<void> {
    await this.direct.exec(text);
    await this.maybeCheckpoint();
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    // PGlite's transaction() holds its exclusive lock for the whole callback, so other callers queue.
    const result = await this.db.transaction((tx) => fn(new PgliteQueryable(tx)));
    await this.maybeCheckpoint();
    return result;
  }

  /** WAL bytes between the last checkpoint's redo point and the current insert position. */
  async walSinceCheckpoint(): Promise<number> {
    const rows = await this.direct.query<{ d: number }>(
      'SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), redo_lsn)::float8 AS d FROM pg_control_checkpoint()',
    );
    return rows[0]?.d ?? 0;
  }

  private async maybeCheckpoint(): Promise<void> {
    if ((await this.walSinceCheckpoint()) >= this.checkpointWalBytes) {
      await this.db.exec('CHECKPOINT');
      this.checkpoints++;
    }
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
