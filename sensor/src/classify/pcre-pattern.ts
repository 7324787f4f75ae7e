/*
 * PasTmon handed a rule's string to PCRE (no options) and matched it against raw request
 * bytes. We run it with a JavaScript RegExp without flags (non-unicode mode, so that
 * PCRE-style identity escapes such as `\-` or `\"` and latin1 bytes as code units work) over
 * the bytes decoded as latin1. This module reads the pattern with PCRE's rules and writes the
 * JavaScript source that means the same, refusing what cannot mean the same or cannot be run
 * in linear time (see docs/signatures.md, "Regular expression dialect"):
 *
 *   PCRE                        JavaScript we emit          why
 *   .                           [^\n]                       JS `.` also stops at \r
 *   \s  \S                      [\t\n\v\f\r ]  [^...]        JS \s also matches 0xA0
 *   \h \H \v \V                 [\t \xa0] ... classes        JS: \h is "h", \v is VT only
 *   \A  \z                      ^  $                         JS has no \A \z (no m flag: same)
 *   \e \a \cX \0nn \xH \x{HH}   \xHH                         JS reads \e as "e", \xH as "xH"
 *   []...]  [^]...]             [\]...]  [^\]...]            JS: [] is empty, [^] is any
 *   [[:alpha:]]                 [A-Za-z]                     JS has no POSIX classes
 *   (?P<n>...) (?'n'...)        (?<n>...)
 *   (?#...)                     (nothing)
 *
 * Refused: backreferences and lookaround (the linear-time engine cannot run them, so they
 * could stall the sensor), inline options such as (?i) (case-insensitive matching cannot run
 * in linear time in V8 11.3), counted repetition whose product through nesting exceeds 16
 * (V8 11.3's linear engine unrolls it), possessive quantifiers, atomic groups, recursion,
 * conditionals, and escapes whose PCRE meaning JavaScript cannot express (\Z \G \Q \R \X ...).
 *
 * Left as JavaScript reads it (documented): `$` matches only at the very end (PCRE also
 * before a final \n).
 *
 * The same walk finds literal strings any match must contain; the signature set checks them
 * all at once (literal-matcher.ts) before running a regex.
 */

/** Most repetitions V8 11.3's linear-time engine accepts, multiplied through nesting. */
export const MAX_REPLICATION = 16;

/** A pattern refused, at `index` (0-based, in the pattern text): "expected `expected`, found `found`". */
export class PatternError extends Error {
  constructor(readonly index: number, readonly expected: string, readonly found: string) {
    super(`expected ${expected}, found ${found}`);
    this.name = 'PatternError';
  }
}

/** What a PCRE pattern becomes. */
export interface PcrePattern {
  /** JavaScript RegExp source meaning the same, to compile without flags */
  source: string;
  /** capture groups, numbered as both PCRE and JavaScript number them */
  groups: number;
  /**
   * Strings (latin1 code units, each at least 2 long) that every match contains, longest
   * first; empty when none is certain. A prefilter: absent literal, certain mismatch.
   * Does not repeat a literal that every string of an `anchor` without a run holds.
   */
  literals: string[];
  /**
   * Where every match starts (the pattern begins with `^` or `\A`): at the start of the input, after
   * the longest run of one class's characters there (when `run` is not null), one of
   * `strings`. `^GET /api/` → no run, ["GET /api/"]; `^(GET|HEAD) /a` → no run,
   * ["GET /a", "HEAD /a"]; `^[A-Z]+ /app/` and `^([A-Z]+) /app/` → run `[A-Z]`, [" /app/"].
   * Checked at one position found by stepping over the run, instead of searched for. null
   * when the pattern does not start so (or a string holds a code unit above 0xff).
   */
  anchor: Anchor | null;
}

/** See `PcrePattern.anchor`. */
export interface Anchor {
  /**
   * A class, as JavaScript regexp source (`[A-Z]`, `\d`), whose characters every match
   * starts with (any number of them, maybe none), or null. No string starts with one of
   * its characters, so the run a match starts with is the longest run there.
   */
  run: string | null;
  /** distinct, none a prefix of another (the shorter is kept), each at least 1 long (latin1 code units) */
  strings: string[];
}

/** How many strings the leading alternatives of an anchored pattern may make (`^(a|b)(c|d)`: 4). */
const MAX_ANCHOR_STRINGS = 16;

type Node =
  | { kind: 'char'; code: number }
  | { kind: 'set'; source: string }
  | { kind: 'assert'; start: boolean }
  | { kind: 'group'; alts: Node[][] }
  | { kind: 'repeat'; min: number; max: number; body: Node; index: number; text: string };

const INF = Infinity;

/** Expansions of PCRE class escapes, as class contents (C locale, PCRE2 >= 10 / PCRE >= 8.34). */
const SPACE = '\\t\\n\\v\\f\\r ';
const HSPACE = '\\t \\xa0';
const VSPACE = '\\n\\v\\f\\r\\x85';
const CLASS_ESCAPES: Record<string, { pos: string; neg: boolean }> = {
  s: { pos: SPACE, neg: false }, S: { pos: SPACE, neg: true },
  h: { pos: HSPACE, neg: false }, H: { pos: HSPACE, neg: true },
  v: { pos: VSPACE, neg: false }, V: { pos: VSPACE, neg: true },
};

/** POSIX classes, C locale, as ranges of code units. */
const POSIX: Record<string, [number, number][]> = {
  alnum: [[0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a]],
  alpha: [[0x41, 0x5a], [0x61, 0x7a]],
  ascii: [[0x00, 0x7f]],
  blank: [[0x09, 0x09], [0x20, 0x20]],
  cntrl: [[0x00, 0x1f], [0x7f, 0x7f]],
  digit: [[0x30, 0x39]],
  graph: [[0x21, 0x7e]],
  lower: [[0x61, 0x7a]],
  print: [[0x20, 0x7e]],
  punct: [[0x21, 0x2f], [0x3a, 0x40], [0x5b, 0x60], [0x7b, 0x7e]],
  space: [[0x09, 0x0d], [0x20, 0x20]],
  upper: [[0x41, 0x5a]],
  word: [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]],
  xdigit: [[0x30, 0x39], [0x41, 0x46], [0x61, 0x66]],
};

function hex2(code: number): string {
  return code <= 0xff ? '\\x' + code.toString(16).padStart(2, '0') : '\\u' + code.toString(16).padStart(4, '0');
}

function rangesText(ranges: [number, number][]): string {
  return ranges.map(([a, b]) => (a === b ? hex2(a) : `${hex2(a)}-${hex2(b)}`)).join('');
}

/** Complement within U+0000..U+FFFF, as ranges. */
function complement(ranges: [number, number][]): [number, number][] {
  const sorted = [...ranges].sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  let next = 0;
  for (const [a, b] of sorted) {
    if (a > next) out.push([next, a - 1]);
    next = Math.max(next, b + 1);
  }
  if (next <= 0xffff) out.push([next, 0xffff]);
  return out;
}

/** Ranges of one of the CLASS_ESCAPES, for use inside a class (a negated one expands to its complement). */
const CLASS_ESCAPE_RANGES: Record<string, [number, number][]> = {
  s: [[0x09, 0x0d], [0x20, 0x20]],
  h: [[0x09, 0x09], [0x20, 0x20], [0xa0, 0xa0]],
  v: [[0x0a, 0x0d], [0x85, 0x85]],
};

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const isHex = (c: string | undefined): boolean => c !== undefined && /^[0-9a-fA-F]$/.test(c);
const isOctal = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '7';
const isLetter = (c: string | undefined): boolean => c !== undefined && /^[A-Za-z]$/.test(c);

/** Characters that need a backslash to stand for themselves outside a class in JavaScript. */
const SYNTAX_CHARS = new Set(['^', '$', '\\', '.', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '/']);

function charText(code: number): string {
  const c = String.fromCharCode(code);
  if (SYNTAX_CHARS.has(c) || c === '-') return '\\' + c;
  if (code < 0x20 || code === 0x7f || code > 0x7e) return hex2(code);
  return c;
}

/** Escapes JavaScript would read differently from PCRE (or not at all), and what to write instead. */
const REFUSED_ESCAPES: Record<string, string> = {
  Z: '$ (\\Z also matches before a final newline, which needs lookahead)',
  G: 'an anchor JavaScript has (^)',
  Q: 'each special character escaped on its own (\\Q...\\E quoting is PCRE only)',
  E: 'each special character escaped on its own (\\Q...\\E quoting is PCRE only)',
  R: '(\\r\\n|\\n|\\r) (\\R is atomic in PCRE)',
  X: 'an explicit class (\\X, a Unicode cluster, is PCRE only)',
  C: 'a dot (\\C, one code unit, is PCRE only)',
  K: 'a capture group (\\K, reset match start, is PCRE only)',
  N: '[^\\n] (\\N is PCRE only)',
  p: 'an explicit class (Unicode properties need the u flag)',
  P: 'an explicit class (Unicode properties need the u flag)',
  L: 'explicit case (\\L \\l \\U \\u case changes are Perl only)',
  l: 'explicit case (\\L \\l \\U \\u case changes are Perl only)',
  U: 'explicit case (\\L \\l \\U \\u case changes are Perl only)',
  o: '\\xHH (\\o{...} octal is PCRE only)',
};

/** A counted quantifier, where the parser stands (sticky). */
const BRACES = /\{(\d+)(,(\d*))?\}/y;

class Parser {
  private pos = 0;
  private out = '';
  groups = 0;

  constructor(private readonly src: string) {}

  parse(): { source: string; tree: Node[][] } {
    const tree = this.alternatives();
    if (this.pos < this.src.length) {
      // only an unmatched ')' stops alternatives() early
      throw new PatternError(this.pos, "a '(' before this ')'", "')'");
    }
    return { source: this.out, tree };
  }

  private peek(offset = 0): string | undefined {
    return this.src[this.pos + offset];
  }

  private alternatives(): Node[][] {
    const alts: Node[][] = [this.sequence()];
    while (this.peek() === '|') {
      this.pos++;
      this.out += '|';
      alts.push(this.sequence());
    }
    return alts;
  }

  private sequence(): Node[] {
    const seq: Node[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === '|' || c === ')') return seq;
      const atom = this.atom();
      if (atom === null) continue; // a (?#comment)
      const q = this.quantifier();
      if (q === null) {
        seq.push(atom);
        continue;
      }
      if (atom.kind === 'assert') {
        throw new PatternError(q.index, 'something to repeat before the quantifier (an anchor matches no character)', `'${q.text}'`);
      }
      seq.push({ kind: 'repeat', min: q.min, max: q.max, body: atom, index: q.index, text: q.text });
    }
  }

  /** `{n}`, `{n,}` or `{n,m}` at the current position, else null (then `{` is a literal, in PCRE and JavaScript alike). */
  private braces(): { min: number; max: number; len: number } | null {
    BRACES.lastIndex = this.pos;
    const m = BRACES.exec(this.src);
    if (m === null) return null;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? INF : Number(m[3]);
    return { min, max, len: m[0].length };
  }

  private quantifier(): { min: number; max: number; index: number; text: string } | null {
    const index = this.pos;
    const c = this.peek();
    let min: number;
    let max: number;
    if (c === '*') { min = 0; max = INF; this.pos++; }
    else if (c === '+') { min = 1; max = INF; this.pos++; }
    else if (c === '?') { min = 0; max = 1; this.pos++; }
    else if (c === '{') {
      const b = this.braces();
      if (b === null) return null;
      min = b.min;
      max = b.max;
      this.pos += b.len;
    } else return null;
    let text = this.src.slice(index, this.pos);
    if (this.peek() === '?') {
      this.pos++; // lazy
      text += '?';
    } else if (this.peek() === '+') {
      throw new PatternError(index, 'a greedy or lazy quantifier (possessive quantifiers are PCRE only)', `'${text}+'`);
    }
    this.out += text;
    const next = this.peek();
    if (next === '*' || next === '+' || next === '?' || (next === '{' && this.braces() !== null)) {
      throw new PatternError(this.pos, 'one quantifier per item (put the item in a group to repeat it again)', `'${next}'`);
    }
    return { min, max, index, text };
  }

  private atom(): Node | null {
    const c = this.peek()!;
    switch (c) {
      case '(':
        return this.group();
      case '[': {
        const from = this.out.length;
        this.characterClass();
        return { kind: 'set', source: this.out.slice(from) };
      }
      case '\\':
        return this.escape();
      case '.':
        this.pos++;
        this.out += '[^\\n]';
        return { kind: 'set', source: '[^\\n]' };
      case '^':
      case '$':
        this.pos++;
        this.out += c;
        return { kind: 'assert', start: c === '^' };
      case '*':
      case '+':
      case '?':
        throw new PatternError(this.pos, 'something to repeat before the quantifier', `'${c}'`);
      case '{':
        if (this.braces() !== null) throw new PatternError(this.pos, 'something to repeat before the quantifier', `'${c}'`);
        this.pos++;
        this.out += '\\{';
        return { kind: 'char', code: 0x7b };
      default:
        this.pos++;
        this.out += charText(c.charCodeAt(0));
        return { kind: 'char', code: c.charCodeAt(0) };
    }
  }

  private group(): Node | null {
    const open = this.pos;
    this.pos++; // (
    const rest = this.src.slice(this.pos, this.pos + 3);
    if (rest.startsWith('?')) {
      if (rest.startsWith('?:')) {
        this.pos += 2;
        this.out += '(?:';
      } else if (rest.startsWith('?<=') || rest.startsWith('?<!')) {
        throw new PatternError(open, 'a pattern without lookbehind (the linear-time regexp engine cannot run it, so a pathological request could stall the sensor)', `'(${rest}'`);
      } else if (rest.startsWith('?=') || rest.startsWith('?!')) {
        throw new PatternError(open, 'a pattern without lookahead (the linear-time regexp engine of Node 20 cannot run it, so a pathological request could stall the sensor)', `'(${rest.slice(0, 2)}'`);
      } else if (rest.startsWith('?<') || rest.startsWith('?P<') || rest.startsWith("?'")) {
        const skip = rest.startsWith('?P<') ? 3 : 2;
        const close = rest.startsWith("?'") ? "'" : '>';
        const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.src.slice(this.pos + skip));
        if (m === null || this.src[this.pos + skip + m[0].length] !== close) {
          throw new PatternError(this.pos + skip, `a group name (letters, digits, _) and '${close}'`, this.found(this.pos + skip));
        }
        this.pos += skip + m[0].length + 1;
        this.out += `(?<${m[0]}>`;
        this.groups++;
      } else if (rest.startsWith('?#')) {
        const end = this.src.indexOf(')', this.pos);
        if (end < 0) throw new PatternError(open, "')' to close the comment group (?#", 'the end of the pattern');
        this.pos = end + 1;
        return null;
      } else if (rest.startsWith('?P=') || /^\?(?:[0-9R&]|[+-][0-9]|P>)/.test(rest)) {
        throw new PatternError(open, 'a pattern without backreferences or recursion (the linear-time regexp engine cannot run them)', `'(${rest}'`);
      } else if (rest.startsWith('?>')) {
        throw new PatternError(open, 'a pattern without atomic groups (PCRE only; write a plain group)', "'(?>'");
      } else if (rest.startsWith('?|')) {
        throw new PatternError(open, 'a pattern without branch-reset groups (PCRE only)', "'(?|'");
      } else if (rest.startsWith('?(')) {
        throw new PatternError(open, 'a pattern without conditional groups (PCRE only)', "'(?('");
      } else {
        throw new PatternError(open, 'a pattern without inline options: there are no flags (case-insensitive matching cannot run in linear time; write [Gg][Ee][Tt]; for (?s) write [\\s\\S])', `'(${rest.slice(0, 2)}'`);
      }
    } else if (rest.startsWith('*')) {
      throw new PatternError(open, 'a pattern without PCRE verbs', `'(*'`);
    } else {
      this.groups++;
      this.out += '(';
    }
    const alts = this.alternatives();
    if (this.peek() !== ')') throw new PatternError(open, "')' to close the group that starts here", 'the end of the pattern');
    this.pos++;
    this.out += ')';
    return { kind: 'group', alts };
  }

  private found(i: number): string {
    return i >= this.src.length ? 'the end of the pattern' : `'${this.src[i]}'`;
  }

  /** A character escape valid both inside and outside a class; returns its code, or null when `\X` is not one. */
  private charEscape(): number | null {
    const c = this.peek(1)!;
    const at = this.pos;
    switch (c) {
      case 'n': this.pos += 2; return 0x0a;
      case 'r': this.pos += 2; return 0x0d;
      case 't': this.pos += 2; return 0x09;
      case 'f': this.pos += 2; return 0x0c;
      case 'e': this.pos += 2; return 0x1b;
      case 'a': this.pos += 2; return 0x07;
      case 'x': {
        if (this.peek(2) === '{') {
          const m = /^\{([0-9a-fA-F]{1,6})\}/.exec(this.src.slice(this.pos + 2));
          if (m === null) throw new PatternError(at, 'hex digits and } after \\x{', this.found(this.pos + 3));
          const code = parseInt(m[1]!, 16);
          if (code > 0xffff) throw new PatternError(at, 'a code point up to \\x{ffff}', `'\\x{${m[1]}}'`);
          this.pos += 2 + m[0].length;
          return code;
        }
        let n = 0;
        while (n < 2 && isHex(this.peek(2 + n))) n++;
        const code = n === 0 ? 0 : parseInt(this.src.slice(this.pos + 2, this.pos + 2 + n), 16);
        this.pos += 2 + n;
        return code;
      }
      case 'u': {
        const m = /^[0-9a-fA-F]{4}/.exec(this.src.slice(this.pos + 2, this.pos + 6));
        if (m === null) throw new PatternError(at, '\\uHHHH (four hex digits)', `'\\u${this.src.slice(this.pos + 2, this.pos + 6)}'`);
        this.pos += 6;
        return parseInt(m[0], 16);
      }
      case 'c': {
        const l = this.peek(2);
        if (!isLetter(l)) throw new PatternError(at, 'a letter after \\c', this.found(this.pos + 2));
        this.pos += 3;
        return l!.toUpperCase().charCodeAt(0) ^ 0x40;
      }
      case '0': {
        // PCRE: \0 and up to two more octal digits
        let n = 0;
        while (n < 2 && isOctal(this.peek(2 + n))) n++;
        const code = parseInt('0' + this.src.slice(this.pos + 2, this.pos + 2 + n), 8);
        this.pos += 2 + n;
        return code;
      }
      default:
        return null;
    }
  }

  private escape(): Node {
    const at = this.pos;
    const c = this.peek(1);
    if (c === undefined) throw new PatternError(at, 'a character after the backslash', 'the end of the pattern');
    const code = this.charEscape();
    if (code !== null) {
      this.out += charText(code);
      return { kind: 'char', code };
    }
    if (c >= '1' && c <= '9') {
      throw new PatternError(at, 'a pattern without backreferences (the linear-time regexp engine cannot run them, so a pathological request could stall the sensor)', `'\\${c}'`);
    }
    if (c === 'k' || c === 'g') {
      throw new PatternError(at, 'a pattern without backreferences (the linear-time regexp engine cannot run them, so a pathological request could stall the sensor)', `'\\${c}'`);
    }
    this.pos += 2;
    if (c === 'd' || c === 'D' || c === 'w' || c === 'W') {
      this.out += '\\' + c;
      return { kind: 'set', source: '\\' + c };
    }
    const cls = CLASS_ESCAPES[c];
    if (cls !== undefined) {
      const source = `[${cls.neg ? '^' : ''}${cls.pos}]`;
      this.out += source;
      return { kind: 'set', source };
    }
    if (c === 'b' || c === 'B') {
      this.out += '\\' + c;
      return { kind: 'assert', start: false };
    }
    if (c === 'A') {
      this.out += '^';
      return { kind: 'assert', start: true };
    }
    if (c === 'z') {
      this.out += '$';
      return { kind: 'assert', start: false };
    }
    const instead = REFUSED_ESCAPES[c];
    if (instead !== undefined) throw new PatternError(at, instead, `'\\${c}'`);
    // any other escaped character stands for itself (PCRE 8 and JavaScript agree)
    const lit = c.charCodeAt(0);
    this.out += charText(lit);
    return { kind: 'char', code: lit };
  }

  /** A class `[...]`; emits its JavaScript form. */
  private characterClass(): void {
    const open = this.pos;
    this.pos++;
    let text = '[';
    if (this.peek() === '^') {
      this.pos++;
      text += '^';
    }
    // each item's text, and whether it expanded to several ranges (then an adjacent '-' is literal, as in PCRE)
    const items: { text: string; dash: boolean; multi: boolean }[] = [];
    if (this.peek() === ']') {
      // PCRE: a ']' first in the class is a literal
      this.pos++;
      items.push({ text: '\\]', dash: false, multi: false });
    }
    for (;;) {
      const c = this.peek();
      if (c === undefined) throw new PatternError(open, "']' to close the character class that starts here", 'the end of the pattern');
      if (c === ']') {
        this.pos++;
        break;
      }
      if (c === '[' && this.peek(1) === ':') {
        const m = /^\[:(\^?)([a-z]+):\]/.exec(this.src.slice(this.pos, this.pos + 16));
        if (m !== null) {
          const ranges = POSIX[m[2]!];
          if (ranges === undefined) throw new PatternError(this.pos, 'a POSIX class (alpha, digit, alnum, space, upper, lower, punct, xdigit, word, blank, cntrl, graph, print, ascii)', `'${m[0]}'`);
          this.pos += m[0].length;
          items.push({ text: rangesText(m[1] === '^' ? complement(ranges) : ranges), dash: false, multi: true });
          continue;
        }
      }
      if (c === '\\') {
        const e = this.peek(1);
        if (e === undefined) throw new PatternError(this.pos, 'a character after the backslash', 'the end of the pattern');
        const at = this.pos;
        const code = this.charEscape();
        if (code !== null) {
          items.push({ text: charText(code), dash: false, multi: false });
          continue;
        }
        if (isOctal(e)) {
          // PCRE and JavaScript: octal inside a class (\1..\7 and up to two more octal digits)
          let n = 1;
          while (n < 3 && isOctal(this.peek(1 + n))) n++;
          const v = parseInt(this.src.slice(this.pos + 1, this.pos + 1 + n), 8) & 0xff;
          this.pos += 1 + n;
          items.push({ text: charText(v), dash: false, multi: false });
          continue;
        }
        this.pos += 2;
        if (e === 'd' || e === 'D' || e === 'w' || e === 'W') {
          items.push({ text: '\\' + e, dash: false, multi: true });
          continue;
        }
        if (CLASS_ESCAPES[e] !== undefined) {
          const base = CLASS_ESCAPE_RANGES[e.toLowerCase()]!;
          const ranges = e === e.toUpperCase() ? complement(base) : base;
          items.push({ text: rangesText(ranges), dash: false, multi: true });
          continue;
        }
        if (e === 'b') {
          items.push({ text: '\\x08', dash: false, multi: false }); // backspace inside a class
          continue;
        }
        const instead = REFUSED_ESCAPES[e] ?? (e === 'k' || e === 'g' || e === 'B' || e === 'A' || e === 'z' ? 'a character (no anchors or references inside a class)' : undefined);
        if (instead !== undefined) throw new PatternError(at, instead, `'\\${e}'`);
        if (isDigit(e)) {
          items.push({ text: e, dash: false, multi: false }); // \8 \9: the digit
          continue;
        }
        items.push({ text: charText(e.charCodeAt(0)), dash: false, multi: false });
        continue;
      }
      this.pos++;
      if (c === '-') items.push({ text: '-', dash: true, multi: false });
      else items.push({ text: charText(c.charCodeAt(0)), dash: false, multi: false });
    }
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      if (it.dash && (items[i - 1]?.multi === true || items[i + 1]?.multi === true)) text += '\\-';
      else text += it.text;
    }
    this.out += text + ']';
  }
}

/** Check the replication limit of V8 11.3's linear-time engine, as it computes it. */
function checkReplication(alts: Node[][], factor: number): void {
  for (const seq of alts) for (const n of seq) checkNode(n, factor);
}

function checkNode(n: Node, factor: number): void {
  if (n.kind === 'group') checkReplication(n.alts, factor);
  else if (n.kind === 'repeat') {
    const local = n.max === INF ? n.min + 1 : n.max;
    if (n.min > MAX_REPLICATION || (n.max !== INF && n.max > MAX_REPLICATION) || factor * local > MAX_REPLICATION) {
      throw new PatternError(n.index, `repetition counts whose product through nesting is at most ${MAX_REPLICATION} ({n,} counts n+1; the linear-time regexp engine unrolls them; write + or * instead)`, `'${n.text}'`);
    }
    checkNode(n.body, factor * local);
  }
}

/** Literal runs every match of the sequence contains (conservative: break when unsure). */
function requiredLiterals(seq: Node[], out: string[]): void {
  let run = '';
  const flush = (): void => {
    if (run.length >= 2) out.push(run);
    run = '';
  };
  for (const n of seq) {
    switch (n.kind) {
      case 'char':
        run += String.fromCharCode(n.code);
        break;
      case 'set':
      case 'assert':
        flush();
        break;
      case 'group':
        flush();
        if (n.alts.length === 1) requiredLiterals(n.alts[0]!, out);
        break;
      case 'repeat':
        if (n.min === 0) {
          flush();
        } else if (n.body.kind === 'char') {
          const ch = String.fromCharCode(n.body.code);
          run += ch.repeat(n.min);
          if (n.max !== n.min) {
            // more copies may follow: the run ends here, and the next one starts with one copy
            flush();
            run = ch;
          }
        } else {
          flush();
          if (n.body.kind === 'group' && n.body.alts.length === 1) requiredLiterals(n.body.alts[0]!, out);
        }
        break;
    }
  }
  flush();
}

/** The class of a leading run: a class, a repeated class, or either alone in a group (`([A-Z]+)`). */
function runClass(n: Node | undefined): string | null {
  if (n === undefined) return null;
  if (n.kind === 'set') return n.source;
  if (n.kind === 'repeat' && n.body.kind === 'set') return n.body.source;
  if (n.kind === 'group' && n.alts.length === 1 && n.alts[0]!.length === 1) return runClass(n.alts[0]![0]);
  return null;
}

/** The texts of a group whose alternatives are all literal characters (`(GET|HEAD)`), else null. */
function literalAlternatives(n: Node): string[] | null {
  if (n.kind !== 'group') return null;
  const out: string[] = [];
  for (const alt of n.alts) {
    let text = '';
    for (const x of alt) {
      if (x.kind !== 'char') return null;
      text += String.fromCharCode(x.code);
    }
    out.push(text);
  }
  return out;
}

/** See `PcrePattern.anchor`: what a sequence starting with `^` starts with. */
function anchorOf(seq: Node[]): Anchor | null {
  const first = seq[0];
  if (first === undefined || first.kind !== 'assert' || !first.start) return null;
  let i = 1;
  const run = runClass(seq[1]);
  if (run !== null) i = 2;
  let strings = [''];
  for (; i < seq.length; i++) {
    const n = seq[i]!;
    if (n.kind === 'char') {
      strings = strings.map((s) => s + String.fromCharCode(n.code));
    } else if (n.kind === 'repeat' && n.body.kind === 'char' && n.min > 0) {
      const copies = String.fromCharCode(n.body.code).repeat(n.min);
      strings = strings.map((s) => s + copies);
      if (n.max !== n.min) break;
    } else {
      const alts = literalAlternatives(n);
      if (alts === null || alts.length * strings.length > MAX_ANCHOR_STRINGS) break;
      strings = strings.flatMap((s) => alts.map((a) => s + a));
    }
  }
  // a match starts with one of them: all must be kept, and all must be latin1 like the input
  if (strings.some((s) => s.length === 0 || [...s].some((ch) => ch.charCodeAt(0) > 0xff))) return null;
  if (run !== null) {
    // where the run ends is only known when no string can continue it
    const member = new RegExp(`^${run}$`);
    if (strings.some((s) => member.test(s[0]!))) return null;
  }
  // where one string is a prefix of another, the shorter alone finds the same inputs
  const distinct = [...new Set(strings)].sort((a, b) => a.length - b.length);
  const kept: string[] = [];
  for (const s of distinct) if (!kept.some((k) => s.startsWith(k))) kept.push(s);
  return { run, strings: kept };
}

/**
 * Reads a PasTmon (PCRE) pattern. Throws `PatternError` with the index of the offending
 * construct for what is refused; the caller still compiles `source` to catch what V8 itself
 * rejects, and asks `runsInLinearTime` as the last word.
 */
export function translatePcre(pattern: string): PcrePattern {
  const p = new Parser(pattern);
  const { source, tree } = p.parse();
  checkReplication(tree, 1);
  const found: string[] = [];
  let anchor: Anchor | null = null;
  if (tree.length === 1) {
    requiredLiterals(tree[0]!, found);
    anchor = anchorOf(tree[0]!);
  }
  const latin1 = (s: string): boolean => ![...s].some((ch) => ch.charCodeAt(0) > 0xff);
  // the anchored strings are checked in place: a literal inside every one of them adds
  // nothing (kept after a run: a set with many runs searches for its rules' literals instead)
  const inside = anchor !== null && anchor.run === null ? anchor.strings : null;
  const literals = [...new Set(found)].filter((s) => latin1(s) && !(inside !== null && inside.every((x) => x.includes(s))));
  literals.sort((a, b) => b.length - a.length);
  return { source, groups: p.groups, literals: literals.slice(0, 4), anchor };
}
