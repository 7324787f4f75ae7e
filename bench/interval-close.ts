/**
 * How long closing a large interval holds the packet loop: KEYS keys (servers × one
 * signature, 20 transactions each, timing metrics spread over decades as latencies are),
 * closed as the pipeline does it, by capture time passing the interval's end + grace, one
 * `advanceTo` per capture second, until every summary is out; and the same keys handed out
 * in one go (`flush`), as a close did before its summaries were spread.
 *
 *   node --import tsx bench/interval-close.ts [--keys 20000]
 *
 * The one-go close runs after the spread one, in the same process: its code is then
 * compiled, which favours it. Then the same keys with 3 transactions each (most keys of a busy sensor see a handful an
 * interval; a metric holds up to 8 values raw), handed out in one go.
 *
 * Prints one JSON line: { ok, keys, longest_hold_ns (the longest single advanceTo),
 * spread_total_ns (all the advanceTo calls), capture_s (capture seconds until all were out),
 * at_once_ns (flush of the same keys), small_keys_at_once_ns (flush of the keys of 3),
 * elapsed_ns (= spread_total_ns), packets: 0 }.
 */
import { IntervalAggregator } from '../sensor/src/aggregate/interval-aggregator.ts';
import { TRANSACTION_METRICS } from '../sensor/src/aggregate/metrics.ts';
import { Rng } from './prng.ts';

const args = process.argv.slice(2);
const keys = Number(args[args.indexOf('--keys') + 1] ?? 20_000) || 20_000;
const T0 = 1_767_225_600; // 2026-01-01T00:00:00Z, an interval start

function filled(on_summary: () => void, per_key = 20): IntervalAggregator {
  const agg = new IntervalAggregator({ sensor_id: 'bench', interval_s: 300, grace_s: 60 }, on_summary);
  const rng = new Rng(1);
  const v = new Float64Array(TRANSACTION_METRICS.length);
  for (let r = 0; r < per_key; r++) {
    for (let k = 0; k < keys; k++) {
      // the 8 timing metrics from 3 µs to 200 s, the counters small
      for (let m = 0; m < v.length; m++) v[m] = m < 8 ? Math.exp(8 + rng.next() * 11) : Math.floor(rng.next() * 1000);
      agg.addMetrics('transaction', `10.${k >> 16}.${(k >> 8) & 255}.${k & 255}`, 80, 'tcp', 'http', 'GET', 'ok', v, T0 + r);
    }
  }
  return agg;
}

let out = 0;
const spread = filled(() => out++);
let longest = 0;
let total = 0;
let s = 360; // end + grace: the close
for (; out < keys && s < 360 + 300; s++) {
  const t = process.hrtime.bigint();
  spread.advanceTo(T0 + s);
  const d = Number(process.hrtime.bigint() - t);
  if (d > longest) longest = d;
  total += d;
}
const capture_s = s - 360;
if (out !== keys) throw new Error(`${out} of ${keys} summaries after ${capture_s} capture seconds`);

let once = 0;
const at_once = filled(() => once++);
const t = process.hrtime.bigint();
at_once.flush();
const at_once_ns = Number(process.hrtime.bigint() - t);
if (once !== keys) throw new Error(`flush gave ${once} of ${keys} summaries`);

let small = 0;
const small_keys = filled(() => small++, 3);
const t_small = process.hrtime.bigint();
small_keys.flush();
const small_keys_at_once_ns = Number(process.hrtime.bigint() - t_small);
if (small !== keys) throw new Error(`flush gave ${small} of ${keys} summaries of keys of 3`);

console.log(JSON.stringify({ ok: true, keys, longest_hold_ns: longest, spread_total_ns: total, capture_s, at_once_ns, small_keys_at_once_ns, elapsed_ns: total, packets: 0 }));
