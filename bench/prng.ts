/**
 * Seeded PRNG for the benchmark generators: mulberry32 (32-bit state, period 2^32),
 * plus the few distributions the traffic model needs. Same seed, same sequence, on
 * every platform (only 32-bit integer ops and IEEE doubles).
 */
export class Rng {
  private a: number;
  private spare = NaN;

  constructor(seed: number) {
    // Scramble the seed so that 1, 2, 3... start far apart.
    let s = (seed ^ 0x9e3779b9) >>> 0;
    s = Math.imul(s ^ (s >>> 16), 0x85ebca6b) >>> 0;
    s = Math.imul(s ^ (s >>> 13), 0xc2b2ae35) >>> 0;
    this.a = (s ^ (s >>> 16)) >>> 0;
  }

  /** uniform in [0, 1) */
  next(): number {
    this.a = (this.a + 0x6d2b79f5) | 0;
    let t = Math.imul(this.a ^ (this.a >>> 15), 1 | this.a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** unsigned 32-bit integer */
  u32(): number {
    return Math.floor(this.next() * 4294967296) >>> 0;
  }

  /** integer in [lo, hi] */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** uniform in [lo, hi) */
  uniform(lo: number, hi: number): number {
    return lo + this.next() * (hi - lo);
  }

  /** log-uniform in [lo, hi) */
  logUniform(lo: number, hi: number): number {
    return Math.exp(Math.log(lo) + this.next() * (Math.log(hi) - Math.log(lo)));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** pick by weights (need not sum to 1) */
  weighted<T>(items: readonly T[], weights: readonly number[]): T {
    let total = 0;
    for (const w of weights) total += w;
    let r = this.next() * total;
    for (let i = 0; i < items.length; i++) {
      r -= weights[i]!;
      if (r < 0) return items[i]!;
    }
    return items[items.length - 1]!;
  }

  /** standard normal (Box-Muller, caching the second value) */
  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const v = this.spare;
      this.spare = NaN;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** log-normal with the given median and sigma (of the underlying normal) */
  logNormal(median: number, sigma: number): number {
    return median * Math.exp(sigma * this.normal());
  }

  /** exponential with the given mean */
  exp(mean: number): number {
    return -mean * Math.log(1 - this.next());
  }

  /** lowercase hex string of n digits */
  hex(n: number): string {
    let s = '';
    while (s.length < n) s += this.u32().toString(16).padStart(8, '0');
    return s.slice(0, n);
  }

  /** string of n characters from the alphabet */
  chars(n: number, alphabet: string): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(this.next() * alphabet.length)];
    return s;
  }
}
