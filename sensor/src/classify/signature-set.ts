import { readFileSync } from 'node:fs';
import { latin1 } from '../decode/latin1.ts';
import { enableLinearRegexFallback, runsInLinearTime } from './linear-regex.ts';
import { LiteralMatcher } from './literal-matcher.ts';
import { translatePcre } from './pcre-pattern.ts';
import type { Anchor } from './pcre-pattern.ts';
import { PrefixTrie } from './prefix-trie.ts';
import { DEFAULT_DEPTH, parseSignatures } from './signature-parser.ts';
import type { SignatureRule } from './signature-parser.ts';

// Before any signature regex is compiled (V8 decides at compile time whether a regexp may
// fall back to the linear-time engine): no pattern that passed the parser can stall us.
enableLinearRegexFallback();

/** Limits of a signature set. */
export interface SignatureSetOptions {
  /**
   * Distinct expanded names one rule may create per interval; later new names become
   * `<template>:other` (counted in `stats().folded`). Bounds the guard's memory at
   * rules × max_names_per_rule names, and the database's series per rule.
   */
  max_names_per_rule: number;
}

const DEFAULT_OPTIONS: SignatureSetOptions = { max_names_per_rule: 1000 };

/** Suffix of the bucket a rule's names overflow into. */
export const OTHER_SUFFIX = ':other';

/** `prefix_offsets[g]` of the subject rules' prefix trie (below every content Offset, which are >= 0) */
const SUBJECT = -1;

/**
 * Most distinct (Offset, class) runs that anchored triggers follow: each is one more walk for
 * every request (~170 instructions of V8's checks before its first step, measured), so past
 * this a rule's longest literal is searched for instead, as before runs were read.
 */
const MAX_RUN_GROUPS = 8;

/** Most protocol views kept (protocol ids are a handful; this only bounds a misuse). */
const MAX_VIEWS = 64;

interface CompiledRule {
  readonly rule: SignatureRule;
  readonly content: boolean;
  readonly offset: number;
  /** offset + depth: the window's end */
  readonly end: number;
  readonly regex: RegExp;
  /** the name template cut at `$n`: strings and group numbers; null when the name has no `$n` */
  readonly parts: readonly (string | number)[] | null;
  /** `<template>:other` */
  readonly other: string;
  /** the rule has a trigger (a literal or an anchored prefix): its regex runs only when the prefilter found it */
  readonly triggered: boolean;
  /** the trigger is a literal searched anywhere in the input (not an anchored prefix) */
  readonly floating: boolean;
  /**
   * distinct names given this interval (null for a constant name), each mapped to itself: the
   * name handed out is the stored string, whose hash V8 has already computed, so the pipeline's
   * and the aggregator's lookups by name do not hash a new string per transaction
   */
  readonly names: Map<string, string> | null;
  /** the distinct group numbers the name uses, in order of first use (`NAME_$1_$2`: [1, 2]); empty for a constant name */
  readonly groups: readonly number[];
  /**
   * For a name with `$n`: group texts → the name admitted for them this interval, one Map
   * level per group (the last level holds names), so that a repeated match costs a lookup
   * per (short) group text instead of building the name, flattening it and hashing it.
   * Several group texts can make one name (`$1$2`: "a"+"bc" and "ab"+"c"), so the entries
   * are counted apart from `names` and bounded the same way: past max_names_per_rule, new
   * ones are not kept (the name is then built and looked up in `names`, as without this).
   */
  readonly by_groups: Map<string, unknown> | null;
  /** names filed in `by_groups` this interval */
  by_groups_size: number;
  folded: number;
}

/**
 * The class whose run an anchored trigger follows (`[A-Z]` in `^[A-Z]+ /app/`): membership
 * per latin1 code unit, read off the class's own regexp when the set is made, and the regexp
 * for the rare code unit above 0xff (a subject may hold one).
 */
interface Run {
  readonly member: Uint8Array;
  readonly re: RegExp;
}

function runOf(source: string): Run {
  const re = new RegExp(`^${source}$`);
  const member = new Uint8Array(256);
  for (let u = 0; u < 256; u++) member[u] = re.test(String.fromCharCode(u)) ? 1 : 0;
  return { member, re };
}

/** Where the run of `run`'s class that starts at `from` ends, within `text[.. end)`. */
function runEnd(run: Run, text: string, from: number, end: number): number {
  const member = run.member;
  let i = from;
  while (i < end) {
    const u = text.charCodeAt(i);
    if (u <= 0xff ? member[u] === 0 : !run.re.test(text[i]!)) break;
    i++;
  }
  return i;
}

/** Which rules apply to one protocol, and which prefilter passes they need; precomputed. */
interface View {
  /** per rule index: 1 when the rule applies to this protocol */
  readonly applies: Uint8Array;
  /** applicable rules that have no literal (always tried), ascending */
  readonly always: Int32Array;
  /** request bytes the literal scan must cover (largest window end of a content rule with floating literals); 0: no scan */
  readonly scan_content_end: number;
  readonly scan_subject: boolean;
  /** indexes into the set's prefix tries (per Offset, then the subject's) that have applicable rules */
  readonly prefix_groups: Int32Array;
  readonly rule_count: number;
}

/** Literals of one target (request bytes or subject), deduplicated, and the rules needing each. */
class LiteralIndex {
  readonly ids = new Map<string, number>();
  readonly rules: number[][] = [];

  add(literal: string, rule: number): void {
    let id = this.ids.get(literal);
    if (id === undefined) {
      id = this.rules.length;
      this.ids.set(literal, id);
      this.rules.push([]);
    }
    this.rules[id]!.push(rule);
  }

  matcher(): LiteralMatcher {
    return new LiteralMatcher([...this.ids.keys()]);
  }

  trie(): PrefixTrie {
    return new PrefixTrie([...this.ids.keys()]);
  }
}

function nameParts(name: string): (string | number)[] | null {
  if (!/\$[1-9]/.test(name)) return null;
  const parts: (string | number)[] = [];
  let lit = '';
  for (let i = 0; i < name.length; i++) {
    const d = name.charCodeAt(i + 1) - 48;
    if (name[i] === '$' && d >= 1 && d <= 9) {
      if (lit !== '') parts.push(lit);
      lit = '';
      parts.push(d);
      i++;
    } else lit += name[i];
  }
  if (lit !== '') parts.push(lit);
  return parts;
}

/**
 * An ordered list of signature rules and the per-rule name budget: names transactions
 * (the classify stage, after the analyzer and before aggregation). Single-threaded: one
 * set per pipeline. `classify` allocates only the strings it returns or matches.
 *
 * Speed: rules are tried in order, but most never run their regex. Each pattern is read for
 * literal strings every match must contain, and for the strings it must start with when it
 * begins with `^` (pcre-pattern.ts `anchor`: `^GET /x`, `^(GET|HEAD) /x`, `^[A-Z]+ /x`); the
 * longer of its anchored start and its longest literal is the rule's trigger. One literal
 * search over the request bytes (and one over the subject) finds which floating triggers
 * occur (literal-matcher.ts: a skip scan that reads a fraction of the bytes when every
 * trigger is 5 bytes or longer, else an Aho–Corasick pass); one trie walk per distinct Offset
 * (and class run) finds which anchored starts are there. Only rules whose trigger
 * was found, plus rules without any, run their regex, in rule order. Rules restricted to another
 * protocol are left out by a per-protocol view. Measured with 200 rules on 100 000 requests
 * (HTTP from the bench capture, SQL, DNS): 0.7-1.2 µs per call against 4-14 µs for the
 * plain rule-by-rule loop (before the skip scan; with it, the bench's 54 410 requests take
 * ~0.5 µs a call in a loop instead of ~0.69 µs). The literal search costs up to ~2 ns per
 * request byte up to the largest Offset+Depth of the unanchored Content rules, so a small
 * Depth keeps it cheap.
 */
export class SignatureSet {
  readonly size: number;
  /** largest Offset+Depth of any content rule: how many request bytes a transaction must keep */
  readonly request_bytes_needed: number;

  private readonly rules: CompiledRule[];
  private readonly max_names: number;
  private readonly content_lits = new LiteralIndex();
  private readonly subject_lits = new LiteralIndex();
  private readonly content_matcher: LiteralMatcher;
  private readonly subject_matcher: LiteralMatcher;
  /**
   * Anchored rules: a trie of the strings they start with per Offset of content rules
   * (prefix_offsets[g], ≥ 0) or for the subject (SUBJECT), and per class whose run comes
   * first (prefix_runs[g], null when none; `^[A-Z]+ /app/`). One walk loop for all keeps
   * classifyText small for V8 to compile.
   */
  private readonly prefix_offsets: number[] = [];
  private readonly prefix_runs: (Run | null)[] = [];
  private readonly prefix_index: LiteralIndex[] = [];
  private readonly prefix_tries: PrefixTrie[];
  private readonly views = new Map<string, View>();
  private last_protocol: string | null = null;
  private last_view: View | null = null;

  // scratch for classify
  private readonly cand: Int32Array;

  private matched = 0;
  private unmatched = 0;

  private constructor(rules: readonly SignatureRule[], options: Partial<SignatureSetOptions> | undefined) {
    const opts = { ...DEFAULT_OPTIONS, ...options };
    if (!Number.isInteger(opts.max_names_per_rule) || opts.max_names_per_rule < 0) {
      throw new RangeError(`max_names_per_rule must be a non-negative integer, not ${opts.max_names_per_rule}`);
    }
    this.max_names = opts.max_names_per_rule;
    let needed = 0;
    const groups_by_key = new Map<string, number>();
    let run_groups = 0;
    this.rules = rules.map((rule, index) => {
      const where = `${rule.file}:${rule.line}:${rule.column}: rule ${rule.name}`;
      if (rule.regex.flags !== '') throw new Error(`${where}: the regex must have no flags, not /${rule.regex.flags}`);
      if (!runsInLinearTime(rule.regex.source)) throw new Error(`${where}: V8's linear-time regexp engine cannot run /${rule.regex.source}/, so it could stall the sensor`);
      const content = rule.target === 'content';
      const depth = rule.depth > 0 ? rule.depth : DEFAULT_DEPTH;
      const offset = content ? Math.max(0, rule.offset) : 0;
      if (content) needed = Math.max(needed, offset + depth);
      // The prefilter only uses literals read from the pattern that produced this very regex.
      let literals: string[] = [];
      let anchor: Anchor | null = null;
      try {
        const t = translatePcre(rule.pattern);
        if (new RegExp(t.source).source === rule.regex.source) {
          literals = t.literals;
          anchor = t.anchor;
        }
      } catch {
        // a hand-made rule whose pattern is not PCRE: no prefilter for it
      }
      // One trigger per rule: where it is anchored (its strings after a run, if any), or its
      // longest literal when that is longer than the shortest of the strings. The regex checks
      // everything else, so a second literal would only save regex runs on requests holding
      // the trigger but not the other literal, while a short common one (`GET ` in
      // `GET .*/webmail/src/`) is found in nearly every request and would cost a prefilter
      // step for every rule holding it. An anchored trigger is checked at one place, so it
      // wins a tie: `^[A-Z]+ /app/` is looked for after the method, not searched for along
      // the request (where a 6-byte literal would also shorten the skip scan's moves).
      const shortest = anchor === null ? 0 : Math.min(...anchor.strings.map((x) => x.length));
      const at = content ? offset : SUBJECT;
      const key = anchor === null ? '' : `${at} ${anchor.run ?? ''}`;
      const anchored = shortest >= 2 && (anchor!.run === null || groups_by_key.has(key) || run_groups < MAX_RUN_GROUPS);
      const floating = literals.length > 0 && (!anchored || literals[0]!.length > shortest) ? literals[0]! : '';
      if (floating !== '') {
        (content ? this.content_lits : this.subject_lits).add(floating, index);
      } else if (anchored) {
        let g = groups_by_key.get(key);
        if (g === undefined) {
          g = this.prefix_offsets.length;
          groups_by_key.set(key, g);
          if (anchor!.run !== null) run_groups++;
          this.prefix_offsets.push(at);
          this.prefix_runs.push(anchor!.run === null ? null : runOf(anchor!.run));
          this.prefix_index.push(new LiteralIndex());
        }
        for (const x of anchor!.strings) this.prefix_index[g]!.add(x, index);
      }
      const parts = nameParts(rule.name);
      const groups = parts === null ? [] : [...new Set(parts.filter((x): x is number => typeof x === 'number'))];
      return {
        rule,
        content,
        offset,
        end: offset + depth,
        regex: rule.regex,
        parts,
        other: rule.name + OTHER_SUFFIX,
        triggered: floating !== '' || anchored,
        floating: floating !== '',
        names: parts === null ? null : new Map<string, string>(),
        groups,
        by_groups: groups.length === 0 ? null : new Map<string, unknown>(),
        by_groups_size: 0,
        folded: 0,
      };
    });
    this.size = this.rules.length;
    this.request_bytes_needed = needed;
    this.content_matcher = this.content_lits.matcher();
    this.subject_matcher = this.subject_lits.matcher();
    this.prefix_tries = this.prefix_index.map((ix) => ix.trie());
    this.cand = new Int32Array(Math.max(1, this.size));
  }

  /**
   * Reads and parses signature files; their rules are tried in the order of `paths`, then
   * of the rules in each file. Files are read as latin1 (bytes as code units, as requests are).
   * Throws `SignatureSyntaxError` for a bad rule, an `Error` naming the file when it cannot be read.
   */
  static fromFiles(paths: string[], options?: Partial<SignatureSetOptions>): SignatureSet {
    const rules: SignatureRule[] = [];
    for (const path of paths) {
      let text: string;
      try {
        text = readFileSync(path, 'latin1');
      } catch (e) {
        throw new Error(`${path}: cannot read signature file: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
      rules.push(...parseSignatures(text, path));
    }
    return new SignatureSet(rules, options);
  }

  /** A set over rules already parsed (or made by hand: then the regex must run in linear time and have no flags). */
  static fromRules(rules: SignatureRule[], options?: Partial<SignatureSetOptions>): SignatureSet {
    return new SignatureSet(rules, options);
  }

  /**
   * The first matching rule's expanded name, or null when none matches. `request` holds the
   * request's first bytes (at least request_bytes_needed of them when the request was that
   * long); bytes from `min(request_len, request.length)` on are ignored. `subject` is the
   * analyzer's (e.g. `GET /index.html`, `A www.example.com`).
   */
  classify(protocol: string, request: Uint8Array, request_len: number, subject: string): string | null {
    const n = Math.max(0, Math.min(request_len | 0, request.length, this.request_bytes_needed));
    return this.classifyText(protocol, n > 0 ? latin1(request, 0, n) : '', subject);
  }

  /**
   * The same, with the request's first bytes as latin1 text (one code unit per byte), as the
   * pipeline keeps them; code units from request_bytes_needed on are ignored.
   */
  classifyText(protocol: string, request: string, subject: string): string | null {
    if (this.size === 0) {
      this.unmatched++;
      return null;
    }
    const v = this.view(protocol);
    if (v.rule_count === 0) {
      this.unmatched++;
      return null;
    }
    const n = request.length < this.request_bytes_needed ? request.length : this.request_bytes_needed;
    let nc = 0;
    if (v.scan_content_end > 0 && n > 0) {
      const k = this.content_matcher.scanString(request, n < v.scan_content_end ? n : v.scan_content_end);
      nc = this.collect(this.content_matcher.found, k, this.content_lits.rules, v, nc);
    }
    if (v.scan_subject && subject.length > 0) {
      const k = this.subject_matcher.scanString(subject);
      nc = this.collect(this.subject_matcher.found, k, this.subject_lits.rules, v, nc);
    }
    const groups = v.prefix_groups;
    for (let g = 0; g < groups.length; g++) {
      const gi = groups[g]!;
      const off = this.prefix_offsets[gi]!;
      if (off >= n) continue;
      const trie = this.prefix_tries[gi]!;
      const on_subject = off === SUBJECT;
      const text = on_subject ? subject : request;
      const end = on_subject ? subject.length : n;
      const run = this.prefix_runs[gi]!;
      const at = run === null ? (on_subject ? 0 : off) : runEnd(run, text, on_subject ? 0 : off, end);
      const k = trie.walkString(text, at, end);
      nc = this.collect(trie.found, k, this.prefix_index[gi]!.rules, v, nc);
    }
    const cand = this.cand;
    for (let i = 1; i < nc; i++) {
      const x = cand[i]!;
      let j = i - 1;
      while (j >= 0 && cand[j]! > x) {
        cand[j + 1] = cand[j]!;
        j--;
      }
      cand[j + 1] = x;
    }

    // rules in file order: merge the always-tried list with the prefilter's candidates
    const always = v.always;
    let i = 0;
    let j = 0;
    while (i < always.length || j < nc) {
      const r = j >= nc || (i < always.length && always[i]! < cand[j]!) ? always[i++]! : cand[j++]!;
      const cr = this.rules[r]!;
      let input: string;
      if (cr.content) {
        if (cr.offset >= n) continue; // the request does not reach this rule's window
        const end = cr.end < n ? cr.end : n;
        input = cr.offset === 0 && end === request.length ? request : request.substring(cr.offset, end);
      } else input = subject;

      if (cr.parts === null) {
        if (cr.regex.test(input)) {
          this.matched++;
          return cr.rule.name;
        }
        continue;
      }
      const m = cr.regex.exec(input);
      if (m === null) continue;
      this.matched++;
      const known = knownName(cr, m);
      if (known !== undefined) return known;
      const name = this.admit(cr, expand(cr.parts, m));
      if (name !== cr.other && cr.by_groups_size < this.max_names) {
        rememberName(cr, m, name);
        cr.by_groups_size++;
      }
      return name;
    }
    this.unmatched++;
    return null;
  }

  /** A new interval begins: the per-rule distinct-name budget starts again. */
  startInterval(): void {
    for (const cr of this.rules) {
      cr.names?.clear();
      cr.by_groups?.clear();
      cr.by_groups_size = 0;
    }
  }

  /**
   * Since the set was made: names folded into `<template>:other`, per rule name template
   * (only templates that folded; rules sharing a template add up); classify calls that
   * matched a rule and that matched none; literal searches whose skip scan spent its budget
   * and read every byte instead (literal-matcher.ts: text built to slow the prefilter).
   */
  stats(): { rules: number; folded: Record<string, number>; matched: number; unmatched: number; literal_scan_fallbacks: number } {
    const folded: Record<string, number> = {};
    for (const cr of this.rules) {
      if (cr.folded > 0) folded[cr.rule.name] = (folded[cr.rule.name] ?? 0) + cr.folded;
    }
    return {
      rules: this.size, folded, matched: this.matched, unmatched: this.unmatched,
      literal_scan_fallbacks: this.content_matcher.skip_abandoned + this.subject_matcher.skip_abandoned,
    };
  }

  /** Distinct names each rule has given this interval (the guard's own memory), by rule index. */
  namesThisInterval(): number[] {
    return this.rules.map((cr) => cr.names?.size ?? 0);
  }

  private admit(cr: CompiledRule, name: string): string {
    const names = cr.names!;
    const known = names.get(name);
    if (known !== undefined) return known;
    if (names.size < this.max_names) {
      names.set(name, name);
      return name;
    }
    cr.folded++;
    return cr.other;
  }

  /** Adds the applicable rules triggered by the found literals (each rule has one trigger, found at most once). */
  private collect(found: Int32Array, k: number, lit_rules: number[][], v: View, nc: number): number {
    const cand = this.cand;
    for (let f = 0; f < k; f++) {
      const list = lit_rules[found[f]!]!;
      for (let x = 0; x < list.length; x++) {
        const r = list[x]!;
        if (v.applies[r] !== 0) cand[nc++] = r;
      }
    }
    return nc;
  }

  private view(protocol: string): View {
    // Analyzers name their protocol with one constant string each: the last view is
    // nearly always the one asked for, without a Map lookup.
    if (protocol === this.last_protocol) return this.last_view!;
    const cached = this.views.get(protocol);
    if (cached !== undefined) {
      this.last_protocol = protocol;
      this.last_view = cached;
      return cached;
    }
    const applies = new Uint8Array(Math.max(1, this.size));
    const always: number[] = [];
    let scan_content_end = 0;
    let scan_subject = false;
    let count = 0;
    this.rules.forEach((cr, r) => {
      if (cr.rule.protocol !== null && cr.rule.protocol !== protocol) return;
      applies[r] = 1;
      count++;
      if (!cr.triggered) always.push(r);
      if (cr.floating) {
        if (cr.content) scan_content_end = Math.max(scan_content_end, cr.end);
        else scan_subject = true;
      }
    });
    const prefix_groups: number[] = [];
    this.prefix_index.forEach((ix, g) => {
      if (ix.rules.some((list) => list.some((r) => applies[r] === 1))) prefix_groups.push(g);
    });
    const v: View = {
      applies, always: Int32Array.from(always), scan_content_end, scan_subject,
      prefix_groups: Int32Array.from(prefix_groups), rule_count: count,
    };
    if (this.views.size < MAX_VIEWS) {
      this.views.set(protocol, v);
      this.last_protocol = protocol;
      this.last_view = v;
    }
    return v;
  }
}

/** The name admitted this interval for the texts of `m`'s groups, if any. */
function knownName(cr: CompiledRule, m: RegExpExecArray): string | undefined {
  const groups = cr.groups;
  let level = cr.by_groups!;
  const last = groups.length - 1;
  for (let g = 0; g < last; g++) {
    const next = level.get(m[groups[g]!] ?? '') as Map<string, unknown> | undefined;
    if (next === undefined) return undefined;
    level = next;
  }
  return level.get(m[groups[last]!] ?? '') as string | undefined;
}

/** Files `name` under the texts of `m`'s groups. */
function rememberName(cr: CompiledRule, m: RegExpExecArray, name: string): void {
  const groups = cr.groups;
  let level = cr.by_groups!;
  const last = groups.length - 1;
  for (let g = 0; g < last; g++) {
    const text = m[groups[g]!] ?? '';
    let next = level.get(text) as Map<string, unknown> | undefined;
    if (next === undefined) level.set(text, (next = new Map<string, unknown>()));
    level = next;
  }
  level.set(m[groups[last]!] ?? '', name);
}

function expand(parts: readonly (string | number)[], m: RegExpExecArray): string {
  let s = '';
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    s += typeof p === 'number' ? (m[p] ?? '') : p;
  }
  return s;
}
