/**
 * Live capture (`wiretime sensor -i`) against real servers and real clients on the
 * loopback interface. Needs root and what .ci/run installs: libpcap-dev (cap's patched
 * addon), tcpdump, nginx, redis-server, PostgreSQL (127.0.0.1:5432, trust), curl, psql,
 * redis-cli.
 *
 * Known server delays, from the servers themselves:
 * - PostgreSQL: `SELECT pg_sleep(0.05)` answers after at least 50 ms;
 * - Redis: a Lua script that spins until Redis's own TIME has moved 50 ms;
 * - nginx: proxies to an upstream (this process) that answers 50 ms after the request.
 * Accuracy: tcpdump records the same traffic at the same time with nanosecond timestamps;
 * the sensor's file mode on tcpdump's file is the reference for every live transaction.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { CapModule } from '../sensor/src/capture/live-source.ts';
import { readCaptureFile } from '../sensor/src/capture/pcap-file-source.ts';
import type { ConnectionRecord, OutputRecord, StatisticsRecord, SummaryRecord, TransactionRecord } from '../sensor/src/output/records.ts';

const ROOT = join(import.meta.dirname, '..');
const WIRETIME = join(ROOT, 'bin/wiretime.js');
const DELAY_NS = 50_000_000;
/**
 * "within a few milliseconds" of the known delay: the median of a server's three answers.
 * Any one answer may take longer when a server is scheduled late on a busy machine (seen:
 * 70 and 91 ms); each is then bounded by the client's own wait, and its exactness is the
 * comparison with tcpdump below.
 */
const SLACK_NS = 10_000_000;
/**
 * Live against file mode on tcpdump's file. The two captures' timestamps of one loopback
 * packet are the kernel's, but taken apart for the two sockets: usually a few µs apart,
 * 20.5 µs once on a 2-core host running the whole suite. A timestamp taken in user space
 * instead would be off by up to the 10 ms the kernel may hold a block of packets.
 */
const ACCURACY_NS = 200_000;
const PG_PORT = 5432;
const REDIS_PORT = 6379;
/** the comment makes the Query message's size (request_bytes) its own among other users' queries */
const PG_QUERY = 'SELECT pg_sleep(0.05) /* wiretime live-capture test */';
const REDIS_SCRIPT = "local t=redis.call('TIME') local s=t[1]*1000000+t[2] local n repeat n=redis.call('TIME') until n[1]*1000000+n[2]-s >= 50000 return 1";

const dir = mkdtempSync(join(tmpdir(), 'wiretime-live-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// ------------------------------------------------------------------ helpers

interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts a command and waits until its stderr matches `ready` (it has opened its capture). */
async function start(cmd: string, args: string[], ready: RegExp, timeout_ms = 30_000): Promise<Running> {
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + timeout_ms;
  while (!ready.test(err)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${cmd} ${args.join(' ')} did not get ready (exit ${child.exitCode}): ${err}`);
    }
    await sleep(20);
  }
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function stop(r: Running): Promise<number | null> {
  r.child.kill('SIGINT');
  return r.exited;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function sensorArgs(...args: string[]): string[] {
  return [WIRETIME, 'sensor', ...args];
}

function jsonLines(text: string): OutputRecord[] {
  return text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as OutputRecord);
}

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, timeout_ms = 10_000): Promise<void> {
  const deadline = Date.now() + timeout_ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.on('connect', () => { c.destroy(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await sleep(50);
  }
}

/** RFC 3339 with nanoseconds → [seconds, nanoseconds]. */
function parseTime(t: string): [number, number] {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(t);
  assert.ok(m, `time ${t}`);
  const frac = (m[2] ?? '').padEnd(9, '0');
  return [Date.parse(`${m[1]}Z`) / 1000, Number(frac)];
}

function diffNs(a: string | null, b: string | null): number {
  if (a === null || b === null) return a === b ? 0 : Infinity;
  const [as, an] = parseTime(a);
  const [bs, bn] = parseTime(b);
  return Math.abs((as - bs) * 1e9 + (an - bn));
}

/** Size of a RESP array of bulk strings (what redis-cli sends for a command). */
function respBytes(args: string[]): number {
  let n = `*${args.length}\r\n`.length;
  for (const a of args) n += `$${Buffer.byteLength(a)}\r\n`.length + Buffer.byteLength(a) + 2;
  return n;
}

function transactions(records: OutputRecord[]): TransactionRecord[] {
  return records.filter((r): r is TransactionRecord => r.type === 'transaction');
}

// ------------------------------------------------------------------ servers

let upstream: ChildProcess | null = null;
let nginx: ChildProcess | null = null;
let nginx_port = 0;

/** The upstream nginx proxies to, in a process of its own: answers 50 ms after the request arrives. */
const UPSTREAM = `
const server = require('node:http').createServer((req, res) => {
  req.resume();
  setTimeout(() => res.end('slow\\n'), ${DELAY_NS / 1e6});
});
server.listen(Number(process.argv[1]), '127.0.0.1');
`;

async function startServers(): Promise<void> {
  const upstream_port = await freePort();
  upstream = spawn(process.execPath, ['-e', UPSTREAM, String(upstream_port)], { stdio: 'ignore' });
  await waitForPort(upstream_port);
  nginx_port = await freePort();
  const prefix = join(dir, 'nginx');
  execFileSync('mkdir', ['-p', join(prefix, 'logs'), join(prefix, 'tmp')]);
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(conf, `worker_processes 1;
daemon off;
error_log ${prefix}/logs/error.log;
pid ${prefix}/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  server {
    listen 127.0.0.1:${nginx_port};
    location / { proxy_pass http://127.0.0.1:${upstream_port}; }
  }
}
`);
  const bin = ['/usr/sbin/nginx', 'nginx'].find((b) => { try { execFileSync(b, ['-v'], { stdio: 'ignore' }); return true; } catch { return false; } });
  assert.ok(bin, 'nginx is not installed (apt-get install -y nginx; .ci/run does it)');
  nginx = spawn(bin, ['-p', prefix, '-c', conf], { stdio: 'ignore' });
  await waitForPort(nginx_port);
  await waitForPort(PG_PORT);
  await waitForPort(REDIS_PORT);
}

async function stopServers(): Promise<void> {
  if (nginx !== null) {
    const exited = new Promise((resolve) => nginx!.on('exit', resolve));
    nginx.kill('SIGTERM');
    await exited;
  }
  upstream?.kill('SIGTERM');
}

const execFileAsync = promisify(execFile);

/**
 * One request to each server with the real clients, one after the other. Asynchronous:
 * nginx's upstream runs in this process and must answer while curl waits.
 */
async function runClients(): Promise<void> {
  const timeout = 20_000;
  const timed = async (name: string, run: () => Promise<unknown>): Promise<void> => {
    const t0 = process.hrtime.bigint();
    await run();
    (client_elapsed_ns[name] ??= []).push(Number(process.hrtime.bigint() - t0));
  };
  await timed('nginx', () => execFileAsync('curl', ['-sS', '--max-time', '10', '-o', '/dev/null', `http://127.0.0.1:${nginx_port}/slow`], { timeout }));
  await timed('postgresql', () => execFileAsync('psql', ['-h', '127.0.0.1', '-p', String(PG_PORT), '-U', 'postgres', '-d', 'postgres', '-Atqc', PG_QUERY],
    { env: { ...process.env, PGSSLMODE: 'disable' }, timeout }));
  await timed('redis', () => execFileAsync('redis-cli', ['-h', '127.0.0.1', '-p', String(REDIS_PORT), 'EVAL', REDIS_SCRIPT, '0'], { timeout }));
}

/** Per server, how long each client run took as the test saw it (process start to exit): more than the server's answer took. */
const client_elapsed_ns: Record<string, number[]> = {};

// ------------------------------------------------------------------ tests

describe('live capture on loopback, real servers and clients', () => {
  const filter = (): string[] => ['tcp', 'port', String(nginx_port), 'or', 'tcp', 'port', String(PG_PORT), 'or', 'tcp', 'port', String(REDIS_PORT)];
  const pcap = join(dir, 'tcpdump.pcap');
  let live: OutputRecord[] = [];
  let live_code: number | null = null;
  let live_stderr = '';
  let tcpdump_stderr = '';

  before(async () => {
    await startServers();
    // Not measured: nginx's first request also opens its upstream connection.
    await execFileAsync('curl', ['-sS', '--max-time', '10', '-o', '/dev/null', `http://127.0.0.1:${nginx_port}/warm-up`], { timeout: 20_000 });
    // Immediate mode: without it tcpdump loses the packets of the kernel block still open when
    // it stops. Its ring then has one snap-length frame per packet: 64 MiB (-B, KiB) so that a
    // busy machine does not make it drop.
    const tcpdump = await start('tcpdump', ['-i', 'lo', '-n', '-Z', 'root', '--immediate-mode', '-U', '-B', '65536',
      '--time-stamp-precision=nano', '-w', pcap, ...filter()], /listening on/);
    const sensor = await start(process.execPath, sensorArgs('-i', 'lo', '--transactions', '-', ...filter()), /listening on lo/);
    for (let i = 0; i < 3; i++) await runClients();
    // Let both captures see the last packets (FIN/ACK) before they stop.
    await sleep(500);
    live_code = await stop(sensor);
    live_stderr = sensor.stderr();
    live = jsonLines(sensor.stdout());
    await stop(tcpdump);
    tcpdump_stderr = tcpdump.stderr();
  });
  after(stopServers);

  test('the sensor ends cleanly on SIGINT, with kernel statistics and no drops', () => {
    assert.equal(live_code, 0, live_stderr);
    const stats = live.at(-1) as StatisticsRecord & { live_capture: Record<string, unknown> };
    assert.equal(stats.type, 'statistics');
    assert.equal(stats.kernel_drops, 0);
    assert.equal(stats.live_capture.interface, 'lo');
    assert.equal(stats.live_capture.nanosecond_timestamps, true);
    assert.equal(stats.live_capture.kernel_drops, 0);
    assert.equal(stats.live_capture.interface_drops, 0);
    assert.ok(stats.packets > 0);
  });

  test('ttfr_ns of each server is at least its known delay and within a few ms of it', () => {
    const tx = transactions(live);
    const http = tx.filter((t) => t.server_port === nginx_port && t.subject === 'GET /slow');
    // The PostgreSQL Query message: 'Q', int32 length, the text and its NUL.
    const pg = tx.filter((t) => t.server_port === PG_PORT && t.request_bytes === 1 + 4 + PG_QUERY.length + 1);
    const redis = tx.filter((t) => t.server_port === REDIS_PORT && t.request_bytes === respBytes(['EVAL', REDIS_SCRIPT, '0']));
    for (const [name, list] of [['nginx', http], ['postgresql', pg], ['redis', redis]] as const) {
      assert.equal(list.length, 3, `${name}: ${JSON.stringify(tx.map((t) => [t.server_port, t.request_bytes, t.ttfr_ns]))}`);
      process.stderr.write(`# ${name}: ttfr_ns ${list.map((t) => t.ttfr_ns).join(', ')}\n`);
      list.sort((x, y) => x.req_first!.localeCompare(y.req_first!));
      list.forEach((t, i) => {
        assert.ok(t.ttfr_ns !== null && t.ttfr_ns >= DELAY_NS, `${name}: ttfr_ns ${t.ttfr_ns} < ${DELAY_NS}`);
        const waited_ns = client_elapsed_ns[name]![i]!;
        assert.ok(t.ttfr_ns < waited_ns, `${name}: ttfr_ns ${t.ttfr_ns}, but the client's whole run took ${waited_ns} ns`);
        assert.equal(t.outcome, 'ok');
      });
      const median = list.map((t) => t.ttfr_ns!).sort((x, y) => x - y)[1]!;
      assert.ok(median <= DELAY_NS + SLACK_NS, `${name}: median ttfr_ns ${median} more than ${SLACK_NS} ns over ${DELAY_NS}`);
    }
  });

  test('every live transaction equals file-mode analysis of tcpdump\'s nanosecond capture within 200 µs', () => {
    assert.match(tcpdump_stderr, /\b0 packets dropped by kernel/, 'the reference capture is complete');
    const r = execFileSync(process.execPath, sensorArgs('-r', pcap, '--transactions', '-'), { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 30 });
    // tcpdump ran a little longer than the sensor, and other users of the same servers may
    // be talking too: compare every connection the live capture saw from SYN to close.
    const conn = (c: { client: string; client_port: number; server: string; server_port: number }): string => `${c.client}:${c.client_port}>${c.server}:${c.server_port}`;
    const whole = new Set(live.filter((c): c is ConnectionRecord => c.type === 'connection' && c.syn !== null && c.outcome === 'closed').map(conn));
    const key = (t: TransactionRecord): string => `${conn(t)} ${t.request_bytes}/${t.response_bytes}`;
    const sortKey = (a: TransactionRecord, b: TransactionRecord): number => (conn(a) + a.req_first).localeCompare(conn(b) + b.req_first);
    const a = transactions(live).filter((t) => whole.has(conn(t))).sort(sortKey);
    const b = transactions(jsonLines(r)).filter((t) => whole.has(conn(t))).sort(sortKey);
    assert.ok(a.filter((t) => t.server_port === nginx_port).length === 3, `live transactions: ${a.length}`);
    assert.ok(a.length >= 9, `live transactions: ${a.length}`);
    assert.deepEqual(a.map(key), b.map(key));
    let worst = 0;
    for (let i = 0; i < a.length; i++) {
      const x = a[i]!;
      const y = b[i]!;
      assert.deepEqual([x.protocol, x.signature, x.outcome, x.server_pkts], [y.protocol, y.signature, y.outcome, y.server_pkts]);
      for (const f of ['req_first', 'req_last', 'rsp_first', 'rsp_last', 'rsp_acked'] as const) {
        const d = diffNs(x[f], y[f]);
        worst = Math.max(worst, d);
        assert.ok(d <= ACCURACY_NS, `${key(x)} ${f}: live ${x[f]} file ${y[f]}`);
      }
      for (const f of ['request_ns', 'ttfr_ns', 'ttlr_ns', 'ttla_ns', 'rtt_ns'] as const) {
        const d = x[f] === null || y[f] === null ? (x[f] === y[f] ? 0 : Infinity) : Math.abs(x[f]! - y[f]!);
        worst = Math.max(worst, d);
        assert.ok(d <= ACCURACY_NS, `${key(x)} ${f}: live ${x[f]} file ${y[f]}`);
      }
    }
    process.stderr.write(`# live vs tcpdump file: ${a.length} transactions, largest difference ${worst} ns\n`);
  });

  test('the patched binding reads tcpdump\'s file (openOffline, readBatch) exactly as the file reader does', async () => {
    const { Cap } = createRequire(import.meta.url)('cap') as CapModule;
    const c = new Cap();
    const buf = Buffer.alloc(1 << 20);
    c.openOffline(pcap, '', buf);
    const fromCap: string[] = [];
    for (let n = c.readBatch(0, buf.length, 0); n >= 0; n = c.readBatch(0, buf.length, 0)) {
      for (let p = 0; p < n;) {
        const caplen = buf.readUInt32LE(p + 8);
        fromCap.push(`${buf.readUInt32LE(p)}.${buf.readUInt32LE(p + 4)} ${caplen}/${buf.readUInt32LE(p + 12)} ${buf.subarray(p + 16, p + 16 + caplen).toString('hex')}`);
        p += 16 + caplen;
      }
    }
    c.close();
    const fromReader: string[] = [];
    await readCaptureFile(pcap, {
      onPacket(b, off, caplen, wirelen, _lt, s, ns) {
        fromReader.push(`${s}.${ns} ${caplen}/${wirelen} ${Buffer.from(b.subarray(off, off + caplen)).toString('hex')}`);
      },
    });
    assert.ok(fromReader.length > 0);
    assert.equal(fromCap.length, fromReader.length);
    for (let i = 0; i < fromCap.length; i++) assert.equal(fromCap[i], fromReader[i], `packet ${i}`);
  });
});

describe('live capture: the capture clock on a quiet link', () => {
  test('with no packets, ticks expire idle flows and close intervals before the sensor stops', async () => {
    const sensor = await start(process.execPath, sensorArgs('-i', 'lo', '--transactions', '-', '--summaries', '-', '--interval', '1', '--grace', '0',
      '--idle-timeout', '2', 'tcp', 'port', String(REDIS_PORT)), /listening on lo/);
    // One request on a connection then left open and silent: only the clock can end it.
    const socket = connect(REDIS_PORT, '127.0.0.1');
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
    const answered = new Promise<void>((resolve) => socket.once('data', () => resolve()));
    socket.write('*1\r\n$4\r\nPING\r\n');
    await answered;
    const client_port = socket.localPort!;
    const deadline = Date.now() + 15_000;
    type Line = OutputRecord | SummaryRecord;
    const mine = (): Line[] => (jsonLines(sensor.stdout()) as Line[]).filter((r) => r.type === 'summary' || (r.type !== 'statistics' && r.client_port === client_port));
    while (!mine().some((r) => r.type === 'summary') && Date.now() < deadline) await sleep(100);
    const before_stop = mine();
    socket.destroy();
    assert.equal(await stop(sensor), 0, sensor.stderr());
    const tx = before_stop.filter((r): r is TransactionRecord => r.type === 'transaction');
    assert.deepEqual(tx.map((t) => [t.request_bytes, t.response_bytes, t.outcome]), [[respBytes(['PING']), '+PONG\r\n'.length, 'ok']]);
    assert.deepEqual(before_stop.filter((r) => r.type === 'connection').map((c) => (c as ConnectionRecord).outcome), ['timed_out']);
    const summaries = before_stop.filter((r) => r.type === 'summary' && r.server_port === REDIS_PORT);
    assert.ok(summaries.length >= 1, 'an interval summary was written while the link was quiet');
  });
});

describe('live capture: privileges and bad input', () => {
  test('-u nobody -g nogroup: every thread gives up root once the capture is open, and capture goes on', async () => {
    const sensor = await start(process.execPath, sensorArgs('-i', 'lo', '-u', 'nobody', '-g', 'nogroup', '--transactions', '-', 'tcp', 'port', String(REDIS_PORT)), /listening on lo/);
    const pid = sensor.child.pid!;
    const uid = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('getent', ['group', 'nogroup'], { encoding: 'utf8' }).split(':')[2]);
    const tasks = readdirSync(`/proc/${pid}/task`);
    assert.ok(tasks.length > 1, 'a capture thread besides the main one');
    for (const task of tasks) {
      const status = readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8');
      // real, effective, saved and filesystem ids
      assert.match(status, new RegExp(`^Uid:\\t${uid}\\t${uid}\\t${uid}\\t${uid}$`, 'm'), `thread ${task}`);
      assert.match(status, new RegExp(`^Gid:\\t${gid}\\t${gid}\\t${gid}\\t${gid}$`, 'm'), `thread ${task}`);
      assert.match(status, /^CapEff:\t0+$/m, `thread ${task}`);
    }
    execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(REDIS_PORT), 'PING'], { stdio: 'ignore' });
    await sleep(300);
    assert.equal(await stop(sensor), 0, sensor.stderr());
    const tx = transactions(jsonLines(sensor.stdout()));
    assert.equal(tx.length, 1);
    assert.equal(tx[0]!.request_bytes, respBytes(['PING']));
  });

  const run = (...args: string[]) => {
    try {
      execFileSync(process.execPath, sensorArgs(...args), { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
      return { code: 0, stderr: '' };
    } catch (err) {
      const e = err as { status: number; stderr: string };
      return { code: e.status, stderr: e.stderr };
    }
  };

  test('an interface that does not exist: exit 1, says so', () => {
    const r = run('-i', 'nosuchif0');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /-i nosuchif0: nosuchif0: no such device/);
  });

  test('a BPF filter libpcap cannot compile: exit 2, the filter in the message', () => {
    const r = run('-i', 'lo', 'tcp', 'prot', '80');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /filter "tcp prot 80": .*syntax error/);
  });

  test('an unknown user, -r with -i, a snap length out of range: exit 2', () => {
    assert.match(run('-i', 'lo', '-u', 'no-such-user-wt').stderr, /-u no-such-user-wt: no such user/);
    assert.match(run('-i', 'lo', '-r', 'x.pcap').stderr, /-r FILE and -i INTERFACE exclude each other/);
    const s = run('-i', 'lo', '--snaplen', '10');
    assert.equal(s.code, 2);
    assert.match(s.stderr, /--snaplen 10: expected whole bytes, 64..262144/);
  });
});
