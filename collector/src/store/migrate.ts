// Versioned schema migrations: collector/src/migrations/NNN_name.sql, applied in version order,
// each in its own transaction, each recorded in schema_migrations (with a SHA-256 of the file so
// that an edited, already-applied migration is refused rather than silently diverging).
// Every transaction first takes pg_advisory_xact_lock(0x77746d65, 1) and only then looks at
// schema_migrations, so collectors starting at the same moment against one database apply each
// migration exactly once: the others wait on the lock, then see it recorded.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Queryable, Sql } from './sql.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));

const LOCK = 'SELECT pg_advisory_xact_lock(2004118885, 1)';
const FILE_NAME = /^(\d{3,})_([A-Za-z0-9_]+)\.sql$/;

export function migration(version: number, name: string, sql: string): Migration {
  return { version, name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
}

/** Reads NNN_name.sql files in version order; refuses duplicate versions and stray names. */
export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const out: Migration[] = [];
  for (const file of (await readdir(dir)).sort()) {
    if (!file.endsWith('.sql')) continue;
    const m = FILE_NAME.exec(file);
    if (!m) throw new Error(`migration file name ${file} in ${dir} is not NNN_name.sql`);
    const version = Number(m[1]);
    if (out.some((x) => x.version === version)) throw new Error(`two migrations with version ${version} in ${dir}`);
    out.push(migration(version, m[2]!, await readFile(`${dir}/${file}`, 'utf8')));
  }
  return out.sort((a, b) => a.version - b.version);
}

async function appliedMigrations(tx: Queryable): Promise<Map<number, string>> {
  const exists = await tx.query<{ t: string | null }>(`SELECT to_regclass('schema_migrations')::text AS t`);
  if (exists[0]?.t == null) {
    await tx.exec(`CREATE TABLE schema_migrations (
      version     integer PRIMARY KEY,
      name        text        NOT NULL,
      checksum    text        NOT NULL,  -- SHA-256 of the file as applied
      applied_at  timestamptz NOT NULL DEFAULT now()
    )`);
    return new Map();
  }
  const rows = await tx.query<{ version: number; checksum: string }>('SELECT version, checksum FROM schema_migrations');
  return new Map(rows.map((r) => [r.version, r.checksum]));
}

export interface MigrateResult {
  /** versions applied by this call (empty when the schema was already current) */
  applied: number[];
}

/** Brings the schema up to date. Safe to run concurrently from several processes. */
export async function migrate(sql: Sql, migrations?: Migration[]): Promise<MigrateResult> {
  const list = [...(migrations ?? (await loadMigrations()))].sort((a, b) => a.version - b.version);
  for (let i = 1; i < list.length; i++) {
    if (list[i]!.version === list[i - 1]!.version) throw new Error(`two migrations with version ${list[i]!.version}`);
  }
  const applied: number[] = [];
  // First look (creates schema_migrations and checks checksums of what is applied).
  const known = await sql.transaction(async (tx) => {
    await tx.query(LOCK);
    return appliedMigrations(tx);
  });
  for (const [version, checksum] of known) {
    const m = list.find((x) => x.version === version);
    if (m && m.checksum !== checksum) {
      throw new Error(`migration ${version}_${m.name} was changed after it was applied (checksum differs); add a new migration instead`);
    }
  }
  for (const m of list) {
    if (known.has(m.version)) continue;
    const did = await sql.transaction(async (tx) => {
      await tx.query(LOCK);
      // Another collector may have applied it while this one waited for the lock.
      const rows = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [m.version]);
      if (rows.length > 0) return false;
      try {
        await tx.exec(m.sql);
      } catch (err) {
        throw new Error(`migration ${m.version}_${m.name} failed: ${(err as Error).message}`, { cause: err });
      }
      await tx.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
      return true;
    });
    if (did) applied.push(m.version);
  }
  return { applied };
}
