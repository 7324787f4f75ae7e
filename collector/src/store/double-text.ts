// A double as JavaScript writes it (Number::toString: the shortest decimal that reads back as
// the same double, the closest to it among those, the even one on a tie; ECMA-262
// §6.1.6.1.20), written straight into a byte buffer, for the non-integral doubles of the
// metrics jsonb. String(x) costs ~200–450 ns a double on the collector's machine (a call into
// the runtime and a string per value), and a summary carries 87 of them (29 metrics × sum, min,
// max): ~40 µs per summary on the ingest bench, the largest single cost of building its rows.
// This digit generation costs a fraction of that, for the doubles it takes: 16 ≤ |x| < 2^53,
// not integral. The caller uses String(x) for every other double. double-text.test.ts compares
// it with String(x) on millions of doubles.
//
// Why it is exact. Such an x is I + f, with I = floor(x) and f = m / 2^k (k ≤ 48 fractional
// bits). Its neighbours are x ± 2^-k (x is not a power of two: those are integers here), so
// the decimals that read back as x are those in [x - 2^-(k+1), x + 2^-(k+1)], the ends
// included when x's significand is even (ties round to even). Those ends have the integer part
// I too (no integer lies inside the interval), so the answer is I, a point, and the shortest
// digit string j for which a j-digit fraction lies in [fl, fh] = [f - 2^-(k+1), f + 2^-(k+1)].
// fl, f and fh have at most 49 fractional bits, so v → 10·v − digit is exact in a double
// (49 + 4 ≤ 53 bits): their decimal digits are generated exactly, in step, keeping only the
// (small) differences between the three j-digit prefixes.

const TWO53 = 2 ** 53;
/** half an ulp of a double of binary exponent e (4 ≤ e ≤ 52), by e */
const HALF_ULP = Array.from({ length: 53 }, (_, e) => 2 ** (e - 53));

const scratch = new Float64Array(1);
const words = new Uint32Array(scratch.buffer);
/** fraction digits of fl, generated */
const low = new Uint8Array(64);

/**
 * Writes x at `pos` of `out` as String(x) would, when 16 ≤ |x| < 2^53 and x is not an integer;
 * returns the position after it, or -1 (nothing written) for any other x. `out` needs 26
 * bytes of room.
 */
export function writeDouble(out: Uint8Array, pos: number, x: number): number {
  const ax = x < 0 ? -x : x;
  if (!(ax >= 16 && ax < TWO53)) return -1;
  const int = Math.floor(ax);
  let f = ax - int; // exact (x and floor(x) share the binade's grid)
  if (f === 0) return -1;
  // ulp: 2^(exponent - 52)
  scratch[0] = ax;
  const exponent = ((words[1]! >>> 20) & 0x7ff) - 1023;
  const half = HALF_ULP[exponent]!;
  const inclusive = (words[0]! & 1) === 0;
  let fl = f - half, fh = f + half;
  // j-digit prefixes of fl, f and fh as L, L + dx, L + dh (dx, dh small: no j-digit fraction
  // fitted between fl and fh until now)
  let dx = 0, dh = 0, j = 0, t = -1;
  for (;;) {
    fl *= 10;
    f *= 10;
    fh *= 10;
    const a = Math.floor(fl), b = Math.floor(f), c = Math.floor(fh);
    fl -= a;
    f -= b;
    fh -= c;
    low[j++] = a;
    dx = dx * 10 + b - a;
    dh = dh * 10 + c - a;
    // j-digit candidates L + t, for t in [lo, hi]
    const lo = fl > 0 || !inclusive ? 1 : 0;
    const hi = fh > 0 || inclusive ? dh : dh - 1;
    if (lo <= hi) {
      // the one closest to f's value L + dx + f, the even one on a tie
      t = f < 0.5 ? dx : f > 0.5 ? dx + 1 : ((a + dx) & 1) === 0 ? dx : dx + 1;
      if (t < lo) t = lo;
      else if (t > hi) t = hi;
      break;
    }
    if (j > 20) return -1; // cannot happen (f's own digits end by then); be safe
  }
  // the digits L + t, carrying into the digits before
  let carry = t;
  for (let i = j - 1; i >= 0 && carry > 0; i--) {
    const d = low[i]! + carry;
    low[i] = d % 10;
    carry = (d - (d % 10)) / 10;
  }
  if (carry > 0) return -1; // cannot happen (L + t < 10^j); be safe
  if (x < 0) out[pos++] = 0x2d;
  pos = writeInteger(out, pos, int);
  out[pos++] = 0x2e;
  for (let i = 0; i < j; i++) out[pos++] = 48 + low[i]!;
  return pos;
}

/** a non-negative integer below 2^53 in decimal; returns the position after it */
export function writeInteger(out: Uint8Array, pos: number, n: number): number {
  let len = 1;
  for (let p = 10; p <= n && len < 16; p *= 10) len++;
  if (len === 16 && n >= 1e16) len = 17;
  let end = pos + len;
  const stop = end;
  if (n < 0x8000_0000) {
    while (n >= 10) {
      const q = (n / 10) | 0;
      out[--end] = 48 + (n - q * 10);
      n = q;
    }
  } else {
    while (n >= 10) {
      const q = Math.floor(n / 10); // exact below 2^53 (see writeDouble's note)
      out[--end] = 48 + (n - q * 10);
      n = q;
    }
  }
  out[--end] = 48 + n;
  return stop;
}

