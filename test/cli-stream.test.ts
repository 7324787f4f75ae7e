/**
 * `wiretime sensor` on a stream: a capture read from a FIFO, stopped by SIGINT while the
 * writer is still open, flushes its partial interval and ends with its statistics.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TcpConn, T0_SEC, pcapFile } from './support/frames.ts';
import type { SummaryRecord } from '../sensor/src/output/records.ts';

const ROOT = join(import.meta.dirname, '..');
const MS = 1_000_000;
const S = 1_000_000_000;
let dir = '';
before(() => { dir = mkdtempSync(join(tmpdir(), 'wiretime-fifo-')); });
after(() => rmSync(dir, { recursive: true, force: true }));

test('SIGINT on a capture streamed through a FIFO: the open interval is flushed as partial, exit 0', async () => {
  const fifo = join(dir, 'capture.fifo');
  execFileSync('mkfifo', [fifo]);
  const child = spawn(process.execPath, [join(ROOT, 'bin/wiretime.js'), 'sensor', '-r', fifo, '--summaries', '-', '--interval', '60', '--grace', '0'], { cwd: ROOT });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));

  // Opening the FIFO for writing completes once the sensor has opened it, after it set its signal handlers.
  const writer = await open(fifo, 'w');
  // Intervals of 60 s: T0 + 40 s starts one. A request in it and one in the next.
  const c = new TcpConn('10.0.0.1', 40000, '10.0.0.2', 80);
  const at = (s: number) => (40 + s) * S;
  const frames: [number, Uint8Array][] = [
    [at(10), c.syn()], [at(10) + MS, c.synAck()], [at(10) + 2 * MS, c.ack('c')],
    [at(11), c.send('c', 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n')], [at(11) + 4 * MS, c.send('s', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')],
    [at(11) + 5 * MS, c.ack('c')],
    [at(70), c.send('c', 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n')], [at(70) + 6 * MS, c.send('s', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')],
  ];
  const file = pcapFile(frames);
  await writer.write(file);
  await sleep(300);
  child.kill('SIGINT');
  // A sensor waiting in a read of the FIFO stops after the next chunk it gets: keep the
  // stream alive with one more packet every half second (the writer stays open) until it exits.
  let extra = 0;
  let code: number | null | 'timeout' = 'timeout';
  for (let i = 0; i < 40 && code === 'timeout'; i++) {
    await writer.write(pcapFile([[at(70) + (7 + i) * MS, c.ack('c')]]).subarray(24)); // a record alone, no file header
    extra++;
    code = await Promise.race([exited, sleep(500).then(() => 'timeout' as const)]);
  }
  await writer.close();
  assert.equal(code, 0, `exit ${code}; stderr: ${stderr}; stdout: ${stdout.slice(0, 300)}`);

  const lines = stdout.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>);
  const http = (lines.filter((l) => l['type'] === 'summary') as unknown as SummaryRecord[]).filter((s) => s.protocol === 'http');
  const start = (k: number) => new Date((T0_SEC + 40 + 60 * k) * 1000).toISOString().replace('.000Z', 'Z');
  assert.deepEqual(http.map((s) => [s.interval_start, s.count, s.metrics['ttfr_ns']!.sum, s.partial === true]), [
    [start(0), 1, 4 * MS, false],
    [start(1), 1, 6 * MS, true],
  ]);
  const stats = lines.at(-1)!;
  assert.equal(stats['type'], 'statistics');
  // Stopped on SIGINT, not at the end of the stream: not every packet written was read.
  assert.ok((stats['packets'] as number) >= frames.length + 1 && (stats['packets'] as number) <= frames.length + extra, `packets ${stats['packets']}`);
});
