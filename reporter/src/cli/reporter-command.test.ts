/**
 * `wiretime reporter` as a process, on both engines: it prints the bound address, answers
 * `wiretime report` (a separate process) with the token from its tokens file, refuses a
 * database without the schema, and stops cleanly on SIGTERM.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { SummaryStore } from '../../../collector/src/store/summary-store.ts';
import { makeBatch, postgresEngine } from '../../../collector/src/store/test-engines.ts';

const REPO = join(import.meta.dirname, '..', '..', '..');
const BIN = join(REPO, 'bin/wiretime.js');
const execFileP = promisify(execFile);
const TOKEN = 'cli-test-token-0123456789abcdef';
const tmp = mkdtempSync(join(tmpdir(), 'wiretime-reporter-cli-'));
const pgEngine = postgresEngine();

after(async () => {
  await pgEngine.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

/** Starts `wiretime reporter …`, resolves with its address once it prints it. */
async function startProcess(args: string[]): Promise<{ address: string; stop: () => Promise<number | null> }> {
  const child = spawn(process.execPath, [BIN, 'reporter', '--listen', '127.0.0.1:0', ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += String(d); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    exited.then((code) => reject(new Error(`reporter exited with ${code}: ${stderr}`)));
  });
  return {
    address: (JSON.parse(line) as { listening: string }).listening,
    stop: async () => { child.kill('SIGTERM'); return exited; },
  };
}

async function check(source: string[]): Promise<void> {
  const tokens = join(tmp, 'tokens');
  writeFileSync(tokens, `# clients of the reporter\nops ${TOKEN}\n`);
  const tokenFile = join(tmp, 'token');
  writeFileSync(tokenFile, TOKEN);
  const r = await startProcess([...source, '--tokens', tokens]);
  try {
    assert.match(r.address, /^127\.0\.0\.1:\d+$/);
    const out = await execFileP(process.execPath, [BIN, 'report', 'sensors', '--reporter', r.address, '--token-file', tokenFile], { cwd: REPO });
    const lines = out.stdout.split('\n');
    assert.match(lines[0]!, /^sensor +last seen \(UTC\) +packets +kernel drops/);
    assert.match(lines[2]!, /^farm-a +\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? +1000001 +3 /);
    const refused = await execFileP(process.execPath, [BIN, 'report', 'sensors', '--reporter', r.address], { cwd: REPO }).catch((e) => e);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /UNAUTHENTICATED/);
  } finally {
    assert.equal(await r.stop(), 0);
  }
}

test('wiretime reporter --database URL answers wiretime report sensors with a token', async () => {
  const url = await pgEngine.freshUrl!();
  const store = await SummaryStore.open(url, null);
  await store.storeBatch(makeBatch('farm-a', 1n, 5));
  await store.close();
  await check(['--database', url, '--role', 'wiretime_reader']);
});

test('wiretime reporter --data-dir DIR reads what a collector left there', async () => {
  const dir = join(tmp, 'pglite');
  const store = await SummaryStore.open(null, dir);
  await store.storeBatch(makeBatch('farm-a', 1n, 5));
  await store.close();
  await check(['--data-dir', dir]);
});

test('wiretime reporter refuses a database without the schema, and bad options', async () => {
  const url = await pgEngine.freshUrl!();
  const r = await execFileP(process.execPath, [BIN, 'reporter', '--database', url, '--listen', '127.0.0.1:0'], { cwd: REPO }).catch((e) => e);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /database: the database has no wiretime schema: start the collector on it once/);
  const both = await execFileP(process.execPath, [BIN, 'reporter', '--database', url, '--data-dir', tmp], { cwd: REPO }).catch((e) => e);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /give either --database URL or --data-dir DIR/);
});

test('over TLS: wiretime report --tls-ca talks to wiretime reporter --tls-cert; a plaintext client does not', async () => {
  const pki = join(tmp, 'pki');
  await execFileP(join(REPO, 'deploy/certs/make-certs.sh'), [pki, 'localhost', 'unused']);
  const url = await pgEngine.freshUrl!();
  const store = await SummaryStore.open(url, null);
  await store.storeBatch(makeBatch('farm-a', 1n, 5));
  await store.close();
  const r = await startProcess(['--database', url, '--tls-cert', join(pki, 'collector.crt'), '--tls-key', join(pki, 'collector.key')]);
  try {
    const port = r.address.split(':').at(-1)!;
    const out = await execFileP(process.execPath, [BIN, 'report', 'sensors', '--reporter', `localhost:${port}`, '--tls-ca', join(pki, 'ca.crt')], { cwd: REPO });
    assert.match(out.stdout.split('\n')[2]!, /^farm-a /);
    const plain = await execFileP(process.execPath, [BIN, 'report', 'sensors', '--reporter', `localhost:${port}`, '--timeout-ms', '3000'], { cwd: REPO }).catch((e) => e);
    assert.equal(plain.code, 1);
    assert.match(plain.stderr, /UNAVAILABLE|CANCELLED|DEADLINE/);
  } finally {
    assert.equal(await r.stop(), 0);
  }
});
