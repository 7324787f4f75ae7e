/**
 * End to end through `wiretime sensor`: PasTmon's webmail rule on a capture made here,
 * and interval summaries over a capture that spans several intervals. Expected values
 * are worked out by hand from the times and bytes written into the captures.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TcpConn, T0_SEC, pcapFile } from './support/frames.ts';
import type { SummaryRecord, TransactionRecord } from '../sensor/src/output/records.ts';

const ROOT = join(import.meta.dirname, '..');
let dir = '';
before(() => { dir = mkdtempSync(join(tmpdir(), 'wiretime-sig-')); });
after(() => rmSync(dir, { recursive: true, force: true }));

function sensor(...args: string[]): { status: number | null; lines: Record<string, unknown>[]; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/wiretime.js'), 'sensor', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  const lines = r.stdout.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { status: r.status, lines, stderr: r.stderr };
}

const MS = 1_000_000;
const S = 1_000_000_000;

/** One keep-alive connection; each request at `at_ns` answered `ttfr_ms` later with a 2-byte body. */
function capture(name: string, requests: { at_ns: number; path: string; ttfr_ms: number }[]): string {
  const c = new TcpConn('10.0.0.1', 40000, '10.0.0.2', 80);
  const t = requests[0]!.at_ns - 3 * MS;
  const frames: [number, Uint8Array][] = [[t, c.syn()], [t + MS, c.synAck()], [t + 2 * MS, c.ack('c')]];
  for (const r of requests) {
    frames.push([r.at_ns, c.send('c', `GET ${r.path} HTTP/1.1\r\nHost: mail.example.com\r\n\r\n`)]);
    frames.push([r.at_ns + r.ttfr_ms * MS, c.send('s', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')]);
    frames.push([r.at_ns + r.ttfr_ms * MS + 100_000, c.ack('c')]);
  }
  const path = join(dir, name);
  writeFileSync(path, pcapFile(frames));
  return path;
}

describe('signatures through wiretime sensor', () => {
  test("PasTmon's webmail rule, unchanged, names webmail pages by their script; other pages keep the default name", () => {
    const file = capture('webmail.pcap', [
      { at_ns: 1 * S, path: '/webmail/src/right_main.php', ttfr_ms: 5 },
      { at_ns: 2 * S, path: '/webmail/src/left_main.php?mailbox=INBOX', ttfr_ms: 7 },
      { at_ns: 3 * S, path: '/index.html', ttfr_ms: 2 },
    ]);
    const r = sensor('-r', file, '--signatures', 'sigs/pastmon-http-sigs.inc', '--transactions', '-');
    assert.equal(r.status, 0, r.stderr);
    const tx = r.lines.filter((l) => l['type'] === 'transaction') as unknown as TransactionRecord[];
    assert.deepEqual(tx.map((t) => [t.signature, t.ttfr_ns]), [
      ['GET_webmail_right_main.php', 5 * MS],
      ['GET_webmail_left_main.php', 7 * MS],
      ['GET', 2 * MS],
    ]);
  });

  test('a rule file with a mistake is refused at start with file:line:column', () => {
    const bad = join(dir, 'bad.sigs');
    writeFileSync(bad, 'transaction X {\n  Offset = 0\n  Content =~ "GET";\n}\n');
    const r = sensor('-r', capture('any.pcap', [{ at_ns: S, path: '/', ttfr_ms: 1 }]), '--signatures', bad, '--transactions', '-');
    assert.equal(r.status, 2);
    assert.ok(r.stderr.includes(`${bad}:2:13: expected ';', found 'Content'`), r.stderr); // right after "  Offset = 0"
    assert.equal(r.lines.length, 0);
  });
});

describe('interval summaries through wiretime sensor', () => {
  // Intervals of 60 s aligned to the epoch: T0 = 1 700 000 000 s is 40 s before one.
  const start = (k: number): number => (T0_SEC + 40 + 60 * k - T0_SEC) * S;

  test('three intervals: counts and timings per interval, the last one flushed as partial', () => {
    const file = capture('intervals.pcap', [
      { at_ns: start(0) + 10 * S, path: '/a', ttfr_ms: 10 },
      { at_ns: start(0) + 20 * S, path: '/b', ttfr_ms: 30 },
      { at_ns: start(1) + 5 * S, path: '/c', ttfr_ms: 20 },
      { at_ns: start(2) + 1 * S, path: '/d', ttfr_ms: 40 },
      { at_ns: start(2) + 2 * S, path: '/e', ttfr_ms: 50 },
      { at_ns: start(2) + 3 * S, path: '/f', ttfr_ms: 60 },
    ]);
    const r = sensor('-r', file, '--summaries', '-', '--interval', '60', '--grace', '5', '--sensor-id', 'test-sensor');
    assert.equal(r.status, 0, r.stderr);
    const http = (r.lines.filter((l) => l['type'] === 'summary') as unknown as SummaryRecord[]).filter((s) => s.protocol === 'http');
    const epoch = (k: number) => new Date((T0_SEC + 40 + 60 * k) * 1000).toISOString().replace('.000Z', 'Z');
    assert.deepEqual(http.map((s) => [s.interval_start, s.count, s.partial === true]), [
      [epoch(0), 2, false],
      [epoch(1), 1, false],
      [epoch(2), 3, true],
    ]);
    for (const s of http) {
      assert.equal(s.sensor, 'test-sensor');
      assert.equal(s.interval_s, 60);
      assert.equal(s.signature, 'GET');
      assert.equal(s.server, '10.0.0.2');
      assert.equal(s.server_port, 80);
      assert.deepEqual(s.outcomes, { ok: s.count });
    }
    const ttfr = http.map((s) => s.metrics['ttfr_ns']!);
    assert.deepEqual(ttfr.map((m) => [m.count, m.sum, m.min, m.max]), [
      [2, 40 * MS, 10 * MS, 30 * MS],
      [1, 20 * MS, 20 * MS, 20 * MS],
      [3, 150 * MS, 40 * MS, 60 * MS],
    ]);
    // p50 of {40, 50, 60} ms is the value of rank ⌊0.5·2⌋ = 1: 50 ms, within the sketch's 1%.
    assert.ok(Math.abs(ttfr[2]!.p50! - 50 * MS) <= 0.01 * 50 * MS, `p50 ${ttfr[2]!.p50}`);
    // The connection is summarised under TCP_CONNECT in the interval where it is reported:
    // still open at the end of the capture, in the last one, with its handshake RTT (2 ms).
    const connect = (r.lines.filter((l) => l['type'] === 'summary') as unknown as SummaryRecord[]).filter((s) => s.signature === 'TCP_CONNECT');
    assert.deepEqual(connect.map((s) => [s.interval_start, s.count, s.outcomes, s.metrics['rtt_ns']!.sum]), [[epoch(2), 1, { open: 1 }, 2 * MS]]);
  });
});
