import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { enableLinearRegexFallback, runsInLinearTime } from './linear-regex.ts';

/**
 * Liveness, not speed: without the fallback, `^(a+)+$` against 40 a's and a '!' backtracks
 * about 2^40 times (42 s for 30 a's on this machine, so days for 40). The classification
 * runs in a worker thread so that, should the protection ever be lost, the test fails after
 * its deadline (worker.terminate() interrupts a running regexp) instead of hanging the run.
 */
describe('catastrophic backtracking cannot stall classification', () => {
  test('^(a+)+$ on 40 a\'s + "!" gives no match, through SignatureSet.classify', { timeout: 10_000 }, async () => {
    const tsx = import.meta.resolve('tsx/esm/api');
    const set_url = new URL('./signature-set.ts', import.meta.url).href;
    const parser_url = new URL('./signature-parser.ts', import.meta.url).href;
    const worker = new Worker(`
      const { parentPort } = require('node:worker_threads');
      (async () => {
        (await import(${JSON.stringify(tsx)})).register();
        const { SignatureSet } = await import(${JSON.stringify(set_url)});
        const { parseSignatures } = await import(${JSON.stringify(parser_url)});
        const set = SignatureSet.fromRules(parseSignatures('transaction evil { Content =~ "^(a+)+$"; }', 'evil.sigs'));
        const request = Buffer.from('a'.repeat(40) + '!', 'latin1');
        parentPort.postMessage({ started: true });
        const t0 = performance.now();
        const name = set.classify('tcp', request, request.length, '');
        const ms = performance.now() - t0;
        // and the pattern still matches what it should
        const good = Buffer.from('a'.repeat(40), 'latin1');
        parentPort.postMessage({ name, ms, good: set.classify('tcp', good, good.length, '') });
      })().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
    `, { eval: true });
    try {
      const result = await new Promise<{ name: string | null; ms: number; good: string | null; error?: string }>((resolve, reject) => {
        let deadline: NodeJS.Timeout | undefined;
        worker.on('message', (m: { started?: boolean; error?: string; name: string | null; ms: number; good: string | null }) => {
          if (m.started === true) {
            // generous for a loaded CI machine; the unprotected run would take days
            deadline = setTimeout(() => reject(new Error('classification did not finish within 5 s: catastrophic backtracking is not bounded')), 5000);
            return;
          }
          clearTimeout(deadline);
          resolve(m);
        });
        worker.on('error', reject);
      });
      assert.equal(result.error, undefined, result.error);
      assert.equal(result.name, null);
      assert.equal(result.good, 'evil');
      assert.ok(result.ms < 5000, `${result.ms} ms`);
    } finally {
      await worker.terminate();
    }
  });
});

describe('runsInLinearTime asks the engine', () => {
  test('the fallback is available on this Node', () => {
    assert.equal(enableLinearRegexFallback(), true);
    assert.equal(enableLinearRegexFallback(), true); // idempotent
  });
  test('nested quantifiers are fine: the fallback bounds them', () => {
    assert.equal(runsInLinearTime('^(a+)+$'), true);
    assert.equal(runsInLinearTime('GET [^\\n]*\\/webmail\\/src\\/([a-z\\-_\\.]+)'), true);
  });
  test('backreferences and lookaround are not', () => {
    for (const source of ['(a)\\1', '(?<n>a)\\k<n>', '(?<=a)b', '(?<!a)b', '(?=a)a', '(?!a)b']) assert.equal(runsInLinearTime(source), false, source);
  });
  test('nor counted repetition above 16 through nesting', () => {
    assert.equal(runsInLinearTime('a{16}'), true);
    assert.equal(runsInLinearTime('a{17}'), false);
    assert.equal(runsInLinearTime('(a{4}){4}'), true);
    assert.equal(runsInLinearTime('(a{4}){5}'), false);
  });
});
