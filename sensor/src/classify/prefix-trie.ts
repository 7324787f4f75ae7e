/**
 * Finds which of a fixed set of strings are prefixes of the input at one position: a trie
 * walked from that position until it has no transition, so the cost is the length of the
 * longest matching prefix, not of the input. The signature set keeps one per distinct
 * Offset for rules anchored with `^` (`^GET /api/`), and one for anchored Subject rules.
 * Strings are latin1 code units (0..255).
 *
 * Owned by one `SignatureSet`; results live in `found`, reused by the next walk.
 */
export class PrefixTrie {
  /** string ids matched by the last walk, in `found[0 .. count)`, shortest first */
  readonly found: Int32Array;

  private readonly cls = new Uint8Array(256);
  private readonly classes: number;
  /** next = next_state[state * classes + class]; -1: no transition */
  private readonly next_state: Int32Array;
  /** string id ending at each state, or -1 */
  private readonly ends: Int32Array;

  constructor(strings: readonly string[]) {
    this.found = new Int32Array(Math.max(1, strings.length));
    let classes = 1;
    for (const s of strings) {
      for (let i = 0; i < s.length; i++) {
        const b = s.charCodeAt(i);
        if (b > 0xff) throw new RangeError(`prefix ${JSON.stringify(s)} has a character above 0xff`);
        if (this.cls[b] === 0) this.cls[b] = classes++;
      }
    }
    this.classes = classes;
    const next: number[] = new Array<number>(classes).fill(-1);
    const ends: number[] = [-1];
    strings.forEach((str, id) => {
      let s = 0;
      for (let i = 0; i < str.length; i++) {
        const k = s * classes + this.cls[str.charCodeAt(i)]!;
        let t = next[k]!;
        if (t < 0) {
          t = ends.length;
          ends.push(-1);
          for (let c = 0; c < classes; c++) next.push(-1);
          next[k] = t;
        }
        s = t;
      }
      if (ends[s]! >= 0) throw new RangeError(`prefix ${JSON.stringify(str)} given twice`);
      ends[s] = id;
    });
    this.next_state = Int32Array.from(next);
    this.ends = Int32Array.from(ends);
  }

  /** Walks `str[start .. end)` (by default the whole string); returns how many strings are prefixes there (ids in `found`). */
  walkString(str: string, start = 0, end: number = str.length): number {
    const { cls, classes, next_state, ends, found } = this;
    let count = 0;
    let s = 0;
    if (ends[0]! >= 0) found[count++] = ends[0]!;
    const to = end < str.length ? end : str.length;
    for (let i = start; i < to; i++) {
      const u = str.charCodeAt(i);
      const c = u > 0xff ? 0 : cls[u]!;
      if (c === 0) break;
      s = next_state[s * classes + c]!;
      if (s < 0) break;
      const id = ends[s]!;
      if (id >= 0) found[count++] = id;
    }
    return count;
  }
}
