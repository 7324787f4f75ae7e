/**
 * Migration 004 (the read-only role) on a real PostgreSQL cluster: roles are cluster-wide, so
 * the migration must succeed when several databases of one cluster run it at the same moment,
 * when the role already exists, and (with a NOTICE) when the login may not create roles. The
 * role name is replaced by a fresh one per run so the race starts from "no such role".
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { MIGRATIONS_DIR } from '../../../collector/src/store/migrate.ts';
import { PG_ADMIN_URL, pgliteEngine, postgresEngine } from '../../../collector/src/store/test-engines.ts';

const SQL = readFileSync(join(MIGRATIONS_DIR, '004_reporter_role.sql'), 'utf8');
const engine = postgresEngine();
const roles: string[] = [];

async function asAdmin<T>(fn: (c: pg.Client) => Promise<T>, url = PG_ADMIN_URL): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

after(async () => {
  await engine.cleanup();
  await asAdmin(async (c) => {
    for (const r of roles) await c.query(`DROP ROLE IF EXISTS ${r}`);
  });
});

test('databases of one cluster running the migration at the same moment all succeed and share one role', async () => {
  for (let round = 0; round < 3; round++) {
    const role = `wiretime_reader_t${randomBytes(4).toString('hex')}`;
    roles.push(role);
    const sql = SQL.replaceAll('wiretime_reader', role);
    const dbs = await Promise.all([0, 1, 2].map(async () => {
      const db = await engine.fresh();
      await db.exec('CREATE TABLE facts (x int)');
      return db;
    }));
    await Promise.all(dbs.map((db) => db.transaction((tx) => tx.exec(sql))));
    // and again: idempotent
    await Promise.all(dbs.map((db) => db.transaction((tx) => tx.exec(sql))));
    for (const db of dbs) {
      const rows = await db.query<{ ok: boolean }>(`SELECT has_table_privilege($1, 'facts', 'SELECT') AS ok`, [role]);
      assert.deepEqual(rows, [{ ok: true }]);
      const w = await db.query<{ ok: boolean }>(`SELECT has_table_privilege($1, 'facts', 'INSERT') AS ok`, [role]);
      assert.deepEqual(w, [{ ok: false }]);
    }
    // tables created later by the same login are readable too (day partitions)
    await dbs[0]!.exec('CREATE TABLE later (y int)');
    assert.deepEqual(await dbs[0]!.query(`SELECT has_table_privilege($1, 'later', 'SELECT') AS ok`, [role]), [{ ok: true }]);
    await engine.cleanup();
  }
});

test('a login without CREATEROLE runs the migration with a NOTICE instead of failing', async () => {
  const login = `wiretime_plain_${randomBytes(4).toString('hex')}`;
  const role = `wiretime_reader_t${randomBytes(4).toString('hex')}`;
  roles.push(role, login);
  await asAdmin((c) => c.query(`CREATE ROLE ${login} LOGIN`));
  const url = await engine.freshUrl!();
  await asAdmin((c) => c.query(`GRANT CREATE ON SCHEMA public TO ${login}`), url);
  const u = new URL(url);
  u.username = login;
  const notices: string[] = [];
  await asAdmin(async (c) => {
    c.on('notice', (n) => notices.push(n.message ?? ''));
    await c.query(SQL.replaceAll('wiretime_reader', role));
  }, u.toString());
  assert.ok(notices.some((n) => /not created \(this login may not create roles\)/.test(n)), notices.join('; '));
  await asAdmin(async (c) => {
    assert.equal((await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount, 0);
  });
  await asAdmin((c) => c.query(`DROP OWNED BY ${login}`), url);
});

test('PGlite accepts the migration (twice)', async () => {
  const e = pgliteEngine();
  try {
    const db = await e.fresh();
    await db.exec('CREATE TABLE facts (x int)');
    await db.transaction((tx) => tx.exec(SQL));
    await db.transaction((tx) => tx.exec(SQL));
    assert.deepEqual(await db.query(`SELECT has_table_privilege('wiretime_reader', 'facts', 'SELECT') AS ok`), [{ ok: true }]);
  } finally {
    await e.cleanup();
  }
});
