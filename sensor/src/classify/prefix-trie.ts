/**
 * Finds which of a fixed set of strings are prefixes of the input at one position: a trie
 * walked from that position until it has no transition, so the cost is the length of the
 * longest matching prefix, not of the input. The signature set keeps one per distinct
 * Offset for rules anchored with `^` (`^GET /api/`), and one for anchored Subject rules;
 * the literal matcher's skip scan walks one where a literal may start.
 * Strings are latin1 code units (0..255).
 *
 * Compact: states are numbered in depth-first order, so a state's first child is the next
 * state, and a state with one child keeps only that child's code unit. Only states where
 * the strings part ways keep a row of transitions by byte class. A step along a shared
 * stretch is then a comparison and `s + 1`, with no table read for the next step to wait
 * on, and a walk reads a few consecutive bytes instead of a row of `classes` × 4 bytes per
 * state. With a row for every state, the 200 bench rules' three tries took 58, 17 and 35 KB;
 * compact, the bench run with those rules had 67 M fewer instructions and 3.1 M fewer
 * data-cache misses (cachegrind, 32 KB first-level caches). A state's code unit and the id
 * of the string ending there share one word, so a step reads one number: on the bench's
 * requests, naming then took ~150 instructions fewer a request (callgrind, ~22 steps).
 *
 * Owned by one `SignatureSet`; results live in `found`, reused by the next walk.
 */
export class PrefixTrie {
  /** string ids matched by the last walk, in `found[0 .. count)`, shortest first */
  readonly found: Int32Array;

  private readonly cls = new Uint8Array(256);
  /**
   * per state, in one word so that a step reads one number: the low 9 bits are the code unit
   * to its only child (state + 1), or BRANCH or LEAF (above 0xff, where no latin1 code unit is);
   * the bits above are 1 + the id of the string ending at the state, 0 when none does
   */
  private readonly node: Int32Array;
  /** per branching state: where its row starts in `rows` (row[class] = next state, or -1) */
  private readonly row_at: Int32Array;
  private readonly rows: Int32Array;

  constructor(strings: readonly string[]) {
    if (strings.length >= MAX_STRINGS) throw new RangeError(`too many prefixes: ${strings.length}`);
    this.found = new Int32Array(Math.max(1, strings.length));
    // Each step is a function of its own. As one constructor, run only while the rule set is
    // built, its loops got a TurboFan compile (23-32 ms for the 200 bench rules) that landed
    // after the capture had begun, on the core the file's reads and the pass's own compiles
    // share; as four small functions none got hot enough to be compiled (node --trace-opt).
    const classes = numberClasses(strings, this.cls);
    const { kids, id_at } = plainTrie(strings);
    const { order, by_order } = depthFirst(kids);
    const n = kids.length;
    this.node = new Int32Array(n);
    this.row_at = new Int32Array(n).fill(-1);
    this.rows = Int32Array.from(fillStates(kids, id_at, order, by_order, classes, this.cls, this.node, this.row_at));
  }

  /** Walks `str[start .. end)` (by default the whole string); returns how many strings are prefixes there (ids in `found`). */
  walkString(str: string, start = 0, end: number = str.length): number {
    const { cls, node, row_at, rows, found } = this;
    let count = 0;
    let s = 0;
    let x = node[0]!;
    if (x >= 1 << END_SHIFT) found[count++] = (x >> END_SHIFT) - 1;
    const to = end < str.length ? end : str.length;
    for (let i = start; i < to; i++) {
      const u = str.charCodeAt(i);
      const e = x & CODE_MASK;
      if (e === u && u <= 0xff) s++; // (not BRANCH or LEAF read as U+0100, U+0101)
      else if (e === BRANCH && u <= 0xff) {
        const c = cls[u]!;
        if (c === 0) break;
        s = rows[row_at[s]! + c]!;
        if (s < 0) break;
      } else break;
      x = node[s]!;
      if (x >= 1 << END_SHIFT) found[count++] = (x >> END_SHIFT) - 1;
    }
    return count;
  }
}

/** where a state's word keeps 1 + the id of the string ending there (below: its code unit) */
const END_SHIFT = 9;
const CODE_MASK = (1 << END_SHIFT) - 1;
/** the code bits of a state with several children */
const BRANCH = 0x100;
/** the code bits of a state with none */
const LEAF = 0x101;
/** 1 + an id must fit in the 22 bits above the code */
const MAX_STRINGS = (1 << (31 - END_SHIFT)) - 1;

/** Numbers the code units the strings use (`cls[u]`, from 1); returns how many classes, 0 included. */
function numberClasses(strings: readonly string[], cls: Uint8Array): number {
  let classes = 1;
  for (const s of strings) {
    for (let i = 0; i < s.length; i++) {
      const b = s.charCodeAt(i);
      if (b > 0xff) throw new RangeError(`prefix ${JSON.stringify(s)} has a character above 0xff`);
      if (cls[b] === 0) cls[b] = classes++;
    }
  }
  return classes;
}

/** A plain trie (children by code unit) and the id of the string ending at each state (-1: none). */
function plainTrie(strings: readonly string[]): { kids: Map<number, number>[]; id_at: number[] } {
  const kids: Map<number, number>[] = [new Map()];
  const id_at: number[] = [-1];
  strings.forEach((str, id) => {
    let s = 0;
    for (let i = 0; i < str.length; i++) {
      const u = str.charCodeAt(i);
      let t = kids[s]!.get(u);
      if (t === undefined) {
        t = kids.length;
        kids.push(new Map());
        id_at.push(-1);
        kids[s]!.set(u, t);
      }
      s = t;
    }
    if (id_at[s]! >= 0) throw new RangeError(`prefix ${JSON.stringify(str)} given twice`);
    id_at[s] = id;
  });
  return { kids, id_at };
}

/** The plain trie's states numbered depth-first: `order[state]`, and the states by that number. */
function depthFirst(kids: Map<number, number>[]): { order: Int32Array; by_order: number[] } {
  const order = new Int32Array(kids.length);
  const by_order: number[] = [];
  const stack = [0];
  while (stack.length > 0) {
    const s = stack.pop()!;
    order[s] = by_order.length;
    by_order.push(s);
    const children = [...kids[s]!.values()];
    for (let k = children.length - 1; k >= 0; k--) stack.push(children[k]!);
  }
  return { order, by_order };
}

/** Fills `node` and `row_at` in depth-first numbering; returns the rows of the branching states. */
function fillStates(kids: Map<number, number>[], id_at: number[], order: Int32Array, by_order: number[], classes: number,
  cls: Uint8Array, node: Int32Array, row_at: Int32Array): number[] {
  const rows: number[] = [];
  for (let d = 0; d < kids.length; d++) {
    const s = by_order[d]!;
    const end = (id_at[s]! + 1) << END_SHIFT;
    const k = kids[s]!;
    if (k.size === 0) node[d] = end | LEAF;
    else if (k.size === 1) {
      const [u, t] = [...k][0]!;
      if (order[t] !== d + 1) throw new Error('prefix trie: an only child must follow its parent');
      node[d] = end | u;
    } else {
      node[d] = end | BRANCH;
      row_at[d] = rows.length;
      const row = new Array<number>(classes).fill(-1);
      for (const [u, t] of k) row[cls[u]!] = order[t]!;
      rows.push(...row);
    }
  }
  return rows;
}
