/**
 * `wiretime demo` (what `npm start` runs) on the capture it ships: sensor process → gRPC →
 * collector → PGlite → reporter → gRPC → printed tables. Expected values come from the
 * recording itself, not from the sensor: the number of requests for each page is counted in
 * the capture's raw bytes (each request line sits whole in one loopback packet), and which page
 * and which server are slow follows from how scripts/record-demo-traffic.ts made the traffic
 * (the IMAP server answered FETCH 120–160 ms late between 40% and 65% of the recording; only
 * right_main.php fetches).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const CAPTURE = join(ROOT, 'test/fixtures/demo/webmail.pcap');

function occurrences(haystack: Buffer, needle: string): number {
  const n = Buffer.from(needle);
  let count = 0;
  for (let i = haystack.indexOf(n); i >= 0; i = haystack.indexOf(n, i + n.length)) count++;
  return count;
}

test('the demo stores the shipped capture, and the reporter names the page that got slow and the IMAP server behind it', async () => {
  const raw = readFileSync(CAPTURE);
  const right_main = occurrences(raw, 'GET /webmail/src/right_main.php');
  const compose = occurrences(raw, 'GET /webmail/src/compose.php');
  assert.ok(right_main > 100 && compose > 30, `requests in the capture: ${right_main}, ${compose}`);

  const child = spawn(process.execPath, [join(ROOT, 'bin/wiretime.js'), 'demo', '--listen', '127.0.0.1:0', '--no-wait'], { cwd: ROOT });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, err);

  // every batch acknowledged, nothing left in the spool
  assert.doesNotMatch(out, /NOT acknowledged/);
  // the slowest signature, with exactly as many transactions as the capture has requests for it
  const top = out.slice(out.indexOf('Slowest signatures'));
  const first = top.split('\n').find((l) => /^http\s/.test(l));
  assert.match(first ?? '', /^http\s+GET_webmail_right_main\.php\s/);
  assert.equal(Number(first!.trim().split(/\s+/).at(-1)), right_main);
  const compose_row = top.split('\n').find((l) => /^http\s+GET_webmail_compose\.php\s/.test(l));
  assert.equal(Number(compose_row!.trim().split(/\s+/).at(-1)), compose);
  // before and during the slow spell, by server: the IMAP server got much slower (FETCH +120 ms
  // on ~10 ms), and the web front end with it; PostgreSQL did not (its delays never changed)
  const compare = out.slice(out.indexOf('Before and during'));
  const row = (server: string) => (compare.split('\n').find((l) => l.trim().startsWith(server)) ?? '').trim().split(/\s+/);
  const change_pct = (server: string) => Number(row(server)[6]!.replace('%', ''));
  assert.ok(change_pct('127.0.0.20') > 100 && row('127.0.0.20')[7] === 'yes', compare);
  assert.ok(change_pct('127.0.0.10') > 100 && row('127.0.0.10')[7] === 'yes', compare);
  assert.ok(change_pct('127.0.0.30') < 50, compare);
  // and it tells where the reporter is
  assert.match(out, /reporter: listening on 127\.0\.0\.1:\d+/);
});

test('the slow spell is the longest run of buckets above twice the median', async () => {
  const { slowSpell } = await import('../bin/demo-command.ts');
  const at = (values: (number | undefined)[]) => values.map((value, i) => ({ start_s: 1000 + 60 * i, value }));
  // median of 10 10 10 11 12 50 55 60 is 12: the run 50 60 55 (buckets 3..5)
  assert.deepEqual(slowSpell(at([10, 11, 10, 50, 60, 55, 12, 10]), 60), { start_s: 1180, end_s: 1360 });
  // a gap ends a run; the longer of two runs wins; a run reaching the end ends with the window
  // (median of 10 10 10 10 80 85 90 is 10: runs 90 and 80 85)
  assert.deepEqual(slowSpell(at([10, 90, undefined, 10, 10, 10, 80, 85]), 60), { start_s: 1360, end_s: 1480 });
  assert.equal(slowSpell(at([10, 11, 12, 10]), 60), null);
  assert.equal(slowSpell(at([10, 50]), 60), null);
});
