import { PrefixTrie } from './prefix-trie.ts';

/**
 * Finds which of a fixed set of literal strings occur in a string (latin1 text: one code unit
 * per request byte). When every literal is at least SKIP_MIN_LENGTH long, by a skip scan
 * (Wu–Manber: reads a fraction of the text, see skipScan); otherwise, or when a crafted
 * text would make the skip scan slow, in one pass of Aho–Corasick compiled to a DFA over
 * byte classes. The signature set uses it as a
 * prefilter: a rule whose required literals are not all present cannot match, so its regex
 * is not run. Literals are latin1 code units (0..255), as the request bytes are.
 *
 * Owned by one `SignatureSet`; not safe to share between two concurrent scans (results
 * live in `found`, reused by the next scan). Memory: states × classes × 4 bytes for the
 * automaton, where states ≤ total literal length + 1 and classes ≤ distinct bytes in the
 * literals + 1; the skip scan adds a 64 KB table of shifts by byte pair, and its trie 8
 * bytes a state and a row only where literals part ways (prefix-trie.ts).
 */
export class LiteralMatcher {
  /** literal ids found by the last scan, in `found[0 .. count)`, each once */
  readonly found: Int32Array;
  readonly literal_count: number;

  /** byte → class (0: a byte in no literal) */
  private readonly cls = new Uint8Array(256);
  private readonly classes: number;
  /**
   * DFA. A state is held premultiplied, as `state * classes`: next = delta[cur + class], one
   * table read and one add per byte on the chain of reads each step waits for.
   */
  private readonly delta: Int32Array;
  /** states from this one on (premultiplied) are those where some literal ends */
  private readonly accepting_from: number;
  /** states where the last scan saw a literal end (and the other half's state then), read after the loop */
  private hits = new Int32Array(512);
  /** literal ids ending at each state (own and through failure links): out_ids[out_start[s] .. out_start[s+1]) */
  private readonly out_start: Int32Array;
  private readonly out_ids: Int32Array;
  /** length of the longest literal − 1: how far the two halves of a long scan overlap */
  private readonly overlap: number;
  /** literal id → scan number when last found (dedupe within a scan) */
  private readonly seen: Int32Array;
  private scan_no = 0;
  /** the skip scan's tables (see the function skipScan), or null when a literal is shorter than SKIP_MIN_LENGTH */
  private readonly skip: SkipTables | null;
  /** skip scans given up for the automaton, their budget spent (crafted or degenerate text) */
  skip_abandoned = 0;

  constructor(literals: readonly string[]) {
    this.literal_count = literals.length;
    this.overlap = literals.reduce((m, l) => Math.max(m, l.length - 1), 0);
    this.found = new Int32Array(Math.max(1, literals.length));
    this.seen = new Int32Array(Math.max(1, literals.length));

    let classes = 1;
    for (const lit of literals) {
      for (let i = 0; i < lit.length; i++) {
        const b = lit.charCodeAt(i);
        if (b > 0xff) throw new RangeError(`literal ${JSON.stringify(lit)} has a character above 0xff`);
        if (this.cls[b] === 0) this.cls[b] = classes++;
      }
    }
    this.classes = classes;

    const dfa = buildAutomaton(literals, this.cls, classes);
    this.delta = dfa.delta;
    this.accepting_from = dfa.accepting_from;
    this.out_start = dfa.out_start;
    this.out_ids = dfa.out_ids;
    this.skip = skipTables(literals);
  }

  /**
   * Scans `str[0 .. len)`; returns how many distinct literals were found (ids in `found`,
   * in no particular order). Code units above 0xff match no literal.
   *
   * The automaton's pass (when the skip scan is not used or gave up):
   * each step's table read needs the state the previous step read, so a single pass waits
   * for the cache at every character. Past a length, two passes run side by side over
   * overlapping halves, `[0, L)` and `[len − L, len)` with L = ⌈(len + longest − 1) / 2⌉: an
   * occurrence ending before L lies in the first, one ending at L or later starts at
   * L − (longest − 1) ≥ len − L or later and lies in the second (a literal found by both is
   * reported once). The two chains of reads overlap in time: on 80 bytes of HTTP request
   * with the bench's 200 rules' literals, a scan takes ~25% less (three alternations of
   * 7 × 10^6 scans on one host: best 248–279 ns against 347–364 ns, medians 264–343 ns
   * against 378–413 ns).
   */
  scanString(str: string, len: number = str.length): number {
    const n = len < str.length ? len : str.length;
    if (this.skip !== null) {
      const t = this.skip;
      const k = n < t.m ? 0 : skipScan(str, n, t.m, t.shift, t.trie, t.longest, this.seen, this.nextScan(), this.found);
      if (k >= 0) return k;
      this.skip_abandoned++;
    }
    if (this.hits.length < n + this.overlap + 2) this.hits = new Int32Array(2 * (n + this.overlap + 2));
    const h = scan(str, n, this.overlap, this.delta, this.accepting_from, this.cls, this.hits);
    return h === 0 ? 0 : this.reportAll(h);
  }

  /** Turns the states recorded by a scan (`hits[0 .. h)`, some not accepting) into distinct literal ids in `found`. */
  private reportAll(h: number): number {
    const { hits, accepting_from, classes } = this;
    const scan = this.nextScan();
    let count = 0;
    for (let x = 0; x < h; x++) {
      const v = hits[x]!;
      if (v >= accepting_from) count = this.report(v / classes, scan, count);
    }
    return count;
  }

  /** Records the literals ending at `state` not yet found by this scan; returns the new count. */
  private report(state: number, scan: number, count: number): number {
    const { out_start, out_ids, seen, found } = this;
    for (let k = out_start[state]!, end = out_start[state + 1]!; k < end; k++) {
      const id = out_ids[k]!;
      if (seen[id] !== scan) {
        seen[id] = scan;
        found[count++] = id;
      }
    }
    return count;
  }

  private nextScan(): number {
    if (this.scan_no === 0x7fffffff) {
      this.seen.fill(0);
      this.scan_no = 0;
    }
    return ++this.scan_no;
  }
}

/**
 * The constructor's work, in functions of their own: each loop over states × classes runs
 * often enough that V8 compiles the function holding it with TurboFan, in the background,
 * after the signature set is built and so while the first packets are processed. As one
 * constructor that compile took ~70 ms of a core (`node --trace-opt`, the bench's 200 rules),
 * for code that never runs again; split, the pieces compile in a few ms each.
 */
interface Automaton {
  readonly delta: Int32Array;
  readonly accepting_from: number;
  readonly out_start: Int32Array;
  readonly out_ids: Int32Array;
}

/** Aho–Corasick over the literals' byte classes, as a DFA with its states renumbered (see LiteralMatcher's fields). */
function buildAutomaton(literals: readonly string[], cls: Uint8Array, classes: number): Automaton {
  const { go, own } = literalTrie(literals, cls);
  const n = go.length;
  if (n * classes >= 0x7fffffff) throw new RangeError('too many literals');
  const fail = new Int32Array(n);
  const delta = new Int32Array(n * classes);
  const outs = own; // each state's own ids, then (failureLinks) those of its failure states
  failureLinks(go, classes, fail, delta, outs);
  // Renumbered so that the states where a literal ends come last: "a literal ends here" is
  // then `state >= accepting_from`, a comparison instead of a table read or a flag bit.
  // The root stays 0; it accepts only with an empty literal, and then so does every state.
  const order: number[] = [0];
  for (let s = 1; s < n; s++) if (outs[s]!.length === 0) order.push(s);
  const first_accepting = outs[0]!.length > 0 ? 0 : order.length;
  for (let s = 1; s < n; s++) if (outs[s]!.length > 0) order.push(s);
  const renumbered = new Int32Array(n);
  for (let i = 0; i < n; i++) renumbered[order[i]!] = i;
  const out_start = new Int32Array(n + 1);
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    out_start[i] = ids.length;
    for (const id of new Set(outs[order[i]!])) ids.push(id);
  }
  out_start[n] = ids.length;
  const out_ids = new Int32Array(Math.max(1, ids.length));
  out_ids.set(ids);
  return { delta: renumberDelta(delta, renumbered, n, classes), accepting_from: first_accepting * classes, out_start, out_ids };
}

/** The literals' trie over byte classes: children per state, and the literal ids ending at each. */
function literalTrie(literals: readonly string[], cls: Uint8Array): { go: Map<number, number>[]; own: number[][] } {
  const go: Map<number, number>[] = [new Map()];
  const own: number[][] = [[]];
  for (let id = 0; id < literals.length; id++) {
    const lit = literals[id]!;
    let s = 0;
    for (let i = 0; i < lit.length; i++) {
      const c = cls[lit.charCodeAt(i)]!;
      let t = go[s]!.get(c);
      if (t === undefined) {
        t = go.length;
        go.push(new Map());
        own.push([]);
        go[s]!.set(c, t);
      }
      s = t;
    }
    own[s]!.push(id);
  }
  return { go, own };
}

/** Failure links in breadth-first order, filling the full DFA (`delta[s * classes + c]`) and each state's outputs. */
function failureLinks(go: Map<number, number>[], classes: number, fail: Int32Array, delta: Int32Array, outs: number[][]): void {
  const queue: number[] = [];
  for (let c = 1; c < classes; c++) {
    const t = go[0]!.get(c);
    if (t !== undefined) {
      delta[c] = t;
      queue.push(t);
    }
  }
  for (let qi = 0; qi < queue.length; qi++) {
    const s = queue[qi]!;
    const f = fail[s]!;
    for (const id of outs[f]!) outs[s]!.push(id);
    const row = s * classes;
    const frow = f * classes;
    for (let c = 0; c < classes; c++) {
      const t = c === 0 ? undefined : go[s]!.get(c);
      if (t !== undefined) {
        fail[t] = delta[frow + c]!;
        delta[row + c] = t;
        queue.push(t);
      } else delta[row + c] = delta[frow + c]!;
    }
  }
}

/** `delta` with states renumbered, each held premultiplied by `classes`. */
function renumberDelta(delta: Int32Array, renumbered: Int32Array, n: number, classes: number): Int32Array {
  const out = new Int32Array(n * classes);
  for (let s = 0; s < n; s++) {
    const to = renumbered[s]! * classes;
    const from = s * classes;
    for (let c = 0; c < classes; c++) out[to + c] = renumbered[delta[from + c]!]! * classes;
  }
  return out;
}

/** The skip scan's tables, or null when a literal is shorter than SKIP_MIN_LENGTH (or one is given twice). */
function skipTables(literals: readonly string[]): SkipTables | null {
  let shortest = Infinity;
  let longest = 0;
  for (const l of literals) {
    if (l.length < shortest) shortest = l.length;
    if (l.length > longest) longest = l.length;
  }
  // (the signature set's literals are distinct; a list with repeats keeps to the automaton)
  if (literals.length === 0 || shortest < SKIP_MIN_LENGTH || new Set(literals).size !== literals.length) return null;
  // shift[previous byte << 8 | last byte]: how far the window may move when its last two
  // bytes are this pair, taking the first `shortest` bytes of every literal as the patterns.
  // Indexed by the bytes themselves rather than by their classes: a step of the scan then
  // reads one table instead of three (see skipScan for what it saves). 64 KB, of which
  // the pairs in HTTP request text touch a small part.
  const m = shortest;
  const shift = new Uint8Array(256 * 256).fill(Math.min(255, m - 1));
  for (const lit of literals) {
    for (let j = 2; j <= m; j++) {
      const pair = (lit.charCodeAt(j - 2) << 8) | lit.charCodeAt(j - 1);
      if (m - j < shift[pair]!) shift[pair] = m - j;
    }
  }
  return { m, shift, trie: new PrefixTrie(literals), longest };
}

/**
 * Literals at least this long are searched with the skip scan: a shorter one makes its
 * shifts too short to pay. With the bench's 200 rules' 100 triggers (shortest 6) and one
 * more of a given length, over the bench's requests (medians of 25 passes in a loop): the
 * automaton 270–280 ns a request; the skip scan 240–290 ns with a 4-byte one (no better),
 * 200–225 ns with a 5-byte one, ~150 ns without.
 */
const SKIP_MIN_LENGTH = 5;

interface SkipTables {
  /** the shortest literal's length */
  readonly m: number;
  /** per pair of bytes (previous << 8 | last): how far the window may move */
  readonly shift: Uint8Array;
  /** the literals (ids as in the matcher), walked where the shift table says one may start */
  readonly trie: PrefixTrie;
  /** the longest literal's length: what a walk may cost */
  readonly longest: number;
}

/**
 * Wu and Manber's multi-pattern search (1994) over pairs of bytes, for
 * `LiteralMatcher.scanString` when every literal is at least SKIP_MIN_LENGTH long: a window
 * of the shortest literal's length m (≤ n) moves along `str[0 .. n)`; where its last two
 * bytes end no literal's first m bytes, it moves by up to m − 1 at once, and where they may,
 * the literals' trie is walked from the window's start. Writes the distinct literal ids found
 * to `found` (deduplicated through `seen` with this scan's number) and returns how many, or
 * −1 when the walks, each counted as the longest literal's length, pass a budget of 2n + 64
 * (crafted text that keeps the window on prefixes it then does not complete: the caller
 * scans with the automaton instead, so a scan stays linear in the text). On the bench's
 * 54 410 requests (80 bytes, the 200 rules' 100 unanchored triggers, shortest 6 bytes) it
 * reads ~16 byte pairs and walks the trie ~0.9 times a request: ~150 ns against ~270 ns for
 * the automaton's pass (medians of 30 passes in a loop). With the shift read straight by the
 * byte pair instead of through the bytes' classes, callgrind counts 2 100 instructions a
 * request in the scan instead of 2 530 over the same requests. No library does this over
 * latin1 strings without copying them.
 */
function skipScan(str: string, n: number, m: number, shift: Uint8Array, trie: PrefixTrie, longest: number,
  seen: Int32Array, scan: number, found: Int32Array): number {
  let count = 0;
  let budget = 2 * n + 64;
  let pos = m - 1;
  // A code unit above 0xff is in no literal; `& 0xff` gives its pair some byte pair's shift,
  // never more than m − 1, so at worst the window moves less and the trie says no.
  let prev = str.charCodeAt(pos - 1) & 0xff;
  while (pos < n) {
    const u = str.charCodeAt(pos) & 0xff;
    const d = shift[(prev << 8) | u]!;
    if (d !== 0) {
      pos += d;
      if (d === 1) prev = u;
      else if (pos < n) prev = str.charCodeAt(pos - 1) & 0xff;
      continue;
    }
    if ((budget -= longest) < 0) return -1;
    const k = trie.walkString(str, pos - m + 1, n);
    for (let f = 0; f < k; f++) {
      const id = trie.found[f]!;
      if (seen[id] !== scan) {
        seen[id] = scan;
        found[count++] = id;
      }
    }
    pos++;
    prev = u;
  }
  return count;
}

/**
 * The scan loop of `LiteralMatcher.scanString`; returns how many states it wrote to `hits`
 * (at most n + overlap + 2). Three things make it ~8% faster than the loop it replaced (the
 * bench's 200 rules over its 54 410 request texts, 80 bytes each, AMD EPYC, medians of 40
 * passes: 187–204 ns per scan before, 179–190 ns after), none enough alone: "a literal ends
 * here" is a comparison rather than a flag bit in the state, so the chain of reads is a read
 * and an add per byte; a literal's end is only written down here, the ids being found after
 * the loop (a call in the loop, however rarely taken, cost ~15%); and the loop runs on its
 * arguments rather than on `this`.
 */
function scan(str: string, n: number, overlap: number, delta: Int32Array, accepting_from: number, cls: Uint8Array, hits: Int32Array): number {
  const half = (n + overlap + 1) >> 1;
  let h = 0;
  if (half > n - 8) {
    let v = 0;
    for (let i = 0; i < n; i++) {
      const u = str.charCodeAt(i);
      v = delta[v + (u > 0xff ? 0 : cls[u]!)]!;
      if (v >= accepting_from) hits[h++] = v;
    }
    return h;
  }
  let va = 0;
  let vb = 0;
  for (let i = 0, j = n - half; i < half; i++, j++) {
    const ua = str.charCodeAt(i);
    const ub = str.charCodeAt(j);
    va = delta[va + (ua > 0xff ? 0 : cls[ua]!)]!;
    vb = delta[vb + (ub > 0xff ? 0 : cls[ub]!)]!;
    if (va >= accepting_from || vb >= accepting_from) {
      hits[h] = va;
      hits[h + 1] = vb;
      h += 2;
    }
  }
  return h;
}
