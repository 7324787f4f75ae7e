/**
 * Records the capture `wiretime demo` replays (test/fixtures/demo/webmail.pcap): real servers
 * and real clients on this machine's loopback interface, recorded by tcpdump with nanosecond
 * timestamps. Run as root (tcpdump, port 143):
 *
 *   node --import tsx scripts/record-demo-traffic.ts OUT.pcap [--minutes 10]
 *
 * The scene is PasTmon's: a webmail front end (HTTP, 127.0.0.10:80) whose pages call an IMAP
 * server (127.0.0.20:143) and PostgreSQL (a cluster of its own, initdb'ed for the recording, on
 * 127.0.0.30:5432; pages run `SELECT pg_sleep(…)`). Browsers
 * (keep-alive clients) fetch pages at ~6 requests/s. Between 40% and 65% of the recording the
 * IMAP server answers FETCH slowly (+120 ms), so right_main.php (which lists the inbox through
 * it) gets slow while the other pages do not: the question the demo answers is "which page got
 * slow, since when, and was it the IMAP server behind it?".
 */
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createHttpServer, request, Agent } from 'node:http';
import { createServer as createTcpServer, connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

const out = process.argv[2];
if (out === undefined) {
  console.error('usage: record-demo-traffic.ts OUT.pcap [--minutes N]');
  process.exit(2);
}
const mi = process.argv.indexOf('--minutes');
const minutes = mi > 0 ? Number(process.argv[mi + 1]) : 10;
const total_ms = minutes * 60_000;
const started = Date.now();
const phase = () => (Date.now() - started) / total_ms;
const imapSlow = () => phase() >= 0.4 && phase() < 0.65;
let seed = 12345;
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);

// ---- IMAP server: a line protocol, tagged commands, one answer per command
const imap = createTcpServer((sock) => {
  sock.write('* OK IMAP4rev1 Service Ready\r\n');
  let buf = '';
  sock.on('data', async (d) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\r\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      const [tag, cmd] = line.split(' ');
      const base = cmd === 'FETCH' ? 8 + rnd() * 6 : 1 + rnd() * 2;
      await sleep(base + (cmd === 'FETCH' && imapSlow() ? 120 + rnd() * 40 : 0));
      if (cmd === 'FETCH') sock.write(`* 1 FETCH (FLAGS (\\Seen) RFC822.SIZE 4123)\r\n* 2 FETCH (FLAGS () RFC822.SIZE 912)\r\n${tag} OK FETCH completed\r\n`);
      else sock.write(`${tag} OK ${cmd} completed\r\n`);
    }
  });
  sock.on('error', () => undefined);
});

// ---- one IMAP connection per page view, as squirrelmail did
function imapSession(commands: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const s: Socket = connect({ host: '127.0.0.20', port: 143 });
    let i = 0;
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString();
      if (i === 0 && buf.includes('* OK')) {
        buf = '';
        s.write(`a${++i} ${commands[0]}\r\n`);
        return;
      }
      if (new RegExp(`a${i} OK`).test(buf)) {
        buf = '';
        if (i < commands.length) s.write(`a${++i} ${commands[i - 1]}\r\n`);
        else s.end();
      }
    });
    s.on('end', resolve);
    s.on('error', reject);
  });
}

// ---- PostgreSQL: a cluster of its own on 127.0.0.30 (the machine's shared one carries other traffic)
const PG_BIN = join('/usr/lib/postgresql', readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a))[0]!, 'bin');
const pgdir = mkdtempSync(join(tmpdir(), 'wiretime-demo-pg-'));
chmodSync(pgdir, 0o777);
const asPostgres = (tool: string, ...args: string[]) => execFileSync('runuser', ['-u', 'postgres', '--', join(PG_BIN, tool), ...args], { stdio: 'pipe' });
asPostgres('initdb', '-D', join(pgdir, 'data'), '-A', 'trust', '-U', 'postgres');
appendFileSync(join(pgdir, 'data', 'pg_hba.conf'), 'host all all 127.0.0.0/8 trust\n');
asPostgres('pg_ctl', '-D', join(pgdir, 'data'), '-l', join(pgdir, 'log'), '-w', '-o', `-p 5432 -k ${pgdir} -c listen_addresses=127.0.0.30`, 'start');
const db = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.30:5432/postgres', max: 4 });

const PAGE = (title: string, n: number) => `<html><head><title>${title}</title></head><body>${'<p>message row</p>'.repeat(n)}</body></html>`;

// ---- the webmail front end
const web = createHttpServer(async (req, res) => {
  const url = req.url ?? '/';
  try {
    if (url.startsWith('/webmail/src/right_main.php')) {
      await imapSession(['LOGIN user secret', 'SELECT INBOX', 'FETCH 1:2 (FLAGS RFC822.SIZE)', 'LOGOUT']);
      res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE('inbox', 40));
    } else if (url.startsWith('/webmail/src/left_main.php')) {
      await imapSession(['LOGIN user secret', 'LIST "" "*"', 'LOGOUT']);
      res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE('folders', 8));
    } else if (url.startsWith('/webmail/src/compose.php')) {
      await db.query('SELECT pg_sleep($1)', [0.004 + rnd() * 0.004]);
      res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE('compose', 12));
    } else if (url.startsWith('/webmail/src/login.php')) {
      await db.query('SELECT pg_sleep($1)', [0.002]);
      res.writeHead(302, { location: '/webmail/src/webmail.php' }).end();
    } else if (url.startsWith('/webmail/images/')) {
      res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.alloc(900, 7));
    } else {
      res.writeHead(404).end('not found');
    }
  } catch (err) {
    res.writeHead(500).end(String(err));
  }
});

const PATHS: [string, number][] = [
  ['/webmail/src/right_main.php?mailbox=INBOX', 0.3],
  ['/webmail/src/left_main.php', 0.15],
  ['/webmail/src/compose.php', 0.1],
  ['/webmail/src/login.php', 0.05],
  ['/webmail/images/sm_logo.png', 0.35],
  ['/webmail/src/missing.php', 0.05],
];

function pick(): string {
  let r = rnd();
  for (const [p, w] of PATHS) if ((r -= w) < 0) return p;
  return PATHS[0]![0];
}

function get(agent: Agent, path: string): Promise<void> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.10', port: 80, path, agent, headers: { 'user-agent': 'Mozilla/5.0 (demo browser)' } }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', () => resolve());
    req.end();
  });
}

async function browser(id: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1, localAddress: `127.0.1.${id}` });
  while (Date.now() - started < total_ms) {
    await get(agent, pick());
    await sleep(300 + rnd() * 1400);
  }
  agent.destroy();
}

await new Promise<void>((r) => imap.listen(143, '127.0.0.20', r));
await new Promise<void>((r) => web.listen(80, '127.0.0.10', r));
const dump = spawn('tcpdump', ['-i', 'lo', '-n', '--time-stamp-precision=nano', '-w', out,
  'host 127.0.0.10 or host 127.0.0.20 or host 127.0.0.30'], { stdio: ['ignore', 'inherit', 'inherit'] });
await sleep(1500);
await Promise.all(Array.from({ length: 5 }, (_, i) => browser(i + 1)));
await sleep(1000);
dump.kill('SIGINT');
await new Promise((r) => dump.once('exit', r));
web.close();
imap.close();
await db.end();
asPostgres('pg_ctl', '-D', join(pgdir, 'data'), '-m', 'fast', '-w', 'stop');
rmSync(pgdir, { recursive: true, force: true });
console.error(`recorded ${minutes} min to ${out}`);
process.exit(0);
