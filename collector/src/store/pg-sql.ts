// Sql over real PostgreSQL through a pg.Pool. The connection string comes from the caller.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Queryable, Row, Sql } from './sql.ts';

const INT8_OID = 20;

/** Type parsers shared by every client of the pool: int8 → bigint (pg's default is a string). */
const types = {
  getTypeParser(oid: number, format?: string): (value: string) => unknown {
    if (oid === INT8_OID && format !== 'binary') return (v: string) => BigInt(v);
    return (pg.types.getTypeParser as (oid: number, format?: string) => (value: string) => unknown)(oid, format);
  },
};

export interface PgSqlOptions {
  /** pool size; default 10 */
  max?: number;
  /** idle client errors (server restart, network): default prints to stderr */
  onError?: (err: Error) => void;
}

class PgQueryable implements Queryable {
  constructor(private readonly client: pg.Pool | pg.PoolClient) {}
  async query<R extends Row = Row>(text: string, params: readonly unknown[] = []): Promise<R[]> {
    const res = await this.client.query<R>(text, params as unknown[]);
    return res.rows;
  }
  async exec(text: string): Promise<void> {
    // No parameters → simple query protocol, which accepts several statements.
    await this.client.query(text);
  }
  async copyIn(statement: string, payload: Uint8Array): Promise<void> {
    // COPY needs one connection for its whole exchange: only inside a transaction (a PoolClient).
    if (this.client instanceof pg.Pool) throw new Error('copyIn: only inside a transaction');
    await pipeline(Readable.from([payload]), this.client.query(copyFrom(statement)));
  }
}

export class PgSql implements Sql {
  readonly engine = 'postgresql' as const;
  private readonly pool: pg.Pool;
  private readonly direct: PgQueryable;

  constructor(connectionString: string, opts: PgSqlOptions = {}) {
    this.pool = new pg.Pool({ connectionString, max: opts.max ?? 10, types });
    const onError = opts.onError ?? ((err: Error) => console.error(`wiretime collector: idle PostgreSQL client error: ${err.message}`));
    this.pool.on('error', onError);
    this.direct = new PgQueryable(this.pool);
  }

  query<R extends Row = Row>(text: string, params?: readonly unknown[]): Promise<R[]> {
    return this.direct.query<R>(text, params);
  }

  exec(text: string): Promise<void> {
    return this.direct.exec(text);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(new PgQueryable(client));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        // The connection is unusable: make the pool discard it instead of reusing it.
        broken = rollbackErr as Error;
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
