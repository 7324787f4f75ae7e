// The small SQL interface the collector's storage is written against. Two implementations:
// pg-sql.ts (real PostgreSQL through a `pg` pool) and pglite-sql.ts (PGlite, PostgreSQL in WASM,
// in-process). Both return the same JavaScript types for the same SQL types:
//   int8 → bigint, int2/int4/float8 → number, numeric → string, timestamptz → Date,
//   bytea → Uint8Array (a Buffer on pg, which is a Uint8Array), json/jsonb → parsed value,
//   inet → string, text → string, bool → boolean.
// Parameters are always bound ($1, $2, …), never spliced into the text.

export type Row = Record<string, unknown>;

/** PostgreSQL's limit on bound parameters in one statement (the Bind message counts them in 16 bits). */
export const MAX_PARAMETERS = 65_535;

export interface Queryable {
  /** One statement with bound parameters; returns its rows (empty for statements without RETURNING). */
  query<R extends Row = Row>(text: string, params?: readonly unknown[]): Promise<R[]>;
  /** Several statements separated by semicolons, no parameters (migration files). */
  exec(text: string): Promise<void>;
  /**
   * `COPY … FROM STDIN WITH (FORMAT binary)` with this payload (copy-binary.ts). Only where the
   * engine takes COPY from a client stream (real PostgreSQL); absent on PGlite.
   */
  copyIn?(statement: string, payload: Uint8Array): Promise<void>;
}

export interface Sql extends Queryable {
  readonly engine: 'postgresql' | 'pglite';
  /**
   * Runs fn inside BEGIN … COMMIT on one connection; ROLLBACK and rethrow when fn throws.
   * Queries made through `tx` belong to the transaction; do not use the outer Sql inside fn.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
