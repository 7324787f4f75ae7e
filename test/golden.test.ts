/**
 * Golden tests, driven by the corpus manifest: every capture in, its records out,
 * sorted, compared with test/golden/<capture>.jsonl. The goldens pin today's
 * behaviour so that any change to it shows up in review; the values themselves
 * are checked against peers in peer-oracles.test.ts and peer-values.test.ts.
 *
 * UPDATE_GOLDEN=1 npm test rewrites them; CI fails on any difference.
 *
 * The same pass proves that every capture is read without a crash, and that the
 * damaged ones (tshark and capinfos name the damage in the manifest) end with a
 * clear error after the packets before the damage.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { analyzeCaptureFile } from '../sensor/src/pipeline.ts';
import type { OutputRecord } from '../sensor/src/output/records.ts';
import { CORPUS, corpusManifest } from './support/oracle.ts';

const GOLDEN = join(import.meta.dirname, 'golden');
const update = process.env['UPDATE_GOLDEN'] === '1';

describe('golden records of every corpus capture', () => {
  for (const e of corpusManifest()) {
    test(e.file, async () => {
      const lines: string[] = [];
      let stats: Extract<OutputRecord, { type: 'statistics' }> | null = null;
      await analyzeCaptureFile(join(CORPUS, e.file), {}, (r) => {
        if (r.type === 'statistics') stats = r;
        else lines.push(JSON.stringify(r));
      });
      assert.ok(stats !== null);
      const s = stats as Extract<OutputRecord, { type: 'statistics' }>;
      const damaged = typeof e['readable_packets'] === 'number';
      if (damaged) {
        assert.equal(s.packets, e['readable_packets'], 'packets before the damage (capinfos)');
        assert.match(s.capture!.error ?? '', new RegExp(`${e.file.split('/').pop()!.replace('.', '\\.')}: at byte offset \\d+: .+`));
      } else {
        assert.equal(s.capture!.error, null);
        assert.equal(s.packets, Number(e.packets), 'packets (capinfos)');
      }
      lines.sort();
      // The capture's path in an error message depends on where the checkout is.
      lines.push(JSON.stringify(s).replaceAll(`${CORPUS}/`, 'corpus/'));
      const text = lines.join('\n') + '\n';
      const path = join(GOLDEN, `${e.file}.jsonl`);
      if (update || !existsSync(path)) {
        if (!update) assert.fail(`no golden file ${path}: run UPDATE_GOLDEN=1 npm test and review it`);
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, text);
        return;
      }
      const expected = readFileSync(path, 'utf8');
      if (text !== expected) {
        const got = text.split('\n');
        const want = expected.split('\n');
        const i = got.findIndex((l, k) => l !== want[k]);
        assert.fail(`records differ from ${path} at line ${i + 1}:\n  golden: ${want[i]}\n  now:    ${got[i]}\n(UPDATE_GOLDEN=1 npm test to accept the change after review)`);
      }
    });
  }
});
