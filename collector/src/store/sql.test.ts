// The Sql interface behaves the same on both engines.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES } from './test-engines.ts';

for (const makeEngine of ENGINES) {
  const engine = makeEngine();
  describe(`Sql on ${engine.name}`, () => {
    after(() => engine.cleanup());

    test('types map the same way, parameters are bound, transactions commit and roll back', async () => {
      const sql = await engine.fresh();
      assert.equal(sql.engine, engine.name);
      const [row] = await sql.query(
        `SELECT $1::int8 AS i8, $2::int4 AS i4, $3::float8 AS f8, $4::numeric AS num, $5::bytea AS b, $6::jsonb AS j,
                $7::timestamptz AS ts, $8::inet AS ip, $9::text AS t, $10::boolean AS bo, NULL::int8 AS n`,
        [9_007_199_254_740_993n, 7, 0.1, '12.50', new Uint8Array([0, 1, 254, 255]), '{"a":[1,"x"]}', '2024-05-01T00:00:00Z',
          '2001:db8::1', "it's; DROP TABLE x", true],
      );
      assert.ok(row);
      assert.deepEqual({ ...row, b: new Uint8Array(row.b as Uint8Array) }, {
        i8: 9_007_199_254_740_993n, i4: 7, f8: 0.1, num: '12.50', b: new Uint8Array([0, 1, 254, 255]), j: { a: [1, 'x'] },
        ts: new Date('2024-05-01T00:00:00Z'), ip: '2001:db8::1', t: "it's; DROP TABLE x", bo: true, n: null,
      });

      await sql.exec('CREATE TABLE t (x integer PRIMARY KEY); INSERT INTO t VALUES (1);');
      assert.equal(await sql.transaction(async (tx) => {
        await tx.query('INSERT INTO t VALUES ($1)', [2]);
        return 'done';
      }), 'done');
      await assert.rejects(sql.transaction(async (tx) => {
        await tx.query('INSERT INTO t VALUES ($1)', [3]);
        await tx.query('INSERT INTO t VALUES ($1)', [1]); // duplicate key
      }), /duplicate key/);
      await assert.rejects(sql.transaction(async (tx) => {
        await tx.query('INSERT INTO t VALUES ($1)', [4]);
        throw new Error('application error');
      }), /application error/);
      assert.deepEqual(await sql.query('SELECT x FROM t ORDER BY x'), [{ x: 1 }, { x: 2 }]);
    });
  });
}
