import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseSignatures, SignatureSyntaxError } from './signature-parser.ts';
import type { SignatureRule } from './signature-parser.ts';
import { SignatureSet } from './signature-set.ts';

const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

const WEBMAIL = `// http "GET " request for webmail
transaction GET_webmail_$1 {
    Offset = 0;
    Depth = 50;
    Content =~ "GET .*/webmail/src/([a-z\\-_\\.]+)";
}
`;

function set(text: string, options?: { max_names_per_rule?: number }): SignatureSet {
  return SignatureSet.fromRules(parseSignatures(text, 't.sigs'), options);
}

/** classify a request given as text; the subject defaults to "" */
function run(s: SignatureSet, request: string, subject = '', protocol = 'http'): string | null {
  const b = bytes(request);
  return s.classify(protocol, b, b.length, subject);
}

const tmp = mkdtempSync(join(tmpdir(), 'wiretime-sigs-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
function file(name: string, text: string, encoding: BufferEncoding = 'latin1'): string {
  const p = join(tmp, name);
  writeFileSync(p, text, encoding);
  return p;
}

describe('the webmail rule on request bytes', () => {
  const s = set(WEBMAIL);
  test('right_main.php and left_main.php', () => {
    assert.equal(run(s, 'GET /webmail/src/right_main.php HTTP/1.1\r\nHost: mail.example.com\r\nUser-Agent: Mozilla/5.0\r\n\r\n'), 'GET_webmail_right_main.php');
    assert.equal(run(s, 'GET /webmail/src/left_main.php HTTP/1.1\r\nHost: mail.example.com\r\n\r\n'), 'GET_webmail_left_main.php');
  });
  test('anywhere in the path, as PCRE would (.* before /webmail)', () => {
    assert.equal(run(s, 'GET /squirrel/webmail/src/compose.php?x=1 HTTP/1.1\r\n\r\n'), 'GET_webmail_compose.php');
  });
  test('other requests do not match', () => {
    assert.equal(run(s, 'POST /webmail/src/redirect.php HTTP/1.1\r\n\r\n'), null);
    assert.equal(run(s, 'GET /index.html HTTP/1.1\r\n\r\n'), null);
  });
  test('only the 50 bytes of Depth are looked at', () => {
    // "/webmail/src/" ends at byte 49 here: the name needs byte 50, past Depth
    const path = '/' + 'x'.repeat(32) + '/webmail/src/';
    assert.equal(('GET ' + path).length, 50);
    assert.equal(run(s, `GET ${path}page.php HTTP/1.1\r\n\r\n`), null);
    assert.equal(run(s, `GET ${path.slice(1)}page.php HTTP/1.1\r\n\r\n`), 'GET_webmail_p');
  });
  test('request_bytes_needed is Offset + Depth', () => {
    assert.equal(s.request_bytes_needed, 50);
  });
});

describe('Offset and Depth', () => {
  test('a match that needs a byte past Depth does not match', () => {
    const rule = (depth: number) => set(`transaction GET_webmail_$1 { Depth = ${depth}; Content =~ "GET .*/webmail/src/([a-z\\-_\\.]+)"; }`);
    const req = 'GET /webmail/src/right_main.php HTTP/1.1\r\n\r\n';
    assert.equal(run(rule(16), req), null); // "GET /webmail/src"
    assert.equal(run(rule(17), req), null); // "GET /webmail/src/": the group needs one more byte
    assert.equal(run(rule(18), req), 'GET_webmail_r');
  });
  test('Offset skips the method; ^ anchors at Offset', () => {
    const s = set('transaction webmail_$1 {\n  Offset = 4;\n  Depth = 30;\n  Content =~ "^/webmail/src/([a-z_.]+)";\n}');
    assert.equal(s.request_bytes_needed, 34);
    assert.equal(run(s, 'GET /webmail/src/right_main.php HTTP/1.1\r\n\r\n'), 'webmail_right_main.php');
    assert.equal(run(s, 'POST /webmail/src/right_main.php HTTP/1.1\r\n\r\n'), null); // byte 4 is ' '
    assert.equal(run(s, 'GET '), null); // nothing at Offset
  });
  test('the window is cut at Depth even mid-name', () => {
    const s = set('transaction p_$1 { Offset = 4; Depth = 8; Content =~ "^/([a-z]+)"; }');
    assert.equal(run(s, 'GET /abcdefghijkl HTTP/1.1\r\n\r\n'), 'p_abcdefg');
  });
  test('without Depth, 256 bytes', () => {
    const s = set('transaction far { Content =~ "X-Marker"; }');
    assert.equal(s.request_bytes_needed, 256);
    assert.equal(run(s, 'GET / HTTP/1.1\r\n' + 'a'.repeat(230) + 'X-Marker'), 'far'); // ends at byte 254
    assert.equal(run(s, 'GET / HTTP/1.1\r\n' + 'a'.repeat(240) + 'X-Marker'), null); // needs bytes 256..263
  });
  test('bytes past request_len are ignored (a reused buffer)', () => {
    const s = set(WEBMAIL);
    const b = bytes('GET /webmail/src/right_main.php HTTP/1.1\r\n\r\n');
    assert.equal(s.classify('http', b, 20, ''), 'GET_webmail_rig');
    assert.equal(s.classify('http', b, 10, ''), null);
  });
  test('bytes are latin1: 0x80..0xff match as \\xHH and as the same bytes written in the file', () => {
    const s = set('transaction cafe_$1 { Content =~ "^GET /caf\\xe9/([^ ]+)"; }');
    assert.equal(s.classify('http', new Uint8Array([...bytes('GET /caf'), 0xe9, ...bytes('/menu HTTP/1.1')]), 21, ''), 'cafe_menu');
    // a UTF-8 file: é is two bytes in the file and in the request
    const f = SignatureSet.fromFiles([file('utf8.sigs', 'transaction utf_$1 { Content =~ "^GET /(café)"; }', 'utf8')]);
    const req = Buffer.from('GET /café HTTP/1.1', 'utf8');
    assert.equal(f.classify('http', req, req.length, ''), 'utf_caf\u00c3\u00a9'); // the name holds the bytes
  });
});

describe('names', () => {
  test('$2, and an optional group that did not take part is empty', () => {
    const s = set('transaction API_$1_$2 { Content =~ "^(GET|POST) /api/(v[0-9]+)?"; }');
    assert.equal(run(s, 'GET /api/v2/items HTTP/1.1\r\n'), 'API_GET_v2');
    assert.equal(run(s, 'POST /api/items HTTP/1.1\r\n'), 'API_POST_');
  });
  test('the same group twice, and a name without $n', () => {
    assert.equal(run(set('transaction $1-$1 { Content =~ "^([A-Z]+) "; }'), 'GET / HTTP/1.1'), 'GET-GET');
    assert.equal(run(set('transaction plain { Content =~ "^GET "; }'), 'GET / HTTP/1.1'), 'plain');
  });
});

describe('order: the first matching rule wins, files in the order given', () => {
  const specific = file('1-specific.sigs', '/* specific first */\ntransaction A_$1 {\n  Content =~ "^GET /(a[a-z]*)";\n}\n');
  const generic = file('2-generic.sigs', '// anything else\ntransaction B { Content =~ "^GET /"; }\ntransaction C { Content =~ "^GET /a"; }\n');
  test('across two files', () => {
    const s = SignatureSet.fromFiles([specific, generic]);
    assert.equal(s.size, 3);
    assert.equal(run(s, 'GET /abc HTTP/1.1'), 'A_abc');
    assert.equal(run(s, 'GET /xyz HTTP/1.1'), 'B');
  });
  test('the other order of files, and later rules of a file never shadow earlier ones', () => {
    const s = SignatureSet.fromFiles([generic, specific]);
    assert.equal(run(s, 'GET /abc HTTP/1.1'), 'B'); // not C, not A_abc
  });
  test('an error in the second file names that file', () => {
    const bad = file('3-bad.sigs', '\ntransaction D {\n  Content =~ "(x)\\1";\n}\n');
    assert.throws(() => SignatureSet.fromFiles([specific, bad]), (e: unknown) => e instanceof SignatureSyntaxError && e.message.startsWith(`${bad}:3:18: expected a pattern without backreferences`));
  });
  test('a file that cannot be read is named', () => {
    const missing = join(tmp, 'missing.sigs');
    assert.throws(() => SignatureSet.fromFiles([specific, missing]), (e: unknown) => e instanceof Error && e.message.startsWith(`${missing}: cannot read signature file: ENOENT`));
  });
});

describe('Subject and Protocol', () => {
  test('a Subject rule matches the analyzer subject, not the bytes', () => {
    const s = set('transaction S_$1 { Subject =~ "^GET /webmail/src/([a-z_.]+)$"; }');
    assert.equal(s.request_bytes_needed, 0);
    assert.equal(run(s, '', 'GET /webmail/src/right_main.php'), 'S_right_main.php');
    assert.equal(run(s, 'GET /webmail/src/right_main.php HTTP/1.1', 'GET /other'), null);
  });
  test('Protocol restricts a rule to one analyzer', () => {
    const s = set('transaction ZONE_$1 { Protocol = dns; Subject =~ "^(A|AAAA) [a-z.]*example\\.com$"; }\ntransaction ANY { Subject =~ "^A "; }');
    assert.equal(run(s, '', 'A www.example.com', 'dns'), 'ZONE_A');
    assert.equal(run(s, '', 'AAAA www.example.com', 'dns'), 'ZONE_AAAA');
    assert.equal(run(s, '', 'A www.example.com', 'http'), 'ANY'); // the dns rule is skipped
    assert.equal(run(s, '', 'MX example.com', 'dns'), null);
  });
  test('Content and Subject rules mix in one order', () => {
    const s = set('transaction first { Subject =~ "^GET /a"; }\ntransaction second_$1 { Content =~ "^GET /([a-z]+)"; }');
    assert.equal(run(s, 'GET /abc HTTP/1.1', 'GET /abc'), 'first');
    assert.equal(run(s, 'GET /xyz HTTP/1.1', 'GET /xyz'), 'second_xyz');
  });
});

describe('the cardinality guard', () => {
  test('the 1001st distinct name of a rule becomes NAME:other; startInterval resets', () => {
    const s = set('transaction GET_webmail_$1 { Content =~ "GET .*/webmail/src/([a-z0-9_.]+)"; }');
    const req = (i: number) => `GET /webmail/src/p${i}.php HTTP/1.1\r\n\r\n`;
    for (let i = 0; i < 1000; i++) assert.equal(run(s, req(i)), `GET_webmail_p${i}.php`);
    assert.equal(run(s, req(1000)), 'GET_webmail_$1:other');
    assert.equal(run(s, req(1001)), 'GET_webmail_$1:other');
    assert.equal(run(s, req(5)), 'GET_webmail_p5.php'); // already known this interval
    assert.deepEqual(s.stats(), { rules: 1, folded: { 'GET_webmail_$1': 2 }, matched: 1003, unmatched: 0, literal_scan_fallbacks: 0 });
    s.startInterval();
    assert.equal(run(s, req(1000)), 'GET_webmail_p1000.php');
    assert.deepEqual(s.namesThisInterval(), [1]);
    assert.equal(s.stats().folded['GET_webmail_$1'], 2); // counted since the start
  });
  test('max_names_per_rule is per rule', () => {
    const s = set('transaction A_$1 { Content =~ "^A([0-9]+)"; }\ntransaction B_$1 { Content =~ "^B([0-9]+)"; }', { max_names_per_rule: 2 });
    assert.deepEqual(['A1', 'A2', 'A3', 'B1', 'B2', 'B3'].map((r) => run(s, r)), ['A_1', 'A_2', 'A_$1:other', 'B_1', 'B_2', 'B_$1:other']);
    assert.deepEqual(s.stats().folded, { A_$1: 1, B_$1: 1 });
  });
  test('a name given last interval counts again in the new one: the budget holds whatever was seen before', () => {
    const s = set('transaction A_$1 { Content =~ "^A([0-9]+)"; }', { max_names_per_rule: 2 });
    assert.deepEqual(['A1', 'A2', 'A3', 'A1', 'A2'].map((r) => run(s, r)), ['A_1', 'A_2', 'A_$1:other', 'A_1', 'A_2']);
    s.startInterval();
    assert.deepEqual(['A3', 'A4', 'A1', 'A3'].map((r) => run(s, r)), ['A_3', 'A_4', 'A_$1:other', 'A_3']);
    assert.deepEqual(s.namesThisInterval(), [2]);
    assert.deepEqual(s.stats().folded, { A_$1: 2 });
  });
  test('names of two groups: a repeated pair gives its name again, a new pair counts against the budget', () => {
    const s = set('transaction S_$2_$1 { Content =~ "^GET /([a-z]+)/([a-z]+)"; }', { max_names_per_rule: 3 });
    const got = ['GET /a/x', 'GET /a/y', 'GET /a/x', 'GET /b/x', 'GET /a/y', 'GET /b/y', 'GET /b/x', 'GET /ab/x'].map((r) => run(s, r));
    assert.deepEqual(got, ['S_x_a', 'S_y_a', 'S_x_a', 'S_x_b', 'S_y_a', 'S_$2_$1:other', 'S_x_b', 'S_$2_$1:other']);
    assert.deepEqual(s.namesThisInterval(), [3]);
    assert.deepEqual(s.stats().folded, { S_$2_$1: 2 });
    s.startInterval();
    assert.deepEqual(['GET /b/y', 'GET /a/x'].map((r) => run(s, r)), ['S_y_b', 'S_x_a']);
  });
  test('group texts that run together into one name count once', () => {
    const s = set('transaction T_$1$2 { Content =~ "^GET /([a-z]+)-?([a-z]+)"; }', { max_names_per_rule: 2 });
    const got = ['GET /a-bc', 'GET /ab-c', 'GET /abc', 'GET /a-bc', 'GET /x-y', 'GET /x-z', 'GET /ab-c'].map((r) => run(s, r));
    assert.deepEqual(got, ['T_abc', 'T_abc', 'T_abc', 'T_abc', 'T_xy', 'T_$1$2:other', 'T_abc']);
    assert.deepEqual(s.namesThisInterval(), [2]);
  });
  test('a name without $n is never folded', () => {
    const s = set('transaction plain { Content =~ "^GET /([0-9]+)"; }', { max_names_per_rule: 1 });
    assert.equal(run(s, 'GET /1'), 'plain');
    assert.equal(run(s, 'GET /2'), 'plain');
  });
  test('one million distinct URLs through GET_$1: bounded names, 999 000 folded', () => {
    const s = set('transaction GET_$1 { Depth = 40; Content =~ "^GET /([^ ?]+)"; }');
    const buf = Buffer.alloc(64);
    const names = new Set<string>();
    for (let i = 0; i < 1_000_000; i++) {
      const n = buf.write(`GET /u${i} HTTP/1.1\r\n`, 0, 'latin1');
      const name = s.classify('http', buf, n, '');
      assert.ok(name !== null);
      names.add(name);
    }
    assert.ok(names.size <= 1001, `${names.size} distinct names`);
    assert.equal(names.size, 1001);
    assert.ok(names.has('GET_$1:other') && names.has('GET_u0') && names.has('GET_u999') && !names.has('GET_u1000'));
    assert.deepEqual(s.namesThisInterval(), [1000]); // what the guard holds
    assert.deepEqual(s.stats(), { rules: 1, folded: { GET_$1: 999_000 }, matched: 1_000_000, unmatched: 0, literal_scan_fallbacks: 0 });
    s.startInterval();
    assert.deepEqual(s.namesThisInterval(), [0]);
  });
});

describe('fromRules', () => {
  const base = parseSignatures('transaction x { Content =~ "x"; }', 'f')[0]!;
  test('refuses a hand-made regex the linear-time engine cannot run, or one with flags', () => {
    assert.throws(() => SignatureSet.fromRules([{ ...base, regex: /(a)\1/ }]), /f:1:1: rule x: V8's linear-time regexp engine cannot run/);
    assert.throws(() => SignatureSet.fromRules([{ ...base, regex: /x/i }]), /f:1:1: rule x: the regex must have no flags, not \/i/);
  });
  test('a hand-made rule whose regex differs from its pattern is still matched (without a prefilter)', () => {
    const s = SignatureSet.fromRules([{ ...base, pattern: 'not this', regex: /^GET \/y/ }]);
    assert.equal(run(s, 'GET /y'), 'x');
  });
  test('an empty set matches nothing and needs no bytes', () => {
    const s = SignatureSet.fromRules([]);
    assert.equal(s.request_bytes_needed, 0);
    assert.equal(run(s, 'GET / HTTP/1.1', 'GET /'), null);
    assert.deepEqual(s.stats(), { rules: 0, folded: {}, matched: 0, unmatched: 1, literal_scan_fallbacks: 0 });
  });
});

/** The language's meaning without any fast path: every rule in order, its regex on its window. */
function reference(rules: SignatureRule[], protocol: string, request: Uint8Array, len: number, subject: string): string | null {
  const content = Buffer.from(request.buffer, request.byteOffset, Math.min(len, request.length)).toString('latin1');
  for (const r of rules) {
    if (r.protocol !== null && r.protocol !== protocol) continue;
    let input = subject;
    if (r.target === 'content') {
      if (r.offset >= content.length) continue;
      input = content.substring(r.offset, r.offset + r.depth);
    }
    const m = r.regex.exec(input);
    if (m !== null) return r.name.replace(/\$([1-9])/g, (_, d: string) => m[Number(d)] ?? '');
  }
  return null;
}

/**
 * Classifies 40 000 random requests (examples near a match of each rule, mutated) with the
 * set and with the plain rule-by-rule loop; the two must agree. Returns the set.
 */
function agreesWithLoop(text: string, examples: string[], pieces: string[]): SignatureSet {
  const rules = parseSignatures(text, 'r');
  const s = SignatureSet.fromRules(rules, { max_names_per_rule: 1e9 });
  let seed = 7;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const mutate = (str: string): string => {
    const at = rnd(str.length + 1);
    switch (rnd(5)) {
      case 0: return str.slice(0, at) + str.slice(at + 1); // delete a character
      case 1: return str.slice(0, at) + str.slice(at, at + 1) + str.slice(at); // repeat one
      case 2: return str.slice(0, at) + pieces[rnd(pieces.length)] + str.slice(at); // insert a piece
      case 3: return pieces[rnd(pieces.length)] + str; // prepend
      default: return str + examples[rnd(examples.length)]; // two examples
    }
  };
  let matched = 0;
  for (let i = 0; i < 40000; i++) {
    let str = examples[rnd(examples.length)]!;
    for (let m = rnd(4); m > 0; m--) str = mutate(str);
    const protocol = ['http', 'dns', 'tcp'][rnd(3)]!;
    const subject = rnd(2) === 0 ? str : str.slice(rnd(4));
    const b = bytes(str);
    const len = rnd(5) === 0 ? rnd(b.length + 1) : b.length;
    const want = reference(rules, protocol, b, len, subject);
    assert.equal(s.classify(protocol, b, len, subject), want, `${protocol} ${JSON.stringify(str)} len ${len} subject ${JSON.stringify(subject)}`);
    if (want !== null) matched++;
  }
  assert.ok(matched > 10000, `only ${matched} matched: the test would prove little`);
  return s;
}

describe('the prefilter never changes an answer', () => {
  test('random requests against rules of every shape agree with the plain rule-by-rule loop', () => {
    const text = [
      'transaction anchored_$1 { Content =~ "^GET /api/v1/([a-z]+)"; }',
      'transaction offset_$1 { Offset = 5; Depth = 12; Content =~ "^api/v([0-9])"; }',
      'transaction floating_$1 { Content =~ "GET .*/shop/([a-z]+)/item"; }',
      'transaction two_literals { Content =~ "/cart.*checkout"; }',
      'transaction plus_$1 { Content =~ "ab+c(d)"; }',
      'transaction alt_$1 { Content =~ "(cart|shop)/x"; }',
      'transaction optional { Content =~ "^POST /(v2/)?orders"; }',
      'transaction counted { Content =~ "x{3}y"; }',
      'transaction class { Content =~ "[0-9][0-9]/zz"; }',
      'transaction dot_cr { Depth = 30; Content =~ "^GET .*\\r"; }',
      'transaction subj_$1 { Subject =~ "^A ([a-z]+)\\.example\\.com$"; }',
      'transaction subj_float { Subject =~ "\\.cdn\\."; }',
      'transaction dns_only { Protocol = dns; Subject =~ "^MX "; }',
      'transaction nolit { Content =~ "^[A-Z]+ /[a-z]$"; }',
      'transaction anchored_plus { Content =~ "^PUT /z+q"; }',
      // anchored after a run of one class, or on alternatives (prefilter: pcre-pattern.ts `anchor`)
      'transaction method_$1 { Content =~ "^[A-Z]+ /app/([a-z]+)"; }',
      'transaction method_group_$1_$2 { Content =~ "^([A-Z]+) /api/v([0-9])"; }',
      'transaction verbs_$1 { Content =~ "^(GET|POST|PUT) /cart/([a-z]+)"; }',
      'transaction verbs_short { Content =~ "^(A|AB)C/"; }',
      'transaction spaces_run { Depth = 40; Content =~ "^\\s*HELO x"; }',
      'transaction offset_run { Offset = 4; Depth = 20; Content =~ "^[0-9]*/q"; }',
      'transaction run_continues { Content =~ "^[a-z]+b/y"; }',
      'transaction subj_run_$1 { Subject =~ "^[A-Z]+ ([a-z]+)\\.mail\\."; }',
      'transaction subj_wide_run { Subject =~ "^[^ ]* to\\.me"; }',
    ].join('\n');
    // strings near a match of each rule (where a wrong prefilter would show), mutated at random
    const examples = ['GET /api/v1/items', 'GET /api/v2/x', 'GET /a/shop/toys/item', '/cart?checkout', 'xabbbcd', 'abcd', 'cart/x', 'shop/x',
      'POST /orders', 'POST /v2/orders', 'axxxy', 'xxy', '12/zz', 'GET /x\r\n', 'A www.example.com', 'img.cdn.net', 'MX example.com', 'PUT /z', 'PUT /zq', 'PUT /zzzq',
      'GET /app/x', 'DELETE /app/', ' /app/a', 'GET /api/v2', '/api/v1', 'POST /cart/add', 'PUT /cart/', 'GETPOST /cart/x', 'ABC/', 'AC/', 'ABBC/',
      ' \t HELO x', 'HELO x', 'xxxx123/q', 'xxxx/q', 'abcb/y', 'ab/y', 'MX www.mail.x', 'A a.mail.', 'a\u0100b to.me', '\u0100 to.me'];
    const pieces = ['GET ', 'POST ', '/', 'api', 'v1', 'shop', 'item', 'b', 'c', 'x', 'y', '\r', '.', 'A ', 'MX ', 'cart', ' ', 'z',
      'app', 'PUT', 'AB', '\t', '7', 'q', 'mail', '\u0100'];
    agreesWithLoop(text, examples, pieces);
  });

  test('rules after runs of more distinct classes than are walked (8): the rest are searched for, with the same answers', () => {
    const letters = 'abcdefghij';
    const text = [...letters].map((c, i) => `transaction run_${c} { Content =~ "^[${c}]+ /x${i}/"; }`).join('\n');
    const s = SignatureSet.fromRules(parseSignatures(text, 'r'));
    [...letters].forEach((c, i) => {
      assert.equal(run(s, `${c}${c}${c} /x${i}/ HTTP/1.1`), `run_${c}`);
      assert.equal(run(s, ` /x${i}/`), null); // the run needs one character at least
      assert.equal(run(s, `${c}${c}x /x${i}/`), null);
      assert.equal(run(s, `${letters[(i + 1) % 10]} /x${i}/`), null);
    });
  });

  test('the same with only long triggers, searched by the skip scan; a request built to slow it is searched byte by byte, counted', () => {
    // every unanchored trigger 6 bytes or longer (`/shop/`, `checkout`, `/webmail/src/`, …)
    const text = [
      'transaction anchored_$1 { Content =~ "^GET /api/v1/([a-z]+)"; }',
      'transaction floating_$1 { Content =~ "GET .*/shop/([a-z]+)/item"; }',
      'transaction two_literals { Content =~ "/cart.*checkout"; }',
      'transaction webmail_$1 { Depth = 50; Content =~ "GET .*/webmail/src/([a-z_.]+)"; }',
      'transaction class { Content =~ "[0-9][0-9]/zzzzz"; }',
      'transaction long_a { Content =~ "aaaaaaaaaaaaaaab"; }',
      'transaction subj_$1 { Subject =~ "^A ([a-z]+)\\.example\\.com$"; }',
      'transaction subj_float { Subject =~ "\\.cdn\\.net"; }',
    ].join('\n');
    const examples = ['GET /api/v1/items', 'GET /a/shop/toys/item', '/cart?checkout', 'GET /x/webmail/src/right_main.php', '12/zzzzz', '1/zzzz',
      'aaaaaaaaaaaaaaab', 'aaaaaaaaaaaaaab', 'A www.example.com', 'img.cdn.net', 'cdn.ne'];
    const pieces = ['GET ', '/', 'api', 'shop', 'item', 'webmail', 'src', 'z', 'a', 'aaaa', '.', 'A ', 'cart', 'check', ' '];
    const s = agreesWithLoop(text, examples, pieces);
    const before = s.stats().literal_scan_fallbacks;
    // every window of the a's ends like long_a's first 6 bytes, and each walk from it goes 15 bytes
    assert.equal(run(s, 'GET /' + 'a'.repeat(300)), null);
    assert.equal(run(s, 'GET /' + 'a'.repeat(260) + 'b'), null); // the b past long_a's 256-byte window
    assert.equal(run(s, 'GET /' + 'a'.repeat(100) + 'b'), 'long_a');
    assert.equal(s.stats().literal_scan_fallbacks, before + 3);
    assert.equal(run(s, 'GET /x/webmail/src/right_main.php'), 'webmail_right_main.php');
    assert.equal(s.stats().literal_scan_fallbacks, before + 3);
  });
});
