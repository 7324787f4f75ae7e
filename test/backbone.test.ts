/**
 * Sensor → gRPC → collector → PostgreSQL, each a real process: a corpus capture through
 * `wiretime sensor --collector`, a `wiretime collector` on a loopback port writing to a
 * real PostgreSQL (127.0.0.1:5432, a database made for this test). The stored rows must
 * equal the sensor's own `--summaries -` output, field for field and sketch byte for byte.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Shipper } from '../sensor/src/ship/collector-client.ts';
import { Spool } from '../sensor/src/ship/spool.ts';
import type { SummaryRecord } from '../sensor/src/output/records.ts';

const ROOT = join(import.meta.dirname, '..');
const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = `wiretime_e2e_${process.pid}_${Date.now()}`;
const URL = `postgres://postgres@127.0.0.1:5432/${DB}`;
const TOKEN = 'e2e-sensor-token-0123456789';
const TOKEN_2 = 'e2e-second-sensor-token-0123456789';
const TOKEN_3 = 'e2e-third-sensor-token-0123456789';
const TOKEN_4 = 'e2e-fourth-sensor-token-0123456789';
const TOKEN_5 = 'e2e-fifth-sensor-token-0123456789';
const TOKEN_6 = 'e2e-sixth-sensor-token-0123456789';
let dir = '';
let collector: ChildProcess | null = null;

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN });
  try {
    await c.connect();
  } catch (err) {
    throw new Error(`PostgreSQL is not reachable on 127.0.0.1:5432 (${(err as Error).message}); .ci/run starts it`);
  }
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wiretime-e2e-'));
  await admin(`CREATE DATABASE ${DB}`);
});
after(async () => {
  collector?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  if (process.env['KEEP_E2E_DB'] === undefined) await admin(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`); else console.log('kept', DB);
});

const others: ChildProcess[] = [];
after(() => { for (const c of others) c.kill('SIGKILL'); });

/** Starts `wiretime collector` and resolves with its port once it listens. */
function startCollector(extra = false, listen = '127.0.0.1:0', args: string[] = []): Promise<number> {
  const tokens = join(dir, 'tokens');
  writeFileSync(tokens, `e2e ${TOKEN}\ne2e-2 ${TOKEN_2}\ne2e-3 ${TOKEN_3}\ne2e-4 ${TOKEN_4}\ne2e-5 ${TOKEN_5}\ne2e-6 ${TOKEN_6}\n`);
  const child = spawn(process.execPath, [join(ROOT, 'bin/wiretime.js'), 'collector', '--listen', listen, '--database', URL, '--tokens', tokens, ...args], { cwd: ROOT });
  others.push(child); // every collector started is killed at the end
  if (!extra) collector = child;
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"listening":"[^"]*:(\d+)"/.exec(out);
      if (m !== null) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`collector exited ${code}: ${err}`)));
  });
}

test('a corpus capture through sensor, gRPC and collector lands in PostgreSQL exactly as the sensor summarised it', async () => {
  const port = await startCollector();
  const token = join(dir, 'token');
  writeFileSync(token, `${TOKEN}\n`);
  const capture = join(ROOT, 'test/fixtures/corpus/zeek/testing/btest/Traces/smtp.pcap');
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/wiretime.js'), 'sensor', '-r', capture, '--summaries', '-', '--interval', '60', '--grace', '0',
    '--sensor-id', 'e2e', '--collector', `127.0.0.1:${port}`, '--token-file', token, '--spool', join(dir, 'spool'), '--ship-timeout', '20'],
    { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>);
  const summaries = lines.filter((l) => l['type'] === 'summary') as unknown as SummaryRecord[];
  const stats = lines.at(-1) as { shipping: { spool: { acked_sequence: number; last_sequence: number } } };
  assert.ok(summaries.length >= 5, `summaries: ${summaries.length}`);
  assert.equal(stats.shipping.spool.acked_sequence, stats.shipping.spool.last_sequence, 'everything acknowledged');

  const c = new pg.Client({ connectionString: URL });
  await c.connect();
  try {
    const rows = (await c.query(`SELECT extract(epoch FROM interval_start)::bigint AS start_s, interval_s, sensor_id, server, port, transport, protocol, signature,
        count, partial, outcomes, metrics FROM summaries_l1_named ORDER BY 1, server, port, protocol, signature`)).rows as Record<string, unknown>[];
    const sketches = (await c.query(`SELECT extract(epoch FROM interval_start)::bigint AS start_s, host(s.address) AS server, s.port, g.protocol, g.name AS signature, k.metric, k.sketch
        FROM summary_sketches k JOIN servers s USING (server_id) JOIN signatures g USING (signature_id)`)).rows as { start_s: string; server: string; port: number; protocol: string; signature: string; metric: string; sketch: Buffer }[];
    assert.equal(rows.length, summaries.length);
    // The sensor's counters travel with the batches (the last batch's, at the end of the file).
    const sensor = (await c.query(`SELECT packets, transactions, capture_time FROM sensors WHERE sensor_id = 'e2e'`)).rows[0] as { packets: string; transactions: string; capture_time: Date };
    const st = lines.at(-1) as { packets: number; transactions: { total: number }; last_packet: string };
    assert.equal(Number(sensor.packets), st.packets);
    assert.equal(Number(sensor.transactions), st.transactions.total);
    assert.equal(sensor.capture_time.getTime() / 1000, Math.floor(Date.parse(st.last_packet) / 1000));
    for (const s of summaries) {
      const start_s = Date.parse(s.interval_start) / 1000;
      const row = rows.find((x) => Number(x['start_s']) === start_s && x['server'] === s.server && x['port'] === s.server_port
        && x['protocol'] === s.protocol && x['signature'] === s.signature);
      assert.ok(row, `no row for ${s.interval_start} ${s.server}:${s.server_port} ${s.protocol} ${s.signature}`);
      assert.equal(row['sensor_id'], 'e2e');
      assert.equal(row['interval_s'], s.interval_s);
      assert.equal(row['transport'], s.transport);
      assert.equal(Number(row['count']), s.count);
      assert.equal(row['partial'], s.partial === true);
      assert.deepEqual(row['outcomes'], s.outcomes);
      const metrics = row['metrics'] as Record<string, { count: number; sum: number; min: number; max: number }>;
      for (const [name, m] of Object.entries(s.metrics)) {
        assert.deepEqual([Number(metrics[name]!.count), metrics[name]!.sum, metrics[name]!.min, metrics[name]!.max], [m.count, m.sum, m.min, m.max], `${name}`);
        if (m.sketch !== undefined) {
          const k = sketches.find((x) => Number(x.start_s) === start_s && x.server === s.server && x.port === s.server_port && x.protocol === s.protocol && x.signature === s.signature && x.metric === name);
          assert.ok(k, `no sketch for ${name}`);
          assert.equal(k.sketch.toString('base64'), m.sketch, `${name} sketch`);
        }
      }
    }
  } finally {
    await c.end();
  }
});

test('collector away during a run: the batches wait in the spool and the next run delivers them, nothing lost or doubled', async () => {
  const token = join(dir, 'token-2');
  writeFileSync(token, `${TOKEN_2}\n`);
  const spool = join(dir, 'spool-2');
  const sensor = (capture: string, port: number, timeout_s: string) => spawnSync(process.execPath, [join(ROOT, 'bin/wiretime.js'), 'sensor', '-r', join(ROOT, capture),
    '--summaries', '-', '--interval', '60', '--grace', '0', '--sensor-id', 'e2e-2', '--collector', `127.0.0.1:${port}`, '--token-file', token,
    '--spool', spool, '--ship-timeout', timeout_s], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  const last = (out: string) => JSON.parse(out.trim().split('\n').at(-1)!) as { shipping: { spool: { acked_sequence: number; last_sequence: number; depth_batches: number } } };

  // Nothing listens on this port: every batch stays in the spool.
  const down = sensor('test/fixtures/corpus/zeek/testing/btest/Traces/wikipedia.pcap', 9, '1');
  assert.equal(down.status, 0, down.stderr);
  const summaries = down.stdout.split('\n').filter((l) => l.includes('"type":"summary"')).length;
  const spooled = last(down.stdout).shipping.spool;
  assert.ok(summaries > 0);
  assert.equal(spooled.acked_sequence, 0);
  assert.ok(spooled.depth_batches >= 1);

  // Collector up; the next run (an empty capture) ships what the spool holds.
  collector?.kill('SIGKILL');
  const port = await startCollector();
  const up = sensor('test/fixtures/corpus/tcpdump/tests/empty.pcapng', port, '20');
  assert.equal(up.status, 0, up.stderr);
  const shipped = last(up.stdout).shipping.spool;
  assert.equal(shipped.acked_sequence, spooled.last_sequence);
  assert.equal(shipped.depth_batches, 0);
  const c = new pg.Client({ connectionString: URL });
  await c.connect();
  try {
    const { rows } = await c.query(`SELECT count(*)::int AS n FROM summaries_l1 WHERE sensor_id = 'e2e-2'`);
    assert.equal(rows[0].n, summaries);
  } finally {
    await c.end();
  }
});

test('a sensor whose spool directory was lost starts again at sequence 1: the new batches are stored, not acknowledged as old ones', async () => {
  const port = await startCollector(true);
  const token = join(dir, 'token-6');
  writeFileSync(token, `${TOKEN_6}\n`);
  const spool = join(dir, 'spool-6');
  const sensor = (capture: string) => spawnSync(process.execPath, [join(ROOT, 'bin/wiretime.js'), 'sensor', '-r', join(ROOT, capture),
    '--summaries', '-', '--interval', '60', '--grace', '0', '--sensor-id', 'e2e-6', '--collector', `127.0.0.1:${port}`, '--token-file', token,
    '--spool', spool, '--ship-timeout', '20'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  const run = (capture: string) => {
    const r = sensor(capture);
    assert.equal(r.status, 0, r.stderr);
    const st = (JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { shipping: { spool: { acked_sequence: number; last_sequence: number } } }).shipping.spool;
    assert.equal(st.acked_sequence, st.last_sequence);
    return { summaries: r.stdout.split('\n').filter((l) => l.includes('"type":"summary"')).length, last_sequence: st.last_sequence };
  };
  const first = run('test/fixtures/corpus/zeek/testing/btest/Traces/smtp.pcap');
  rmSync(spool, { recursive: true, force: true });
  const second = run('test/fixtures/corpus/zeek/testing/btest/Traces/wikipedia.pcap'); // another day, other servers
  assert.ok(first.summaries > 0 && second.summaries > 0);
  assert.ok(second.last_sequence <= first.last_sequence, 'the second spool reuses sequence numbers the first one had');
  const c = new pg.Client({ connectionString: URL });
  await c.connect();
  try {
    const { rows } = await c.query(`SELECT count(*)::int AS n, count(DISTINCT stream_id)::int AS streams FROM ingest_batches WHERE sensor_id = 'e2e-6'`);
    assert.deepEqual(rows[0], { n: first.last_sequence + second.last_sequence, streams: 2 });
    const stored = await c.query(`SELECT count(*)::int AS n FROM summaries_l1 WHERE sensor_id = 'e2e-6'`);
    assert.equal(stored.rows[0].n, first.summaries + second.summaries);
  } finally {
    await c.end();
  }
});

test('over mutual TLS with certificates from deploy/certs/make-certs.sh: the sensor ships as the sensor its certificate names', async () => {
  const pki = join(dir, 'pki');
  execFileSync(join(ROOT, 'deploy/certs/make-certs.sh'), [pki, 'localhost', 'e2e-6', 'e2e-5']);
  const port = await startCollector(true, '127.0.0.1:0', ['--tls-cert', join(pki, 'collector.crt'), '--tls-key', join(pki, 'collector.key'), '--client-ca', join(pki, 'ca.crt')]);
  const token = join(dir, 'token-6');
  writeFileSync(token, `${TOKEN_6}\n`);
  const sensor = (cert: string) => spawnSync(process.execPath, [join(ROOT, 'bin/wiretime.js'), 'sensor', '-r', join(ROOT, 'test/fixtures/corpus/zeek/testing/btest/Traces/http/get.pcap'),
    '--summaries', '/dev/null', '--interval', '60', '--grace', '0', '--sensor-id', 'e2e-6', '--collector', `localhost:${port}`, '--token-file', token,
    '--tls-ca', join(pki, 'ca.crt'), '--tls-cert', join(pki, `${cert}.crt`), '--tls-key', join(pki, `${cert}.key`),
    '--spool', join(dir, `spool-tls-${cert}`), '--ship-timeout', '5'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  const spoolOf = (out: string) => (JSON.parse(out.trim().split('\n').at(-1)!) as { shipping: { spool: { acked_sequence: number; last_sequence: number } } }).shipping.spool;
  const ok = sensor('e2e-6');
  assert.equal(ok.status, 0, ok.stderr);
  const shipped = spoolOf(ok.stdout);
  assert.ok(shipped.last_sequence >= 1);
  assert.equal(shipped.acked_sequence, shipped.last_sequence);
  // e2e-5's certificate with e2e-6's token: refused, nothing acknowledged, all kept in the spool
  const wrong = sensor('e2e-5');
  assert.equal(wrong.status, 0, wrong.stderr);
  assert.equal(spoolOf(wrong.stdout).acked_sequence, 0);
  assert.match(JSON.stringify(JSON.parse(wrong.stdout.trim().split('\n').at(-1)!).shipping), /UNAUTHENTICATED/);
});

test('two collectors serve one database at once: each sensor ships through its own, every summary lands once', async () => {
  const ports = [await startCollector(true), await startCollector(true)];
  const runs = [['e2e-3', TOKEN_3, ports[0]!, 'zeek/testing/btest/Traces/wikipedia.pcap'], ['e2e-4', TOKEN_4, ports[1]!, 'zeek/testing/btest/Traces/smtp.pcap']] as const;
  const results = await Promise.all(runs.map(([sensor_id, token, port, capture]) => new Promise<string>((resolve, reject) => {
    const token_file = join(dir, `token-${sensor_id}`);
    writeFileSync(token_file, `${token}\n`);
    const child = spawn(process.execPath, [join(ROOT, 'bin/wiretime.js'), 'sensor', '-r', join(ROOT, 'test/fixtures/corpus', capture), '--summaries', '-',
      '--interval', '60', '--grace', '0', '--sensor-id', sensor_id, '--collector', `127.0.0.1:${port}`, '--token-file', token_file,
      '--spool', join(dir, `spool-${sensor_id}`), '--ship-timeout', '20'], { cwd: ROOT });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`sensor ${sensor_id} exited ${code}: ${err}`))));
  })));
  const c = new pg.Client({ connectionString: URL });
  await c.connect();
  try {
    for (let i = 0; i < runs.length; i++) {
      const expected = results[i]!.split('\n').filter((l) => l.includes('"type":"summary"')).length;
      const { rows } = await c.query('SELECT count(*)::int AS n FROM summaries_l1 WHERE sensor_id = $1', [runs[i]![0]]);
      assert.equal(rows[0].n, expected, runs[i]![0]);
      const batches = await c.query('SELECT count(*)::int AS n FROM ingest_batches WHERE sensor_id = $1', [runs[i]![0]]);
      assert.ok(batches.rows[0].n >= 1);
    }
  } finally {
    await c.end();
  }
});

test('the collector process SIGKILLed in the middle of a stream and started again: every batch stored exactly once', async () => {
  // A free port to come back on.
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const p = (probe.address() as { port: number }).port;
      probe.close(() => resolve(p));
    });
  });
  await startCollector(false, `127.0.0.1:${port}`);
  const spool = await Spool.open({ dir: join(dir, 'spool-kill') });
  const shipper = new Shipper(spool, { address: `127.0.0.1:${port}`, sensor_id: 'e2e-5', token: TOKEN_5, backoff_initial_ms: 50, backoff_max_ms: 300, max_in_flight: 8 });
  const summary = (i: number) => ({ intervalStartS: 1_767_225_600n + 60n * BigInt(i), intervalS: 60, server: '10.9.0.1', serverPort: 443, transport: 'tcp', protocol: 'tcp', signature: 'KILL', count: 1n,
    outcomes: [{ outcome: 'ok', count: 1n }], metrics: [{ name: 'ttfr_ns', count: 1n, sum: 5e6, min: 5e6, max: 5e6 }] });
  try {
    shipper.start();
    for (let i = 0; i < 200; i++) await spool.append([summary(i) as never]);
    for (let t = 0; t < 200 && spool.stats().acked_sequence < 20n; t++) await sleep(25);
    const before_kill = spool.stats().acked_sequence;
    assert.ok(before_kill >= 20n && before_kill < 200n, `acked ${before_kill} before the kill`);
    collector!.kill('SIGKILL');
    await sleep(300);
    await startCollector(false, `127.0.0.1:${port}`);
    for (let t = 0; t < 600 && spool.stats().acked_sequence < 200n; t++) await sleep(50);
    assert.equal(spool.stats().acked_sequence, 200n);
  } finally {
    await shipper.stop(0);
    await spool.close();
  }
  const c = new pg.Client({ connectionString: URL });
  await c.connect();
  try {
    const b = await c.query(`SELECT count(*)::int AS n, count(DISTINCT sequence)::int AS d, min(sequence)::int AS lo, max(sequence)::int AS hi FROM ingest_batches WHERE sensor_id = 'e2e-5'`);
    const s2 = await c.query(`SELECT count(*)::int AS n FROM summaries_l1_named WHERE sensor_id = 'e2e-5'`);
    assert.deepEqual(b.rows[0], { n: 200, d: 200, lo: 1, hi: 200 });
    assert.equal(s2.rows[0].n, 200);
  } finally {
    await c.end();
  }
});
