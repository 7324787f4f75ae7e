/**
 * PostgreSQL going away under a running collector: a PostgreSQL cluster of this test's
 * own (initdb in a temporary directory, its own port, so the shared server the other
 * tests use is never touched) is stopped while a sensor ships and started again. The
 * collector must stop acknowledging (UNAVAILABLE), the sensor keep spooling, and once the
 * database is back every batch must be stored exactly once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { SummaryStore } from '../collector/src/store/summary-store.ts';
import { startCollector, type RunningCollector } from '../collector/src/collector-server.ts';
import { Spool } from '../sensor/src/ship/spool.ts';
import { Shipper } from '../sensor/src/ship/collector-client.ts';

const BIN = (() => {
  const root = '/usr/lib/postgresql';
  const version = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a))[0] : undefined;
  if (version === undefined) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install -y postgresql)');
  return join(root, version, 'bin');
})();
const PORT = 25_000 + (process.pid % 5_000);
let dir = '';

/** Runs a PostgreSQL tool as the postgres user (initdb refuses root). */
function asPostgres(tool: string, ...args: string[]): void {
  const cmd = [join(BIN, tool), ...args];
  if (process.getuid?.() === 0) execFileSync('runuser', ['-u', 'postgres', '--', ...cmd], { stdio: 'pipe' });
  else execFileSync(cmd[0]!, cmd.slice(1), { stdio: 'pipe' });
}
const pgStart = () => asPostgres('pg_ctl', '-D', join(dir, 'data'), '-l', join(dir, 'log'), '-w', '-o', `-p ${PORT} -k ${dir} -c listen_addresses=127.0.0.1`, 'start');
const pgStop = () => asPostgres('pg_ctl', '-D', join(dir, 'data'), '-m', 'fast', '-w', 'stop');

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'wiretime-pg-'));
  chmodSync(dir, 0o777);
  asPostgres('initdb', '-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres');
  pgStart();
});
after(() => {
  try { pgStop(); } catch { /* already stopped */ }
  rmSync(dir, { recursive: true, force: true });
});

const URL = () => `postgres://postgres@127.0.0.1:${PORT}/postgres`;
const summary = (i: number) => ({ intervalStartS: 1_767_225_600n + 300n * BigInt(i), intervalS: 300, server: '10.0.0.1', serverPort: 80, transport: 'tcp', protocol: 'http', signature: 'GET', count: 1n,
  outcomes: [{ outcome: 'ok', count: 1n }], metrics: [{ name: 'ttfr_ns', count: 1n, sum: 1e6, min: 1e6, max: 1e6 }] });

async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  for (let t = 0; t < ms; t += 50) {
    if (check()) return true;
    await sleep(50);
  }
  return check();
}

test('PostgreSQL stopped and started under a running collector: no acks while it is away, every batch stored once after', async () => {
  const store = await SummaryStore.open(URL(), null);
  let collector: RunningCollector | null = null;
  const spool = await Spool.open({ dir: join(dir, 'spool') });
  let shipper: Shipper | null = null;
  try {
    collector = await startCollector(store, { listen: '127.0.0.1:0' });
    shipper = new Shipper(spool, { address: `127.0.0.1:${collector.port}`, sensor_id: 'outage', backoff_initial_ms: 50, backoff_max_ms: 200 });
    shipper.start();
    for (let i = 0; i < 5; i++) await spool.append([summary(i) as never]);
    assert.ok(await waitFor(() => spool.stats().acked_sequence === 5n, 10_000), 'first five acknowledged');

    pgStop();
    for (let i = 5; i < 10; i++) await spool.append([summary(i) as never]);
    await sleep(1_000);
    assert.equal(spool.stats().acked_sequence, 5n, 'nothing acknowledged while PostgreSQL is down');
    assert.ok(collector.counters.store_unavailable >= 1);
    assert.match(shipper.stats().last_error ?? '', /UNAVAILABLE/);

    pgStart();
    assert.ok(await waitFor(() => spool.stats().acked_sequence === 10n, 20_000), `all ten acknowledged (now ${spool.stats().acked_sequence})`);
    const c = new pg.Client({ connectionString: URL() });
    await c.connect();
    try {
      const batches = await c.query(`SELECT sequence FROM ingest_batches WHERE sensor_id = 'outage' ORDER BY sequence`);
      assert.deepEqual(batches.rows.map((r) => Number(r.sequence)), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      const rows = await c.query(`SELECT count(*)::int AS n FROM summaries_l1 WHERE sensor_id = 'outage'`);
      assert.equal(rows.rows[0].n, 10);
    } finally {
      await c.end();
    }
  } finally {
    await shipper?.stop(0);
    await collector?.close();
    await spool.close();
    await store.close();
  }
});
