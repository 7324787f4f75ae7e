/**
 * The sensor against tshark, over every capture of the corpus that has an oracle
 * table (test/fixtures/corpus/_oracle, made with TShark 4.0.17; see MANIFEST.md
 * there for their exact semantics). Expected values are tshark's, never ours.
 *
 * Where our definition differs from tshark's on purpose, the difference is named
 * here and checked in its own form rather than skipped:
 * - tshark's reassembled http.time for a close-delimited body ends at the server's
 *   FIN (the frame that completes reassembly); our rsp_last is the last packet that
 *   carries response bytes (DESIGN.md). Such rows must match our req_last and a
 *   transaction noted body_until_close.
 * - An interim 1xx answer is not the response (DESIGN.md), so tshark's per-frame
 *   http.time of a 100 Continue is not one of our ttfr values; the transaction's
 *   final response is checked by the reassembled table.
 * - tshark gives a refused connection (SYN answered by RST) an initial RTT of
 *   SYN → RST; ours is that connection's rtt_server_ns (no handshake, no rtt_ns).
 * - tshark treats an initial RTT of zero as "not yet measured" and takes the next
 *   ACK instead; where SYN, SYN/ACK and ACK share one timestamp our rtt_ns is 0.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CORPUS, analyze, corpusManifest, epochText, readTsv, secondsToNs, type CorpusEntry } from './support/oracle.ts';
import type { TransactionRecord } from '../sensor/src/output/records.ts';

const entries = corpusManifest().filter((e) => e.oracle_http || e.oracle_http_noreasm || e.oracle_dns || e.oracle_irtt);

function at(t: TransactionRecord, field: 'rsp_first' | 'rsp_last' | 'req_last'): string | null {
  const v = t[field];
  return v === null ? null : epochText(v);
}

/** tshark prints frame times with 9 decimals; subtracting a duration keeps them exact as integers. */
function minusNs(epoch: string, ns: number): string {
  const [s, f] = epoch.split('.') as [string, string];
  const frac = Number(f) - ns;
  const borrow = Math.floor(frac / 1e9);
  return `${Number(s) + borrow}.${String(frac - borrow * 1e9).padStart(9, '0')}`;
}

describe('tshark oracle tables', () => {
  for (const e of entries) {
    test(e.file, async () => {
      const a = await analyze(join(CORPUS, e.file));
      const http = a.transactions.filter((t) => t.protocol === 'http');
      let checked = 0;

      // http.time with reassembly = ttlr_ns (response frame = last segment).
      for (const r of e.oracle_http ? readTsv(e.oracle_http) : []) {
        if (r['http.time'] === '') continue;
        const expected = secondsToNs(r['http.time']!);
        const byLast = http.find((t) => at(t, 'rsp_last') === r['frame.time_epoch']);
        if (byLast !== undefined) {
          assert.equal(byLast.ttlr_ns, expected, `frame ${r['frame.number']}: ttlr_ns`);
        } else {
          const reqLast = minusNs(r['frame.time_epoch']!, expected);
          const closeDelimited = http.find((t) => at(t, 'req_last') === reqLast && t.notes.includes('body_until_close'));
          assert.ok(closeDelimited, `frame ${r['frame.number']} (http.time ${r['http.time']}): no transaction ends there, nor a close-delimited one whose request ended at ${reqLast}`);
        }
        checked++;
      }

      // http.time without reassembly = request_ns + ttfr_ns (response frame = first segment).
      for (const r of e.oracle_http_noreasm ? readTsv(e.oracle_http_noreasm) : []) {
        if (r['http.time'] === '' || r['http.response.code']!.startsWith('1')) continue;
        // Several responses may share one timestamp (a capture with all-zero times): prefer the one with tshark's status.
        const same = http.filter((x) => at(x, 'rsp_first') === r['frame.time_epoch']);
        const t = same.find((x) => x.status === Number(r['http.response.code'])) ?? same[0];
        assert.ok(t, `frame ${r['frame.number']}: no transaction whose response starts at ${r['frame.time_epoch']}`);
        assert.equal(t.request_ns! + t.ttfr_ns!, secondsToNs(r['http.time']!), `frame ${r['frame.number']}: request_ns + ttfr_ns`);
        assert.equal(t.status, Number(r['http.response.code']), `frame ${r['frame.number']}: status`);
        checked++;
      }

      // dns.time = ttfr_ns, from the last copy of a retransmitted query; a duplicate answer gets none.
      for (const r of e.oracle_dns ? readTsv(e.oracle_dns) : []) {
        const t = a.transactions.find((x) => x.protocol === 'dns' && at(x, 'rsp_first') === r['frame.time_epoch']);
        if (r['dns.time'] === '') {
          assert.equal(t, undefined, `frame ${r['frame.number']} is a duplicate answer and must not end a transaction`);
        } else {
          assert.ok(t, `frame ${r['frame.number']}: no DNS transaction answered at ${r['frame.time_epoch']}`);
          assert.equal(t.ttfr_ns, secondsToNs(r['dns.time']!), `frame ${r['frame.number']}: ttfr_ns`);
          assert.equal(t.status, Number(r['dns.flags.rcode']), `frame ${r['frame.number']}: rcode`);
        }
        checked++;
      }

      // tcp.analysis.initial_rtt = rtt_ns of the connection (SYN → ACK of SYN/ACK).
      const pool = a.connections.map((c) => (c.outcome === 'refused' ? c.rtt_server_ns : c.rtt_ns));
      for (const r of e.oracle_irtt ? readTsv(e.oracle_irtt) : []) {
        const text = r['tcp.analysis.initial_rtt_s']!;
        if (!/^\d+\.\d{9}$/.test(text)) continue; // an invalid capture timestamp (timestamp_invalid_nano.pcap), see its own test
        let expected = secondsToNs(text);
        if (!pool.includes(expected) && pool.includes(0) && expected <= 1000) expected = 0; // tshark's zero-means-unset
        const i = pool.indexOf(expected);
        assert.ok(i >= 0, `stream ${r['tcp.stream']}: initial RTT ${expected} ns not among ours ${JSON.stringify(pool)}`);
        pool.splice(i, 1);
        checked++;
      }
      assert.ok(checked > 0 || isOnlyUnanswered(e), 'an oracle row was checked');
    });
  }
});

/** Files whose oracle tables hold only rows tshark could not pair (no http.time at all). */
function isOnlyUnanswered(e: CorpusEntry): boolean {
  const rows = [e.oracle_http, e.oracle_http_noreasm].flatMap((f) => (f ? readTsv(f) : []));
  return rows.every((r) => r['http.time'] === '');
}
