// The binary COPY writer against real PostgreSQL: what PostgreSQL reads back is what was
// written, for every type the fact tables use, including the awkward values (text with tabs,
// newlines and backslashes that text COPY would have to escape, every byte value in a bytea,
// 64-bit extremes, times before 2000 and after 2038, NULL).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CopyBinaryWriter } from './copy-binary.ts';
import { postgresEngine } from './test-engines.ts';

describe('binary COPY on postgresql', () => {
  const engine = postgresEngine();
  after(() => engine.cleanup());

  test('every field type reads back as written', async () => {
    const sql = await engine.fresh();
    await sql.exec('CREATE TABLE t (i8 bigint, ts timestamptz, tx text, i4 integer, b boolean, j jsonb, by bytea)');
    const all_bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const rows = [
      { i8: -(1n << 63n), ts: 0n, tx: 'tab\there\nnew line \\ back\\slash é ✓', i4: -2147483648, b: true, j: '{"a": [1, 2.5, null], "b": {"c": "\\"q\\""}}', by: all_bytes },
      { i8: (1n << 63n) - 1n, ts: 4_102_444_800n, tx: '', i4: 2147483647, b: false, j: '{}', by: new Uint8Array(0) },
      { i8: 42n, ts: 946_684_800n, tx: 'GET_/webmail/src/right_main.php', i4: 300, b: false, j: '{"ttfr_ns": {"count": 3, "sum": 1.5e9, "min": 1e-3, "max": 1e300}}', by: Uint8Array.of(0, 0x5c, 0x09, 0x0a) },
    ];
    const w = new CopyBinaryWriter(16); // tiny, so that it has to grow
    for (const r of rows) w.tuple(7).int8(r.i8).timestamptzSeconds(r.ts).text(r.tx).int4(r.i4).bool(r.b).jsonb(r.j).bytea(r.by);
    w.tuple(7).null().null().null().null().null().null().null();
    await sql.transaction(async (tx) => tx.copyIn!('COPY t FROM STDIN WITH (FORMAT binary)', w.finish()));
    const back = await sql.query<Record<string, unknown>>('SELECT i8, extract(epoch FROM ts)::bigint AS ts, tx, i4, b, j, by FROM t');
    assert.equal(back.length, 4);
    rows.forEach((r, k) => {
      const got = back[k]!;
      assert.equal(got['i8'], r.i8);
      assert.equal(got['ts'], r.ts);
      assert.equal(got['tx'], r.tx);
      assert.equal(got['i4'], r.i4);
      assert.equal(got['b'], r.b);
      assert.deepEqual(got['j'], JSON.parse(r.j));
      assert.deepEqual(new Uint8Array(got['by'] as Buffer), r.by);
    });
    assert.deepEqual(Object.values(back[3]!), [null, null, null, null, null, null, null]);
  });

  test('a tuple with the wrong number of fields is refused before anything is sent', () => {
    const w = new CopyBinaryWriter();
    w.tuple(2).int4(1);
    assert.throws(() => w.finish(), /1 fields short/);
    const v = new CopyBinaryWriter();
    v.tuple(1).int4(1);
    assert.throws(() => v.int4(2), /more fields than the tuple announced/);
  });
});
