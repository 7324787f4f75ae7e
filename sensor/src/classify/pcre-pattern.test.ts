import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PatternError, translatePcre } from './pcre-pattern.ts';

/** translatePcre, and the compiled regex */
function js(pattern: string): RegExp {
  return new RegExp(translatePcre(pattern).source);
}

function refused(pattern: string): PatternError {
  try {
    translatePcre(pattern);
  } catch (e) {
    assert.ok(e instanceof PatternError, String(e));
    return e;
  }
  assert.fail(`expected ${pattern} to be refused`);
}

describe('PCRE meaning, in JavaScript', () => {
  test('identity escapes PasTmon files use pass through (\\- \\. \\" \\/)', () => {
    assert.equal(translatePcre('[a-z\\-_\\.]+').source, '[a-z\\-_\\.]+');
    assert.ok(js('a\\"b\\/c').test('a"b/c'));
  });
  test('. matches \\r (PCRE stops only at \\n)', () => {
    assert.equal(translatePcre('a.b').source, 'a[^\\n]b');
    assert.ok(js('GET .*X').test('GET /\r X'));
    assert.ok(!js('a.b').test('a\nb'));
  });
  test('\\s is the C locale set: not 0xA0 (JavaScript \\s would match it)', () => {
    assert.ok(js('a\\sb').test('a\tb'));
    assert.ok(js('a\\sb').test('a\x0bb'));
    assert.ok(!js('a\\sb').test('a\xa0b'));
    assert.ok(js('a\\Sb').test('a\xa0b'));
    assert.ok(js('[\\s]').test('\r') && !js('[\\s]').test('\xa0'));
    assert.ok(js('^[\\S]$').test('\xa0') && !js('^[\\S]$').test(' '));
  });
  test('\\h \\v (PCRE classes; JavaScript reads \\h as h)', () => {
    assert.ok(js('^\\h$').test('\xa0') && !js('^\\h$').test('h'));
    assert.ok(js('^\\v$').test('\n') && js('^\\V$').test('v'));
  });
  test('a class escape next to "-" keeps the "-" literal, as in PCRE', () => {
    assert.equal(translatePcre('[\\s-z]').source, '[\\x09-\\x0d\\x20\\-z]');
    assert.ok(js('^[\\s-z]$').test('-') && !js('^[\\s-z]$').test('m'));
    assert.ok(js('^[\\d-x]$').test('-'));
  });
  test('\\A and \\z are ^ and $; \\e \\a \\cX \\0nn \\xH \\x{HH} are bytes', () => {
    assert.equal(translatePcre('\\Ax\\z').source, '^x$');
    assert.ok(js('^\\e\\a\\cA\\012\\x9\\x{41}\\x$').test('\x1b\x07\x01\n\x09A\x00'));
  });
  test('a ] right after [ or [^ is a literal (JavaScript: [] is empty, [^] is anything)', () => {
    assert.equal(translatePcre('[]a]').source, '[\\]a]');
    assert.ok(js('^[]a]$').test(']'));
    assert.ok(!js('^[^]a]$').test(']') && js('^[^]a]$').test('b'));
  });
  test('POSIX classes', () => {
    assert.ok(js('^[[:alpha:]_]+$').test('ab_Z') && !js('^[[:alpha:]]$').test('1'));
    assert.ok(js('^[[:^digit:]]$').test('a') && !js('^[[:^digit:]]$').test('5'));
    assert.ok(js('^[[:xdigit:]]+$').test('09afAF'));
    assert.equal(refused('[[:letters:]]').index, 1);
  });
  test('(?P<n>...) and (?\'n\'...) named groups; (?#...) comments', () => {
    assert.equal(translatePcre("(?P<a>x)(?'b'y)").source, '(?<a>x)(?<b>y)');
    assert.equal(translatePcre('(?P<a>x)(?:y)(z)').groups, 2);
    assert.equal(translatePcre('ab(?#note)cd').source, 'abcd');
  });
  test('{ that is not a quantifier is a literal, in both', () => {
    assert.ok(js('^a{x}$').test('a{x}'));
    assert.ok(js('^a{,2}$').test('a{,2}'));
    assert.ok(js('^a{2}$').test('aa'));
  });
  test('lazy quantifiers are kept', () => {
    assert.deepEqual(js('<(.+?)>').exec('<a><b>')!.slice(1), ['a']);
  });
});

describe('refused constructs, at their index in the pattern', () => {
  const cases: [string, number, RegExp][] = [
    ['(a)\\1', 3, /backreferences.*found '\\1'/],
    ['(?<w>a)\\k<w>', 7, /backreferences.*found '\\k'/],
    ['(?P=w)', 0, /backreferences or recursion/],
    ['(?1)', 0, /backreferences or recursion/],
    ['(?R)', 0, /backreferences or recursion/],
    ['x(?<=a)', 1, /lookbehind.*found '\(\?<='/],
    ['x(?<!a)', 1, /lookbehind.*found '\(\?<!'/],
    ['(?=a)', 0, /lookahead/],
    ['(?!a)', 0, /lookahead/],
    ['(?i)GET', 0, /inline options/],
    ['(?s:.)', 0, /inline options/],
    ['(?-i)x', 0, /inline options/],
    ['(?>a+)', 0, /atomic groups/],
    ['(?|a|b)', 0, /branch-reset/],
    ['(?(1)a|b)', 0, /conditional/],
    ['a++', 1, /possessive/],
    ['a{2}+', 1, /possessive/],
    ['a{17}', 1, /at most 16/],
    ['a{16,}', 1, /at most 16/],
    ['(a{4}){5}', 2, /at most 16/], // the inner count, where the product passes 16
    ['((((a+)+)+)+)+', 5, /at most 16/], // + counts 2: 2^5 = 32
    ['\\Z', 0, /needs lookahead/],
    ['\\Qa.b\\E', 0, /quoting is PCRE only/],
    ['\\R', 0, /atomic in PCRE/],
    ['\\p{L}', 0, /Unicode properties/],
    ['\\u00', 0, /four hex digits/],
    ['\\c1', 0, /letter after \\c/],
    ['x\\', 1, /character after the backslash/],
    ['(ab', 0, /to close the group/],
    ['ab)', 2, /'\(' before this '\)'/],
    ['[ab', 0, /to close the character class/],
    ['*a', 0, /something to repeat/],
    ['a**', 2, /one quantifier per item/],
    ['^*', 1, /an anchor matches no character/],
    ['(*UTF)x', 0, /PCRE verbs/],
  ];
  for (const [pattern, index, message] of cases) {
    test(pattern, () => {
      const e = refused(pattern);
      assert.equal(e.index, index);
      assert.match(e.message, message);
    });
  }
  test('not fooled by escaped backslashes or classes', () => {
    assert.equal(translatePcre('\\\\1').source, '\\\\1'); // a backslash, then 1
    assert.equal(translatePcre('[\\1]').source, '[\\x01]'); // octal in a class
    assert.equal(translatePcre('[(?<=]').source, '[\\(\\?<=]');
    assert.equal(translatePcre('\\(?<=').source, '\\(?<=');
    assert.equal(translatePcre('a{16}').source, 'a{16}');
    assert.equal(translatePcre('(a+){8}').source, '(a+){8}'); // 2 × 8 = 16
  });
});

describe('literals every match contains', () => {
  const lit = (p: string) => {
    const t = translatePcre(p);
    return { starts: t.anchor?.run === null ? t.anchor.strings : [], literals: t.literals };
  };
  test('the webmail pattern', () => {
    assert.deepEqual(lit('GET .*/webmail/src/([a-z\\-_\\.]+)'), { starts: [], literals: ['/webmail/src/', 'GET '] });
  });
  test('anchored: after a run of one class, and on literal alternatives', () => {
    const anchor = (p: string) => {
      const a = translatePcre(p).anchor;
      return a === null ? null : { run: a.run, strings: [...a.strings].sort() }; // (their order says nothing)
    };
    assert.deepEqual(anchor('^GET /api/'), { run: null, strings: ['GET /api/'] });
    assert.deepEqual(anchor('^(POST|PUT) /api/v1/items'), { run: null, strings: ['POST /api/v1/items', 'PUT /api/v1/items'] });
    assert.deepEqual(anchor('^(?:a|b)(?:c|d)x'), { run: null, strings: ['acx', 'adx', 'bcx', 'bdx'] });
    assert.deepEqual(anchor('^[A-Z]+ /app/([a-z]+)'), { run: '[A-Z]', strings: [' /app/'] });
    assert.deepEqual(anchor('^([A-Z]+) /x'), { run: '[A-Z]', strings: [' /x'] });
    assert.deepEqual(anchor('^\\d{2,4}-x'), { run: '\\d', strings: ['-x'] });
    assert.deepEqual(anchor('^\\s*HELO'), { run: '[\\t\\n\\v\\f\\r ]', strings: ['HELO'] });
    // where one string starts another, the shorter finds every input the longer would
    assert.deepEqual(anchor('^(a|ab)'), { run: null, strings: ['a'] });
    assert.deepEqual(anchor('^(a|ab)c'), { run: null, strings: ['abc', 'ac'] });
    // a string that could continue the run: where the run ends is unknown
    assert.equal(anchor('^.*/webmail/'), null);
    assert.equal(anchor('^[a-z]+b/x'), null);
    // nothing after the run, an alternative above 0xff, more than 16 strings, no ^
    assert.equal(anchor('^[A-Z]+$'), null);
    assert.equal(anchor('^(GET|P\\x{100}T) /'), null);
    assert.deepEqual(anchor('^(a|b|c|d|e)(f|g|h|i)x'), { run: null, strings: ['a', 'b', 'c', 'd', 'e'] });
    assert.equal(anchor('GET /x'), null);
  });

  test('anchored: a literal start checked in place', () => {
    assert.deepEqual(lit('^GET /api/v1/items[/?]'), { starts: ['GET /api/v1/items'], literals: [] });
    assert.deepEqual(lit('\\A/static/(?:fonts/)?x'), { starts: ['/static/'], literals: [] });
    assert.deepEqual(lit('^SELECT .* FROM orders'), { starts: ['SELECT '], literals: [' FROM orders'] });
    assert.deepEqual(lit('^ab+c'), { starts: ['ab'], literals: ['bc'] });
    assert.deepEqual(lit('^a{3}b'), { starts: ['aaab'], literals: [] });
  });
  test('repetition: + keeps one copy on each side; ? and * end the run', () => {
    assert.deepEqual(lit('xab+cd'), { starts: [], literals: ['xab', 'bcd'] });
    assert.deepEqual(lit('ab?cd'), { starts: [], literals: ['cd'] });
    assert.deepEqual(lit('(abc)+de'), { starts: [], literals: ['abc', 'de'] });
    assert.deepEqual(lit('(abc)*de'), { starts: [], literals: ['de'] });
  });
  test('alternation: none at the top level; a group with alternatives gives none of its own', () => {
    assert.deepEqual(lit('abc|def'), { starts: [], literals: [] });
    assert.deepEqual(lit('(GET|POST) /cart'), { starts: [], literals: [' /cart'] });
  });
  test('escapes are the characters they stand for', () => {
    assert.deepEqual(lit('\\.cdn\\.example\\.com$'), { starts: [], literals: ['.cdn.example.com'] });
    assert.deepEqual(lit('caf\\xe9!'), { starts: [], literals: ['caf\xe9!'] });
  });
  test('at most four, longest first', () => {
    assert.deepEqual(lit('ab.abc.abcd.abcde.abcdef').literals, ['abcdef', 'abcde', 'abcd', 'abc']);
  });
});
