/**
 * `wiretime sensor` as a user runs it: a child process, its exit code, stdout and stderr.
 * Exit codes (sensor-command.ts): 0 ok, 1 damaged capture, 2 usage.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { ConnectionRecord, OutputRecord, StatisticsRecord, TransactionRecord } from '../sensor/src/output/records.ts';
import { TcpConn, iso, pcapFile } from './support/frames.ts';

const ROOT = join(import.meta.dirname, '..');
const IMAP = join(ROOT, 'test/fixtures/corpus/peafowl/test/pcaps/imap.cap');

function sensor(...args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/wiretime.js'), 'sensor', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function jsonLines(stdout: string): OutputRecord[] {
  return stdout.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as OutputRecord);
}

const dir = mkdtempSync(join(tmpdir(), 'wiretime-cli-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A clean capture of one HTTP exchange (microsecond pcap): handshake at 1 000 µs,
 * GET at 2 000 µs, 200 at 2 750 µs, ACK at 2 780 µs, FINs at 3 000 / 3 100 µs.
 */
function cleanCapture(): string {
  const c = new TcpConn('10.0.0.1', 40000, '10.0.0.2', 80);
  const path = join(dir, 'one-get.pcap');
  writeFileSync(path, pcapFile([
    [1_000_000, c.syn({ mss: 1460, wscale: 7 })],
    [1_100_000, c.synAck({ mss: 1400, wscale: 8 })],
    [1_130_000, c.ack('c')],
    [2_000_000, c.send('c', 'GET /x HTTP/1.1\r\nHost: h\r\n\r\n')],
    [2_750_000, c.send('s', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')],
    [2_780_000, c.ack('c')],
    [3_000_000, c.fin('c')],
    [3_100_000, c.fin('s')],
  ]));
  return path;
}

describe('wiretime sensor (child process)', () => {
  test('--help exits 0 and prints the usage', () => {
    const r = sensor('--help');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: wiretime sensor -r FILE/);
    assert.match(r.stdout, /--transactions DEST/);
    assert.equal(r.stderr, '');
  });

  test('without -r: exit 2, says -r is required', () => {
    const r = sensor('--transactions', '-');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /-r FILE is required/);
    assert.equal(r.stdout, '');
  });

  test('an unknown option or analyzer: exit 2', () => {
    const a = sensor('-r', IMAP, '--frobnicate');
    assert.equal(a.code, 2);
    assert.match(a.stderr, /frobnicate/);
    const b = sensor('-r', IMAP, '--analyzer', '8001=nope');
    assert.equal(b.code, 2);
    assert.match(b.stderr, /unknown analyzer "nope"/);
  });

  test('--transactions - on a clean capture: JSON lines, the statistics block last, exit 0', () => {
    const r = sensor('-r', cleanCapture(), '--transactions', '-');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.ok(r.stdout.endsWith('\n'));
    const lines = jsonLines(r.stdout);
    assert.deepEqual(lines.map((l) => l.type), ['transaction', 'connection', 'statistics']);
    const t = lines[0] as TransactionRecord;
    assert.deepEqual([t.protocol, t.subject, t.status, t.req_first, t.rsp_first, t.ttfr_ns, t.ttla_ns, t.rtt_ns],
      ['http', 'GET /x', 200, iso(2_000_000), iso(2_750_000), 750_000, 780_000, 130_000]);
    assert.equal((lines[1] as ConnectionRecord).outcome, 'closed');
    const s = lines[2] as StatisticsRecord;
    assert.equal(s.packets, 8);
    assert.equal(s.capture?.format, 'pcap');
    assert.equal(s.capture?.error, null);
    assert.equal(s.kernel_drops, null);
  });

  test('a damaged capture: its transactions, then an error naming the file and the byte offset, exit 1', () => {
    // imap.cap: 8 good records, then a record header announcing 1 358 954 496 bytes. The bad
    // header starts at 24 (file header) + 8 × 16 (record headers) + 74 + 60 + 54 + 135 + 54 + 72 + 184 + 89
    // (the 8 packets) = 874.
    const r = sensor('-r', IMAP, '--transactions', '-');
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(IMAP), r.stderr);
    assert.match(r.stderr, /byte offset 874\b/);
    const lines = jsonLines(r.stdout);
    assert.equal(lines.at(-1)!.type, 'statistics');
    assert.match((lines.at(-1) as StatisticsRecord).capture!.error!, /874/);
    // The 8 packets (read with a separate decoder): handshake at .542818 / .543437 / .543499 s,
    // a greeting, then "a0000 CAPABILITY\r\n" (18 bytes) at .546876, its 130-byte answer at .547535,
    // acknowledged by the client's next request "a0001 LOGIN …" (35 bytes) at .548831, never answered.
    const tx = lines.filter((l): l is TransactionRecord => l.type === 'transaction');
    assert.deepEqual(tx.map((t) => [t.server_port, t.request_bytes, t.response_bytes, t.ttfr_ns, t.ttla_ns, t.outcome]), [
      [143, 18, 130, 659_000, 1_955_000, 'ok'], // .547535 − .546876; .548831 − .546876
      [143, 35, 0, null, null, 'timeout'],
    ]);
    const conn = lines.filter((l): l is ConnectionRecord => l.type === 'connection');
    assert.deepEqual(conn.map((c) => [c.client_port, c.server_port, c.rtt_server_ns, c.rtt_client_ns, c.rtt_ns, c.outcome]), [
      [4167, 143, 619_000, 62_000, 681_000, 'open'],
    ]);
  });

  test('a filter with a word it does not know: exit 2, the word in the message', () => {
    const r = sensor('-r', IMAP, '--transactions', '-', 'tcp', 'prot', '143');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /filter "tcp prot 143": did not understand "prot"/);
    assert.equal(r.stdout, '');
  });

  test('a filter that keeps nothing of the capture: no transaction, the packets counted as filtered', () => {
    const r = sensor('-r', cleanCapture(), '--transactions', '-', 'udp', 'port', '53');
    assert.equal(r.code, 0, r.stderr);
    const lines = jsonLines(r.stdout);
    assert.deepEqual(lines.map((l) => l.type), ['statistics']);
    assert.equal((lines[0] as StatisticsRecord).skipped.filtered, 8);
  });
});
