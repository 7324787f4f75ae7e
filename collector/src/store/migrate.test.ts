// Migrations on both engines; concurrent collectors on real PostgreSQL.
import { after, afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadMigrations, migrate, migration } from './migrate.ts';
import { PgSql } from './pg-sql.ts';
import type { Sql } from './sql.ts';
import { ENGINES, postgresEngine } from './test-engines.ts';

const SCHEMA_OBJECTS_V1 = ['schema_migrations', 'sensors', 'ingest_batches', 'servers', 'signatures', 'summaries_l1', 'summaries_l1_default',
  'summary_sketches', 'summary_sketches_default', 'summaries_l1_named'];
const SCHEMA_OBJECTS = [...SCHEMA_OBJECTS_V1, 'summaries_l2', 'summary_sketches_l2', 'rollup_state'];

async function missingObjects(sql: Sql, objects: readonly string[] = SCHEMA_OBJECTS): Promise<string[]> {
  const out: string[] = [];
  for (const name of objects) {
    const r = await sql.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [name]);
    if (r[0]!.t === null) out.push(name);
  }
  return out;
}

const versions = (sql: Sql) => sql.query<{ version: number; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version');

for (const makeEngine of ENGINES) {
  const engine = makeEngine();
  describe(`migrations on ${engine.name}`, () => {
    afterEach(() => engine.cleanup());
    after(() => engine.cleanup());

    test('the shipped migrations: numbered 1, 2, 3 … with no gap, all applied from empty, then a no-op', async () => {
      const sql = await engine.fresh();
      const files = await loadMigrations();
      assert.deepEqual(files.map((m) => m.version), files.map((_, i) => i + 1));
      assert.equal(files[0]!.name, 'initial');
      assert.deepEqual(await migrate(sql), { applied: files.map((m) => m.version) });
      assert.deepEqual(await missingObjects(sql), []);
      assert.deepEqual(await versions(sql), files.map((m) => ({ version: m.version, name: m.name })));
      assert.deepEqual(await migrate(sql), { applied: [] });
    });

    test('a database of version 1 with stored batches upgrades: its batches keep an empty stream id and stay duplicates of themselves', async () => {
      const sql = await engine.fresh();
      const files = await loadMigrations();
      await migrate(sql, files.filter((m) => m.version === 1));
      await sql.query(`INSERT INTO sensors (sensor_id) VALUES ('old')`);
      await sql.query(`INSERT INTO ingest_batches (sensor_id, sequence, summary_count) VALUES ('old', 7, 3)`);
      assert.deepEqual((await migrate(sql)).applied, files.filter((m) => m.version > 1).map((m) => m.version));
      assert.deepEqual(await sql.query('SELECT sensor_id, stream_id, sequence FROM ingest_batches'), [{ sensor_id: 'old', stream_id: '', sequence: 7n }]);
      await assert.rejects(sql.query(`INSERT INTO ingest_batches (sensor_id, stream_id, sequence, summary_count) VALUES ('old', '', 7, 1)`), /duplicate key/);
      await sql.query(`INSERT INTO ingest_batches (sensor_id, stream_id, sequence, summary_count) VALUES ('old', 'new-stream', 7, 1)`);
      await assert.rejects(sql.query(`INSERT INTO ingest_batches (sensor_id, sequence, summary_count) VALUES ('old', 8, 1)`), /null value in column "stream_id"/);
    });

    test('from empty, then again as a no-op, then later ones in version order', async () => {
      const sql = await engine.fresh();
      const files = (await loadMigrations()).filter((m) => m.version === 1);
      assert.deepEqual(await migrate(sql, files), { applied: [1] });
      assert.deepEqual(await versions(sql), [{ version: 1, name: 'initial' }]);

      assert.deepEqual(await migrate(sql, files), { applied: [] });
      assert.deepEqual(await versions(sql), [{ version: 1, name: 'initial' }]);

      const later = [...files,
        migration(3, 'third', 'INSERT INTO extra_t VALUES (3);'),
        migration(2, 'second', 'CREATE TABLE extra_t (x integer); INSERT INTO extra_t VALUES (2);')];
      assert.deepEqual(await migrate(sql, later), { applied: [2, 3] });
      assert.deepEqual(await sql.query('SELECT x FROM extra_t ORDER BY x'), [{ x: 2 }, { x: 3 }]);
      assert.deepEqual(await migrate(sql, later), { applied: [] });
    });

    test('a failing migration leaves nothing behind; an edited one is refused', async () => {
      const sql = await engine.fresh();
      const files = (await loadMigrations()).filter((m) => m.version === 1);
      const bad = [...files, migration(2, 'bad', 'CREATE TABLE half_done (x integer); SELECT 1 / 0;')];
      await assert.rejects(migrate(sql, bad), /migration 2_bad failed: division by zero/);
      assert.deepEqual(await versions(sql), [{ version: 1, name: 'initial' }]);
      assert.deepEqual(await sql.query(`SELECT to_regclass('half_done') AS t`), [{ t: null }]);

      const edited = [migration(1, 'initial', files[0]!.sql + '\n-- edited\n')];
      await assert.rejects(migrate(sql, edited), /migration 1_initial was changed after it was applied/);
    });
  });
}

describe('concurrent migrations on postgresql', () => {
  const engine = postgresEngine();
  after(() => engine.cleanup());

  test('collectors starting at once apply each migration exactly once', async () => {
    const url = await engine.freshUrl!();
    const files = (await loadMigrations()).filter((m) => m.version === 1);
    const list = [...files, migration(2, 'second', 'CREATE TABLE extra_t (x integer); INSERT INTO extra_t VALUES (2);')];
    const pools = Array.from({ length: 5 }, () => new PgSql(url, { max: 2 }));
    try {
      const results = await Promise.all(pools.map((p) => migrate(p, list)));
      // every version applied by exactly one of them
      assert.deepEqual(results.flatMap((r) => r.applied).sort(), [1, 2]);
      assert.deepEqual(await versions(pools[0]!), [{ version: 1, name: 'initial' }, { version: 2, name: 'second' }]);
      assert.deepEqual(await pools[0]!.query('SELECT x FROM extra_t'), [{ x: 2 }]);
      assert.deepEqual(await missingObjects(pools[0]!, SCHEMA_OBJECTS_V1), []);
    } finally {
      for (const p of pools) await p.close();
    }
  });
});
