/** Text forms used in raw output (DESIGN.md, Raw output). */

/** RFC 3339 UTC with nanoseconds, from whole seconds and a nanosecond offset (may exceed one second). */
export function rfc3339(base_sec: number, rel_ns: number): string {
  const whole = Math.floor(rel_ns / 1e9);
  const sec = base_sec + whole;
  const nsec = rel_ns - whole * 1e9;
  if (sec !== cached_sec) {
    // Timestamps of one transaction mostly share their second: format it once.
    cached_sec = sec;
    cached_prefix = new Date(sec * 1000).toISOString().slice(0, 19); // YYYY-MM-DDTHH:MM:SS
  }
  return `${cached_prefix}.${String(nsec).padStart(9, '0')}Z`;
}

let cached_sec = NaN;
let cached_prefix = '';

/** Dotted quad from a big-endian 32-bit word. */
export function ipv4String(w: number): string {
  return `${w >>> 24}.${(w >>> 16) & 255}.${(w >>> 8) & 255}.${w & 255}`;
}

/** RFC 5952 text form of an IPv6 address given as four big-endian 32-bit words. */
export function ipv6String(w0: number, w1: number, w2: number, w3: number): string {
  const g = [w0 >>> 16, w0 & 0xffff, w1 >>> 16, w1 & 0xffff, w2 >>> 16, w2 & 0xffff, w3 >>> 16, w3 & 0xffff];
  // Longest run of two or more zero groups becomes "::" (RFC 5952 §4.2).
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x!.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export function addressString(ip_version: number, w: readonly [number, number, number, number]): string {
  return ip_version === 4 ? ipv4String(w[0]) : ipv6String(w[0], w[1], w[2], w[3]);
}
