/**
 * "latin1" as Node means it: every byte 0x00-0xff becomes the code unit of the same value
 * (not windows-1252, which the WHATWG Encoding Standard's "latin1" label stands for). Rules
 * and subjects are matched against such text. Expected strings are written out by hand.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { latin1 } from './latin1.ts';

describe('latin1', () => {
  it('one code unit per byte, the byte value, across the whole range', () => {
    const all = new Uint8Array(256).map((_, i) => i);
    const s = latin1(all, 0, 256);
    assert.equal(s.length, 256);
    for (let i = 0; i < 256; i++) assert.equal(s.charCodeAt(i), i);
    // 0x80 is U+0080 here, not the euro sign windows-1252 puts there
    assert.equal(latin1(all, 0x80, 0x81), '\u0080');
  });

  it('a range of a plain Uint8Array that is a view into a larger buffer', () => {
    const backing = new Uint8Array([0x00, 0x00, 0x47, 0x45, 0x54, 0x20, 0x2f, 0x63, 0x61, 0x66, 0xe9, 0xff]);
    const view = backing.subarray(2); // "GET /caf\xe9\xff"
    assert.equal(latin1(view, 0, 3), 'GET');
    assert.equal(latin1(view, 4, 10), '/caf\u00e9\u00ff');
    assert.equal(latin1(view, 5, 5), '');
  });
});
