import v8 from 'node:v8';

/*
 * Why a V8 flag and not the npm package `re2` (measured on this host, Node 20.20.2 / V8 11.3,
 * pattern `GET .*\/webmail\/src\/([a-z\-_\.]+)` on 1000 request lines of ~40 bytes, half matching):
 *
 *   engine                                      ns per call   calls/s
 *   RegExp.exec, no flag                          103          9.7 M
 *   RegExp.exec, with the flag                    108          9.2 M    (no loss: within noise)
 *   RE2.exec on a string                         1994          0.50 M
 *   RE2.exec on a Buffer                         1841          0.54 M
 *   RE2.test on a Buffer                          118          8.5 M    (no captures, so no names)
 *
 *   `^(a+)+$` on N a's + '!'   N=20    N=24    N=26     N=40         N=1000
 *   RegExp, no flag            34 ms   79 ms   336 ms   (~days)      -
 *   RegExp, with the flag      2 ms    0.2 ms  0.2 ms   0.2 ms       0.2 ms
 *   RE2                        0.3 ms  0.2 ms  0.5 ms   0.01 ms      0.04 ms
 *
 * re2 1.24 (the last that supports Node 20) has no prebuilt binary here and compiles from
 * source on install (55 s on this host), adds a native dependency, and is ~18x slower for
 * what we need (exec with captures, to expand $1..$9). The flag keeps V8's normal speed and
 * only falls back to V8's linear-time (automaton) engine for a regex that exceeds
 * `--regexp-backtracks-before-fallback` (50 000) backtracks in one exec. Its limits, which
 * re2 shares except the last: no backreferences, no lookaround; and in V8 11.3 no
 * case-insensitive flag and counted repetition only while the product of the counts through
 * nesting is at most 16 (`a{1,16}` yes, `a{17}` or `(a{1,5}){1,5}` no). Patterns outside
 * those limits are refused at load (pcre-pattern.ts says which construct; `runsInLinearTime`
 * asks the engine itself so nothing slips through).
 */

/** The flag that makes an exceeding backtracking regex re-run on the linear-time engine. */
const FALLBACK_FLAG = '--enable-experimental-regexp-engine-on-excessive-backtracks';
/** Makes the `l` (linear) flag available, which we only use to ask "can the engine run this?". */
const PROBE_FLAG = '--enable-experimental-regexp-engine';

let state: 'unset' | 'enabled' | 'unavailable' = 'unset';

/**
 * Turns on V8's fallback from the backtracking regexp engine to its linear-time engine
 * (STACK-NOTES "Regular expressions"): `^(a+)+$` against 40 a's and a '!' takes under a
 * millisecond instead of days. Process-wide and irreversible; idempotent. Must run before
 * the signature patterns are compiled: V8 decides per regexp, when it compiles it, whether it
 * may fall back. (The flag cannot go in NODE_OPTIONS, which refuses V8 flags it does not know.)
 *
 * Returns false when this V8 does not offer the linear-time engine (then no pattern can be
 * vouched for, and `parseSignatures` refuses every rule).
 */
export function enableLinearRegexFallback(): boolean {
  if (state !== 'unset') return state === 'enabled';
  v8.setFlagsFromString(FALLBACK_FLAG);
  v8.setFlagsFromString(PROBE_FLAG);
  try {
    // An unknown flag is ignored silently; the `l` flag existing proves the engine is there.
    new RegExp('a', 'l');
    state = 'enabled';
  } catch {
    state = 'unavailable';
  }
  return state === 'enabled';
}

/** Whether `enableLinearRegexFallback` succeeded (calls it if nobody has yet). */
export function linearRegexAvailable(): boolean {
  return enableLinearRegexFallback();
}

/**
 * Whether V8's linear-time engine can run `source` (compiled without flags), i.e. whether
 * the fallback protects it. Asks the engine: compiling with the `l` flag throws
 * "Cannot be executed in linear time" otherwise.
 */
export function runsInLinearTime(source: string): boolean {
  if (!enableLinearRegexFallback()) return false;
  try {
    new RegExp(source, 'l');
    return true;
  } catch {
    return false;
  }
}
