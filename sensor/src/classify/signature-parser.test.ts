import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_DEPTH, parseSignatures, SignatureSyntaxError } from './signature-parser.ts';

// The webmail rule from PasTmon's documentation, verbatim.
const WEBMAIL = `// http "GET " request for webmail
transaction GET_webmail_$1 {
    Offset = 0;
    Depth = 50;
    Content =~ "GET .*/webmail/src/([a-z\\-_\\.]+)";
}
`;

/** The error parseSignatures throws for `text`, which must be a SignatureSyntaxError. */
function errorOf(text: string, file = 'f.sigs'): SignatureSyntaxError {
  try {
    parseSignatures(text, file);
  } catch (e) {
    assert.ok(e instanceof SignatureSyntaxError, `expected a SignatureSyntaxError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected the file to be refused');
}

describe('parseSignatures', () => {
  test('the webmail rule of the PasTmon article', () => {
    const rules = parseSignatures(WEBMAIL, 'pastmon-http-sigs.inc');
    assert.equal(rules.length, 1);
    const r = rules[0]!;
    assert.deepEqual(
      { name: r.name, offset: r.offset, depth: r.depth, pattern: r.pattern, target: r.target, protocol: r.protocol, file: r.file, line: r.line, column: r.column },
      { name: 'GET_webmail_$1', offset: 0, depth: 50, pattern: 'GET .*/webmail/src/([a-z\\-_\\.]+)', target: 'content', protocol: null, file: 'pastmon-http-sigs.inc', line: 2, column: 1 },
    );
    // PCRE's `.` stops only at \n; JavaScript's also at \r, so it is written [^\n]
    assert.equal(r.regex.source, 'GET [^\\n]*\\/webmail\\/src\\/([a-z\\-_\\.]+)');
    assert.equal(r.regex.flags, '');
  });

  test('keywords are case-insensitive, as in PasTmon', () => {
    const rules = parseSignatures('TRANSACTION a { OFFSET = 4; depth = 10; content =~ "x"; }\nTransaction b { SUBJECT =~ "y"; PROTOCOL = HTTP; }', 'f');
    assert.deepEqual(rules.map((r) => [r.name, r.offset, r.depth, r.target, r.protocol]), [['a', 4, 10, 'content', null], ['b', 0, 0, 'subject', 'http']]);
  });

  test('Depth 0 or absent means the default of 256 bytes', () => {
    const rules = parseSignatures('transaction a { Content =~ "x"; }\ntransaction b { Depth = 0; Content =~ "x"; }', 'f');
    assert.equal(DEFAULT_DEPTH, 256);
    assert.deepEqual(rules.map((r) => r.depth), [256, 256]);
  });

  test('comments of both kinds, anywhere between tokens; positions stay right', () => {
    const text = [
      '/* header',
      '   comment */ transaction /* inline */ a // rest of line',
      '{ Content =~ "//not a comment/*"; } // after',
      '// transaction commented_out { Content =~ "x"; }',
      '/**/transaction b{Content=~"/*";}',
    ].join('\n');
    const rules = parseSignatures(text, 'f');
    assert.deepEqual(rules.map((r) => [r.name, r.pattern, r.line, r.column]), [['a', '//not a comment/*', 2, 15], ['b', '/*', 5, 5]]);
  });

  test('a backslash reaches the regex as written; \\" is a quote', () => {
    const [r] = parseSignatures('transaction q { Content =~ "say \\"hi\\" \\\\ \\-"; }', 'f');
    assert.equal(r!.pattern, 'say \\"hi\\" \\\\ \\-');
    assert.ok(r!.regex.test('say "hi" \\ -'));
  });

  test('Subject and Protocol (our extensions)', () => {
    const [r] = parseSignatures('transaction dns_$1 {\n  Protocol = dns;\n  Subject =~ "^A ([a-z]+)\\.example\\.com$";\n}', 'f');
    assert.deepEqual([r!.target, r!.protocol, r!.offset, r!.depth], ['subject', 'dns', 0, 0]);
    assert.equal(parseSignatures('transaction t { Protocol = "tcp"; Content =~ "x"; }', 'f')[0]!.protocol, 'tcp');
  });

  test('several rules keep file order; an empty file has none', () => {
    assert.deepEqual(parseSignatures('transaction a { Content =~ "a"; } transaction b { Content =~ "b"; }', 'f').map((r) => r.name), ['a', 'b']);
    assert.deepEqual(parseSignatures('  // nothing\n/* here */\n', 'f'), []);
  });

  test('a UTF-8 byte order mark is skipped (read as latin1 or UTF-8)', () => {
    assert.equal(parseSignatures('\u00ef\u00bb\u00bftransaction a { Content =~ "a"; }', 'f')[0]!.column, 1);
    assert.equal(parseSignatures('\ufefftransaction a { Content =~ "a"; }', 'f')[0]!.column, 1);
  });
});

describe('parseSignatures refuses, with file:line:column and what was expected', () => {
  const cases: [string, string, string][] = [
    ['missing ;',
      'transaction A {\n    Depth = 50\n    Content =~ "x";\n}',
      "f.sigs:2:15: expected ';', found 'Content'"],
    ['missing ; before }',
      'transaction A { Content =~ "x" }',
      "f.sigs:1:31: expected ';', found '}'"],
    ['unknown keyword',
      'transaction A {\n    Dept = 50;\n    Content =~ "x";\n}',
      "f.sigs:2:5: expected one of Offset, Depth, Content, Subject, Protocol or '}', found 'Dept'"],
    ['unterminated string',
      'transaction A {\n    Content =~ "GET /x;\n}',
      'f.sigs:2:16: expected a \'"\' to close the string that starts here, found the end of the line'],
    ['unterminated string at the end of the file',
      'transaction A { Content =~ "GET',
      'f.sigs:1:28: expected a \'"\' to close the string that starts here, found the end of the file'],
    ['unterminated comment',
      'transaction A { Content =~ "x"; }\n\n/* never closed\ntransaction B { Content =~ "y"; }',
      "f.sigs:3:1: expected '*/' to close the comment that starts here, found the end of the file"],
    ['duplicate keyword (case-insensitively)',
      'transaction A {\n    Depth = 50;\n    depth = 60;\n    Content =~ "x";\n}',
      "f.sigs:3:5: expected one Depth per rule (the first is at 2:5), found a second 'depth'"],
    ['negative Offset',
      'transaction A {\n    Offset = -1;\n    Content =~ "x";\n}',
      "f.sigs:2:14: expected a non-negative integer, found '-1'"],
    ['non-integer Depth',
      'transaction A {\n    Depth = 1.5;\n    Content =~ "x";\n}',
      "f.sigs:2:13: expected a non-negative integer, found '1.5'"],
    ['Depth too large',
      'transaction A { Depth = 70000; Content =~ "x"; }',
      "f.sigs:1:25: expected a number of bytes up to 65536, found '70000'"],
    ['Offset + Depth too large',
      'transaction A { Offset = 65000; Depth = 1000; Content =~ "x"; }',
      'f.sigs:1:33: expected Offset + Depth up to 65536, found 65000 + 1000'],
    ['$n beyond the capture groups',
      'transaction GET_$2 {\n    Content =~ "GET (/[a-z]+)";\n}',
      "f.sigs:1:17: expected $1 (the pattern has 1 capture group), found '$2'"],
    ['$n with no capture group',
      'transaction x_$1 { Content =~ "GET /"; }',
      "f.sigs:1:15: expected no $n in the name (the pattern has no capture groups), found '$1'"],
    ['$0',
      'transaction x_$0 { Content =~ "(a)"; }',
      "f.sigs:1:15: expected $1 to $9 (a capture group) after $, found '$0'"],
    ['invalid regex: the parser of the dialect says where',
      'transaction A {\n    Content =~ "GET (unclosed";\n}',
      "f.sigs:2:21: expected ')' to close the group that starts here, found the end of the pattern"],
    ['invalid regex: V8 says what',
      'transaction A {\n    Content =~ "x{2,1}";\n}',
      'f.sigs:2:17: expected a valid regular expression, found "x{2,1}" (numbers out of order in {} quantifier)'],
    ['backreference',
      'transaction A {\n    Content =~ "(a+)\\1";\n}',
      "f.sigs:2:21: expected a pattern without backreferences (the linear-time regexp engine cannot run them, so a pathological request could stall the sensor), found '\\1'"],
    ['named backreference',
      'transaction A { Content =~ "(?<w>a)\\k<w>"; }',
      "f.sigs:1:36: expected a pattern without backreferences (the linear-time regexp engine cannot run them, so a pathological request could stall the sensor), found '\\k'"],
    ['lookbehind',
      'transaction A {\n    Subject =~ "(?<=GET )/x";\n}',
      "f.sigs:2:17: expected a pattern without lookbehind (the linear-time regexp engine cannot run it, so a pathological request could stall the sensor), found '(?<='"],
    ['negative lookbehind',
      'transaction A { Subject =~ "x(?<!y)"; }',
      "f.sigs:1:30: expected a pattern without lookbehind (the linear-time regexp engine cannot run it, so a pathological request could stall the sensor), found '(?<!'"],
    ['lookahead (Node 20 cannot bound it either)',
      'transaction A { Subject =~ "(?=a)a"; }',
      "f.sigs:1:29: expected a pattern without lookahead (the linear-time regexp engine of Node 20 cannot run it, so a pathological request could stall the sensor), found '(?='"],
    ['counted repetition the linear engine cannot unroll',
      'transaction A { Content =~ "(a|aa){1,30}$"; }',
      "f.sigs:1:35: expected repetition counts whose product through nesting is at most 16 ({n,} counts n+1; the linear-time regexp engine unrolls them; write + or * instead), found '{1,30}'"],
    ['inline options',
      'transaction A { Content =~ "(?i)get"; }',
      "f.sigs:1:29: expected a pattern without inline options: there are no flags (case-insensitive matching cannot run in linear time; write [Gg][Ee][Tt]; for (?s) write [\\s\\S]), found '(?i'"],
    ['unknown protocol',
      'transaction A { Protocol = htpp; Content =~ "x"; }',
      "f.sigs:1:28: expected a protocol: http, dns, tcp, found 'htpp'"],
    ['no Content or Subject',
      'transaction A {\n    Depth = 5;\n}',
      "f.sigs:3:1: expected a Content or Subject match in rule A, found '}'"],
    ['both Content and Subject',
      'transaction A { Content =~ "x"; Subject =~ "y"; }',
      "f.sigs:1:33: expected only one of Content or Subject per rule (Content is at 1:17), found 'Subject'"],
    ['Offset in a Subject rule',
      'transaction A { Subject =~ "y"; Offset = 3; }',
      "f.sigs:1:33: expected Offset and Depth only in a Content rule (a Subject rule matches the whole subject), found 'Offset'"],
    ['no name',
      'transaction { Content =~ "x"; }',
      "f.sigs:1:13: expected a rule name, found '{'"],
    ['not a rule',
      'include "other.inc";',
      "f.sigs:1:1: expected 'transaction', found 'include'"],
    ['end of file inside a rule',
      'transaction A { Content =~ "x";',
      "f.sigs:1:32: expected one of Offset, Depth, Content, Subject, Protocol or '}', found the end of the file"],
    ['a character that starts no token',
      'transaction A { Content @ "x"; }',
      "f.sigs:1:25: expected '=~', found '@'"],
    ['= instead of =~',
      'transaction A { Content = "x"; }',
      "f.sigs:1:25: expected '=~', found '='"],
  ];
  for (const [what, text, message] of cases) {
    test(what, () => {
      const e = errorOf(text);
      assert.equal(e.message, message);
      const m = /^f\.sigs:(\d+):(\d+): /.exec(message)!;
      assert.deepEqual([e.file, e.line, e.column], ['f.sigs', Number(m[1]), Number(m[2])]);
    });
  }

  test('the error names the file it was given', () => {
    assert.match(errorOf('transaction', 'sigs/pastmon-http-sigs.inc').message, /^sigs\/pastmon-http-sigs\.inc:1:12: expected a rule name, found the end of the file$/);
  });

  test('an error in the second rule is reported there, after a good first rule', () => {
    assert.equal(errorOf(WEBMAIL + 'transaction B {\n  Content =~ "(?<=x)";\n}\n').message,
      "f.sigs:8:15: expected a pattern without lookbehind (the linear-time regexp engine cannot run it, so a pathological request could stall the sensor), found '(?<='");
  });
});

describe('backslashes and character classes do not fool the refusal', () => {
  const ok = (pattern: string) => parseSignatures(`transaction a { Content =~ "${pattern}"; }`, 'f')[0]!;
  test('an escaped backslash followed by a digit is not a backreference', () => {
    const r = ok('C:\\\\1');
    assert.ok(r.regex.test('C:\\1'));
  });
  test('\\1 inside a class is octal (PCRE and JavaScript agree), not a backreference', () => {
    assert.ok(ok('[\\1]').regex.test('\x01'));
  });
  test('(?<= inside a class is just characters', () => {
    assert.ok(ok('x[(?<=]y').regex.test('x<y'));
  });
  test('an escaped parenthesis does not open a group', () => {
    assert.ok(ok('\\(?<=').regex.test('<='));
  });
});
