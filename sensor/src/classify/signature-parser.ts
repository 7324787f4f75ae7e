/*
 * PasTmon's signature language (docs/signatures.md has the grammar):
 *
 *   // http "GET " request for webmail
 *   transaction GET_webmail_$1 {
 *       Offset = 0;
 *       Depth = 50;
 *       Content =~ "GET .*\/webmail\/src\/([a-z\-_\.]+)";
 *   }
 *
 * A hand-written tokenizer and recursive-descent parser: the grammar is six productions,
 * so a parser library would cost a dependency and buy nothing, and every error must name
 * file:line:column and say what was expected, which is easiest when the code that knows what
 * it expects also holds the token that disappointed it.
 *
 * Positions: lines and columns count from 1; a column counts characters (a tab is one).
 * An error points at the token found, except a missing ';' which points just after the
 * value it should follow, and a refused pattern construct, which points at the construct
 * inside the string.
 */
import { analyzerById, ANALYZERS, FALLBACK_TCP } from '../analyzers/registry.ts';
import { enableLinearRegexFallback, runsInLinearTime } from './linear-regex.ts';
import { PatternError, translatePcre } from './pcre-pattern.ts';

/** One rule of a signature file, in file order. Immutable once parsed. */
export interface SignatureRule {
  /** name template as written, e.g. `GET_webmail_$1`; `$1`..`$9` stand for capture groups */
  name: string;
  /** first request byte matched (Content rules; 0 for Subject rules) */
  offset: number;
  /** request bytes matched from `offset` (Content rules: 256 when the file said 0 or nothing; 0 for Subject rules) */
  depth: number;
  /** the regex as written in the file, between the quotes (PCRE syntax) */
  pattern: string;
  /** `pattern` compiled as JavaScript (pcre-pattern.ts), no flags */
  regex: RegExp;
  /** `content`: the request bytes [offset, offset + depth) as latin1; `subject`: the analyzer's subject */
  target: 'content' | 'subject';
  /** analyzer id the rule is restricted to (`Protocol = http;`), or null for any */
  protocol: string | null;
  file: string;
  /** position of the `transaction` keyword */
  line: number;
  column: number;
}

/** A signature file refused at load. `message` is "FILE:LINE:COLUMN: expected X, found Y". */
export class SignatureSyntaxError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly expected: string,
    readonly found: string,
  ) {
    super(`${file}:${line}:${column}: expected ${expected}, found ${found}`);
    this.name = 'SignatureSyntaxError';
  }
}

/** Depth when a Content rule gives none (or 0). */
export const DEFAULT_DEPTH = 256;
/** Largest Offset + Depth: how many request bytes a transaction may have to keep for classification. */
export const MAX_WINDOW_BYTES = 65536;

type TokenKind = 'word' | 'string' | '{' | '}' | ';' | '=' | '=~' | 'invalid' | 'eof';

interface Token {
  kind: TokenKind;
  /** word text, string contents (between the quotes, as written), or the invalid character */
  text: string;
  line: number;
  column: number;
  /** position just after the token */
  end_line: number;
  end_column: number;
}

/** Characters of a word: keywords, numbers, protocol ids and rule names (with `$n`). */
const WORD_CHAR = /[A-Za-z0-9_.$\-]/;

class Tokenizer {
  private pos = 0;
  private line = 1;
  private column = 1;

  constructor(private readonly text: string, private readonly file: string) {
    // a UTF-8 byte order mark, read as latin1 or as UTF-8 (takes no column)
    if (text.startsWith('\u00ef\u00bb\u00bf')) this.pos = 3;
    else if (text.startsWith('\ufeff')) this.pos = 1;
  }

  private advance(n: number): void {
    for (let i = 0; i < n; i++) {
      if (this.text[this.pos] === '\n') {
        this.line++;
        this.column = 1;
      } else this.column++;
      this.pos++;
    }
  }

  private error(line: number, column: number, expected: string, found: string): never {
    throw new SignatureSyntaxError(this.file, line, column, expected, found);
  }

  next(): Token {
    this.skipSpaceAndComments();
    const line = this.line;
    const column = this.column;
    const make = (kind: TokenKind, text: string): Token => ({ kind, text, line, column, end_line: this.line, end_column: this.column });
    const c = this.text[this.pos];
    if (c === undefined) return make('eof', '');
    if (c === '{' || c === '}' || c === ';') {
      this.advance(1);
      return make(c, c);
    }
    if (c === '=') {
      if (this.text[this.pos + 1] === '~') {
        this.advance(2);
        return make('=~', '=~');
      }
      this.advance(1);
      return make('=', '=');
    }
    if (c === '"') {
      // PasTmon gave the string to PCRE unchanged: a backslash escapes the next character
      // for the purpose of finding the closing quote, and both reach the regex (`\"` is a quote).
      let i = this.pos + 1;
      for (;;) {
        const d = this.text[i];
        if (d === undefined || d === '\n' || (d === '\r' && this.text[i + 1] === '\n')) {
          this.error(line, column, "a '\"' to close the string that starts here", d === undefined ? 'the end of the file' : 'the end of the line');
        }
        if (d === '\\' && this.text[i + 1] !== undefined && this.text[i + 1] !== '\n') {
          i += 2;
          continue;
        }
        if (d === '"') break;
        i++;
      }
      const body = this.text.slice(this.pos + 1, i);
      this.advance(i + 1 - this.pos);
      return make('string', body);
    }
    if (WORD_CHAR.test(c)) {
      let i = this.pos;
      while (i < this.text.length && WORD_CHAR.test(this.text[i]!)) i++;
      const word = this.text.slice(this.pos, i);
      this.advance(i - this.pos);
      return make('word', word);
    }
    this.advance(1);
    return make('invalid', c);
  }

  private skipSpaceAndComments(): void {
    for (;;) {
      const c = this.text[this.pos];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
        this.advance(1);
      } else if (c === '/' && this.text[this.pos + 1] === '/') {
        while (this.pos < this.text.length && this.text[this.pos] !== '\n') this.advance(1);
      } else if (c === '/' && this.text[this.pos + 1] === '*') {
        const line = this.line;
        const column = this.column;
        const end = this.text.indexOf('*/', this.pos + 2);
        if (end < 0) this.error(line, column, "'*/' to close the comment that starts here", 'the end of the file');
        this.advance(end + 2 - this.pos);
      } else return;
    }
  }
}

function describe(t: Token): string {
  switch (t.kind) {
    case 'eof': return 'the end of the file';
    case 'string': return `the string "${t.text.length > 40 ? t.text.slice(0, 40) + '...' : t.text}"`;
    default: return `'${t.text}'`;
  }
}

const KEYWORDS = ['offset', 'depth', 'content', 'subject', 'protocol'] as const;
type Keyword = (typeof KEYWORDS)[number];
const KEYWORD_SPELLING: Record<Keyword, string> = { offset: 'Offset', depth: 'Depth', content: 'Content', subject: 'Subject', protocol: 'Protocol' };

function protocolIds(): string[] {
  return [...ANALYZERS.map((a) => a.id), FALLBACK_TCP.id];
}

class Parser {
  private tok: Token;
  /** the token before `tok` */
  private prev: Token | null = null;

  constructor(private readonly lexer: Tokenizer, private readonly file: string) {
    this.tok = lexer.next();
  }

  /** the current token (a method, so that TypeScript does not keep narrowing it across `shift()`) */
  private cur(): Token {
    return this.tok;
  }

  private shift(): Token {
    const t = this.tok;
    this.prev = t;
    this.tok = this.lexer.next();
    return t;
  }

  private fail(at: { line: number; column: number }, expected: string, found: string): never {
    throw new SignatureSyntaxError(this.file, at.line, at.column, expected, found);
  }

  private expect(kind: TokenKind, expected: string): Token {
    if (this.tok.kind !== kind) this.fail(this.tok, expected, describe(this.tok));
    return this.shift();
  }

  /** `;` after a statement; when missing, the error points where it belongs. */
  private expectSemicolon(): void {
    if (this.cur().kind === ';') {
      this.shift();
      return;
    }
    const p = this.prev!;
    this.fail({ line: p.end_line, column: p.end_column }, "';'", describe(this.tok));
  }

  parseFile(): SignatureRule[] {
    const rules: SignatureRule[] = [];
    while (this.cur().kind !== 'eof') rules.push(this.parseRule());
    return rules;
  }

  private parseRule(): SignatureRule {
    const start = this.tok;
    if (this.tok.kind !== 'word' || this.tok.text.toLowerCase() !== 'transaction') {
      this.fail(this.tok, "'transaction'", describe(this.tok));
    }
    this.shift();
    const nameTok = this.expect('word', 'a rule name');
    const refs = nameRefs(nameTok, this.file);
    this.expect('{', "'{'");

    const seen = new Map<Keyword, Token>();
    let offset = 0;
    let depth = 0;
    let pattern: Token | null = null;
    let target: 'content' | 'subject' = 'content';
    let protocol: string | null = null;

    while (this.cur().kind !== '}') {
      const kwTok = this.cur();
      const kw = kwTok.kind === 'word' ? (kwTok.text.toLowerCase() as Keyword) : null;
      if (kw === null || !KEYWORDS.includes(kw)) {
        this.fail(kwTok, "one of Offset, Depth, Content, Subject, Protocol or '}'", describe(kwTok));
      }
      const first = seen.get(kw);
      if (first !== undefined) {
        this.fail(kwTok, `one ${KEYWORD_SPELLING[kw]} per rule (the first is at ${first.line}:${first.column})`, `a second '${kwTok.text}'`);
      }
      seen.set(kw, kwTok);
      this.shift();
      switch (kw) {
        case 'offset':
        case 'depth': {
          this.expect('=', "'='");
          const v = this.cur();
          if (v.kind !== 'word' || !/^[0-9]+$/.test(v.text)) this.fail(v, 'a non-negative integer', describe(v));
          const n = Number(v.text);
          if (n > MAX_WINDOW_BYTES) this.fail(v, `a number of bytes up to ${MAX_WINDOW_BYTES}`, describe(v));
          this.shift();
          if (kw === 'offset') offset = n;
          else depth = n;
          break;
        }
        case 'content':
        case 'subject': {
          const other = seen.get(kw === 'content' ? 'subject' : 'content');
          if (other !== undefined) {
            this.fail(kwTok, `only one of Content or Subject per rule (${KEYWORD_SPELLING[kw === 'content' ? 'subject' : 'content']} is at ${other.line}:${other.column})`, `'${kwTok.text}'`);
          }
          this.expect('=~', "'=~'");
          pattern = this.expect('string', 'a quoted regular expression');
          target = kw;
          break;
        }
        case 'protocol': {
          this.expect('=', "'='");
          const v = this.cur();
          const known = protocolIds();
          const id = v.kind === 'word' || v.kind === 'string' ? v.text.toLowerCase() : '';
          if (analyzerById(id) === undefined) this.fail(v, `a protocol: ${known.join(', ')}`, describe(v));
          this.shift();
          protocol = id;
          break;
        }
      }
      this.expectSemicolon();
    }
    const close = this.cur();
    if (pattern === null) this.fail(close, `a Content or Subject match in rule ${nameTok.text}`, "'}'");
    this.shift();

    if (target === 'subject') {
      const misplaced = seen.get('offset') ?? seen.get('depth');
      if (misplaced !== undefined) {
        this.fail(misplaced, 'Offset and Depth only in a Content rule (a Subject rule matches the whole subject)', `'${misplaced.text}'`);
      }
    } else {
      if (depth === 0) depth = DEFAULT_DEPTH;
      if (offset + depth > MAX_WINDOW_BYTES) {
        const at = seen.get('depth') ?? seen.get('offset')!;
        this.fail(at, `Offset + Depth up to ${MAX_WINDOW_BYTES}`, `${offset} + ${depth}`);
      }
    }

    const { regex, groups } = compilePattern(pattern, this.file);
    for (const r of refs) {
      if (r.group > groups) {
        const expected = groups === 0 ? 'no $n in the name (the pattern has no capture groups)' : `$1${groups > 1 ? ` to $${groups}` : ''} (the pattern has ${groups} capture group${groups > 1 ? 's' : ''})`;
        this.fail(r, expected, `'$${r.group}'`);
      }
    }

    return {
      name: nameTok.text,
      offset: target === 'content' ? offset : 0,
      depth: target === 'content' ? depth : 0,
      pattern: pattern.text,
      regex,
      target,
      protocol,
      file: this.file,
      line: start.line,
      column: start.column,
    };
  }
}

/** The `$n` of a name, with their positions; refuses a `$` not followed by 1..9. */
function nameRefs(t: Token, file: string): { group: number; line: number; column: number }[] {
  const refs: { group: number; line: number; column: number }[] = [];
  for (let i = 0; i < t.text.length; i++) {
    if (t.text[i] !== '$') continue;
    const d = t.text[i + 1];
    if (d === undefined || d < '1' || d > '9') {
      throw new SignatureSyntaxError(file, t.line, t.column + i, '$1 to $9 (a capture group) after $', d === undefined ? `'$'` : `'$${d}'`);
    }
    refs.push({ group: d.charCodeAt(0) - 48, line: t.line, column: t.column + i });
    i++;
  }
  return refs;
}

/**
 * PCRE pattern → JavaScript RegExp, refusing what could stall the sensor. `t` is the string
 * token; a pattern position maps to column `t.column + 1 + index` (strings are one line and
 * their text reaches the regex unchanged).
 */
function compilePattern(t: Token, file: string): { regex: RegExp; groups: number } {
  const at = (index: number) => ({ line: t.line, column: t.column + 1 + index });
  let source: string;
  try {
    source = translatePcre(t.text).source;
  } catch (e) {
    if (!(e instanceof PatternError)) throw e;
    const p = at(e.index);
    throw new SignatureSyntaxError(file, p.line, p.column, e.expected, e.found);
  }
  const p = at(0);
  let regex: RegExp;
  try {
    regex = new RegExp(source);
  } catch (e) {
    // "Invalid regular expression: /(/: Unterminated group" → "Unterminated group"
    const msg = e instanceof Error ? e.message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '') : String(e);
    throw new SignatureSyntaxError(file, p.line, p.column, 'a valid regular expression', `"${t.text}" (${msg})`);
  }
  if (!runsInLinearTime(source)) {
    if (!enableLinearRegexFallback()) {
      throw new SignatureSyntaxError(file, p.line, p.column,
        'a Node.js whose V8 has the linear-time regexp engine (--enable-experimental-regexp-engine-on-excessive-backtracks), so that no rule can stall the sensor',
        `Node.js ${process.version} without it`);
    }
    throw new SignatureSyntaxError(file, p.line, p.column,
      "a regular expression V8's linear-time engine can run (no backreferences, lookaround, case-insensitivity, or deeply nested counted repetition)",
      `"${t.text}"`);
  }
  // the group count, as V8 counts it: an empty alternative always matches
  const groups = new RegExp(source + '|').exec('')!.length - 1;
  return { regex, groups };
}

/**
 * Parses one signature file. `text` should be the file read as latin1, so that a pattern
 * is made of the same byte values as the requests it is matched against (`fromFiles` does
 * so). Throws `SignatureSyntaxError` on the first error.
 */
export function parseSignatures(text: string, file: string): SignatureRule[] {
  // before any pattern is compiled: V8 decides at compile time whether a regexp may fall back
  enableLinearRegexFallback();
  return new Parser(new Tokenizer(text, file), file).parseFile();
}
