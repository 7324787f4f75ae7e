import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LiteralMatcher } from './literal-matcher.ts';
import { PrefixTrie } from './prefix-trie.ts';

function foundBytes(m: LiteralMatcher, s: string, len = s.length): number[] {
  const k = m.scanString(s, len);
  return [...m.found.subarray(0, k)].sort((a, b) => a - b);
}

function foundString(m: LiteralMatcher, s: string): number[] {
  const k = m.scanString(s);
  return [...m.found.subarray(0, k)].sort((a, b) => a - b);
}

/** A seeded generator of whole numbers below n, and of n-letter words from `alphabet`. */
function randomText(seed: number, alphabet: string): { rnd: (n: number) => number; word: (n: number) => string } {
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const word = (n: number): string => Array.from({ length: n }, () => alphabet[rnd(alphabet.length)]).join('');
  return { rnd, word };
}

describe('LiteralMatcher', () => {
  const lits = ['he', 'she', 'his', 'hers', '/webmail/src/', 'GET ', 'caf\xe9'];
  const m = new LiteralMatcher(lits);
  test('the textbook example: overlapping literals and literals inside others', () => {
    assert.deepEqual(foundBytes(m, 'ushers'), [0, 1, 3]); // he, she, hers
    assert.deepEqual(foundString(m, 'ahishers'), [0, 1, 2, 3]);
  });
  test('each literal once, however often it occurs; only within len', () => {
    assert.deepEqual(foundBytes(m, 'GET GET GET /webmail/src/'), [4, 5]);
    assert.deepEqual(foundBytes(m, 'GET /webmail/src/', 16), [5]);
  });
  test('bytes above 0x7f; characters above 0xff in a string match nothing', () => {
    assert.deepEqual(foundBytes(m, 'un caf\xe9'), [6]);
    assert.deepEqual(foundString(m, 'h\u0165e'), []);
  });
  test('a scan forgets the previous one', () => {
    assert.deepEqual(foundBytes(m, 'she'), [0, 1]);
    assert.deepEqual(foundBytes(m, 'xyz'), []);
  });
  test('a literal is found at every position of a long text, and not when the text is cut before its end (skip scan and automaton)', () => {
    // Every literal 5 bytes or longer: the skip scan. A 3-byte literal beside them: the
    // automaton, whose longest literal (16) makes its halves overlap by 15 on a 90-byte text.
    for (const lits of [['needle', '0123456789abcdef'], ['needle', '0123456789abcdef', '#!#']]) {
      const mm = new LiteralMatcher(lits);
      for (const [id, lit] of [[0, 'needle'], [1, '0123456789abcdef']] as const) {
        for (let at = 0; at + lit.length <= 90; at++) {
          const text = '.'.repeat(at) + lit + '.'.repeat(90 - at - lit.length);
          assert.deepEqual(foundString(mm, text), [id], `${lits.length} literals, at ${at}`);
          // cut just before the literal's last character: not found
          assert.deepEqual(foundBytes(mm, text, at + lit.length - 1), [], `${lits.length} literals, cut at ${at}`);
        }
      }
      assert.equal(mm.skip_abandoned, 0);
    }
  });
  test('the skip scan agrees with includes() on random text, whole and cut short', () => {
    // few letters, so that literals share prefixes and ends and windows often stop on them;
    // the text also has code units above 0xff whose low byte is a literal's ('\u0147' ~ 'G',
    // '\u012f' ~ '/', '\u0173' ~ 's'), which no literal may match
    const { rnd, word } = randomText(11, 'GET /sapi\r\n\xe9');
    const wide = randomText(12, 'GET /sapi\u0147\u012f\u0173');
    for (let set = 0; set < 20; set++) {
      const words = [...new Set(Array.from({ length: 1 + rnd(60) }, () => word(5 + rnd(12))))];
      const mm = new LiteralMatcher(words);
      for (let i = 0; i < 300; i++) {
        let text = '';
        const len = rnd(300);
        while (text.length < len) text += rnd(3) === 0 ? words[rnd(words.length)] : rnd(4) === 0 ? wide.word(1 + rnd(8)) : word(1 + rnd(8));
        const cut = rnd(text.length + 1);
        for (const n of [text.length, cut]) {
          const want = words.flatMap((w, id) => (text.slice(0, n).includes(w) ? [id] : []));
          assert.deepEqual(foundBytes(mm, text, n), want, `${JSON.stringify(words)} in ${JSON.stringify(text.slice(0, n))}`);
        }
      }
    }
  });
  test('a text that keeps the skip scan on prefixes it never completes is scanned by the automaton instead, with the same answer', () => {
    // Every window of "aaaa…" ends like the long literal's first 5 bytes, and each walk
    // may go 16 bytes: past its budget (2n + 64, each walk counted as the longest literal) the scan changes method.
    const mm = new LiteralMatcher(['aaaaaaaaaaaaaaab', 'aaaaa', 'zzzzz']);
    assert.deepEqual(foundString(mm, 'a'.repeat(1000)), [1]);
    assert.equal(mm.skip_abandoned, 1);
    assert.deepEqual(foundString(mm, 'a'.repeat(1000) + 'b zzzzz'), [0, 1, 2]);
    assert.equal(mm.skip_abandoned, 2);
    // an ordinary text does not
    assert.deepEqual(foundString(mm, 'GET /aaaaa HTTP/1.1'), [1]);
    assert.equal(mm.skip_abandoned, 2);
  });
  test('a literal ending at every one of 100 000 characters, then a short text: each once, the other found too', () => {
    const mm = new LiteralMatcher(['a', 'aa', 'ab']);
    assert.deepEqual(foundString(mm, 'a'.repeat(100_000) + 'b'), [0, 1, 2]);
    assert.deepEqual(foundString(mm, 'xa'), [0]);
  });
  test('an empty literal is found in any non-empty text, beside the others', () => {
    const mm = new LiteralMatcher(['', 'ab']);
    assert.deepEqual(foundString(mm, 'xab'), [0, 1]);
    assert.deepEqual(foundString(mm, 'x'.repeat(60)), [0]);
  });
  test('no literals: nothing found', () => {
    const empty = new LiteralMatcher([]);
    assert.equal(empty.scanString('anything', 8), 0);
    assert.equal(empty.scanString('anything'), 0);
  });
  test('agrees with includes() on random text', () => {
    const { rnd, word } = randomText(1, 'ab/ \xe9');
    const words = [...new Set(Array.from({ length: 40 }, () => word(2 + rnd(4))))];
    const mm = new LiteralMatcher(words);
    for (let i = 0; i < 2000; i++) {
      const text = word(rnd(40));
      const want = words.flatMap((w, id) => (text.includes(w) ? [id] : []));
      assert.deepEqual(foundBytes(mm, text), want, JSON.stringify(text));
      assert.deepEqual(foundString(mm, text), want);
    }
  });
  test('agrees with includes() for literals of mixed lengths that share their ends', () => {
    const { rnd, word } = randomText(7, 'GET /srcwebmail.php\r\n\xe9');
    // many literals ending in the same bytes, of lengths 6..20
    const words = [...new Set([...Array.from({ length: 60 }, () => word(2 + rnd(14)) + '/src/'), ...Array.from({ length: 40 }, () => word(6 + rnd(14)))])];
    const mm = new LiteralMatcher(words);
    for (let i = 0; i < 3000; i++) {
      // texts built partly from the literals themselves, so that most are found somewhere
      let text = '';
      while (text.length < rnd(120)) text += rnd(3) === 0 ? words[rnd(words.length)] : word(1 + rnd(6));
      const want = words.flatMap((w, id) => (text.includes(w) ? [id] : []));
      assert.deepEqual(foundBytes(mm, text), want, JSON.stringify(text));
      assert.deepEqual(foundString(mm, text), want);
      const cut = rnd(text.length + 1);
      assert.deepEqual(foundBytes(mm, text, cut), words.flatMap((w, id) => (text.slice(0, cut).includes(w) ? [id] : [])));
    }
  });
});

describe('PrefixTrie', () => {
  const t = new PrefixTrie(['GET /api/', 'GET ', 'GET /api/v1/items', 'POST /cart']);
  const walk = (s: string, start = 0, end = s.length) => {
    const k = t.walkString(s, start, end);
    return [...t.found.subarray(0, k)];
  };
  test('every string that is a prefix at the position, shortest first', () => {
    assert.deepEqual(walk('GET /api/v1/items?page=2'), [1, 0, 2]);
    assert.deepEqual(walk('GET /index.html'), [1]);
    assert.deepEqual(walk('POST /cart/add'), [3]);
    assert.deepEqual(walk('PUT /cart'), []);
  });
  test('from an offset, up to an end', () => {
    assert.deepEqual(walk('xxxxGET /api/', 4), [1, 0]);
    assert.deepEqual(walk('GET /api/', 0, 8), [1]); // "GET /api" lacks the final '/'
    assert.deepEqual(walk('GET /api/', 9), []);
  });
  test('on a string', () => {
    const k = t.walkString('GET /api/x');
    assert.deepEqual([...t.found.subarray(0, k)], [1, 0]);
  });
  test('a string given twice is a programming error', () => {
    assert.throws(() => new PrefixTrie(['ab', 'ab']), /given twice/);
  });
  test('agrees with startsWith on random sets and texts (shared stretches, forks, the empty string)', () => {
    const { rnd, word } = randomText(7, 'GET /ab\xe9');
    for (let round = 0; round < 300; round++) {
      const set = new Set<string>();
      const stems = Array.from({ length: 1 + rnd(4) }, () => word(rnd(9)));
      while (set.size < 1 + rnd(12)) set.add(stems[rnd(stems.length)]! + word(rnd(4)));
      const strings = [...set];
      const trie = new PrefixTrie(strings);
      for (let k = 0; k < 40; k++) {
        const text = stems[rnd(stems.length)]! + word(rnd(6)) + (rnd(5) === 0 ? '\u0100' : '') + word(rnd(3));
        const start = rnd(3) === 0 ? rnd(text.length + 1) : 0;
        const end = rnd(3) === 0 ? start + rnd(text.length - start + 1) : text.length;
        const want = strings.map((x, id) => [x, id] as const)
          .filter(([x]) => start + x.length <= end && text.startsWith(x, start))
          .sort((a, b) => a[0].length - b[0].length).map(([, id]) => id);
        const n = trie.walkString(text, start, end);
        assert.deepEqual([...trie.found.subarray(0, n)], want, JSON.stringify({ strings, text, start, end }));
      }
    }
  });
});
