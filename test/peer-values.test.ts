/**
 * Values other tools assert about corpus captures, written down with their source.
 * None of these numbers comes from running wiretime.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CORPUS, analyze } from './support/oracle.ts';

const PB = 'packetbeat/tests/system/pcaps';
const ZEEK = 'zeek/testing/btest/Traces';

const run = (file: string) => analyze(join(CORPUS, file));

describe('packetbeat event.duration (= request_ns + ttfr_ns), exact to the nanosecond', () => {
  test('pgsql_rt.pcap: the SELECT after the login exchange, 38 800 000 ns (test_0009_pgsql.py test_login_rt)', async () => {
    const { transactions } = await run(`${PB}/pgsql_rt.pcap`);
    // No PostgreSQL analyzer yet: the generic turn-taking analyzer cuts the same exchanges;
    // packetbeat's one event is the last of them (the login messages before it it skips).
    const last = transactions.at(-1)!;
    assert.equal(last.server_port, 5432);
    assert.equal(last.request_ns! + last.ttfr_ns!, 38_800_000);
  });

  test('http_basicauth.pcap: HTTP 18 341 000 ns and DNS 20 690 000 ns (golden/http_basic_auth-expected.json)', async () => {
    const { transactions } = await run(`${PB}/http_basicauth.pcap`);
    const http = transactions.filter((t) => t.protocol === 'http');
    const dns = transactions.filter((t) => t.protocol === 'dns');
    assert.equal(http.length, 1);
    assert.equal(dns.length, 1);
    assert.equal(http[0]!.request_ns! + http[0]!.ttfr_ns!, 18_341_000);
    assert.equal(http[0]!.status, 200);
    assert.equal(dns[0]!.request_ns! + dns[0]!.ttfr_ns!, 20_690_000);
  });

  test('dns_google_com.pcap: 61 782 000 ns, start/end, bytes 28/284 (test_0032_dns.py test_A)', async () => {
    const { transactions } = await run(`${PB}/dns_google_com.pcap`);
    assert.equal(transactions.length, 1);
    const t = transactions[0]!;
    assert.equal(t.request_ns! + t.ttfr_ns!, 61_782_000);
    assert.equal(t.req_first, '2015-08-27T08:00:55.638957000Z');
    assert.equal(t.rsp_first, '2015-08-27T08:00:55.700739000Z');
    assert.equal(t.request_bytes, 28);
    assert.equal(t.response_bytes, 284);
    assert.equal(t.signature, 'A');
  });

  test('dns_not_found.pcap: one event, NXDOMAIN (test_A_not_found) — an error outcome, rcode 3', async () => {
    const { transactions } = await run(`${PB}/dns_not_found.pcap`);
    assert.equal(transactions.length, 1);
    assert.equal(transactions[0]!.status, 3);
    assert.equal(transactions[0]!.outcome, 'error');
  });

  test('dns_tcp_axfr.pcap: one DNS-over-TCP event (test_tcp_axfr)', async () => {
    const { transactions } = await run(`${PB}/dns_tcp_axfr.pcap`);
    const dns = transactions.filter((t) => t.protocol === 'dns');
    assert.equal(dns.length, 1);
    assert.equal(dns[0]!.transport, 'tcp');
    assert.equal(dns[0]!.signature, 'AXFR');
  });
});

describe('transaction counts packetbeat and zeek assert', () => {
  test('http_100_continue.pcap: exactly 1 transaction on port 9200, the 100 inside it (test_0070)', async () => {
    const { transactions } = await run(`${PB}/http_100_continue.pcap`);
    const on9200 = transactions.filter((t) => t.server_port === 9200);
    assert.equal(on9200.length, 1);
    assert.equal(on9200[0]!.protocol, 'http');
    assert.equal(on9200[0]!.status, 200);
    assert.equal(on9200[0]!.outcome, 'ok');
    assert.ok(on9200[0]!.notes.includes('interim_100'));
  });

  test('1000-requests-one-dropped-response.pcap: 999 timed, the one whose response was lost marked (zeek http-pending-state-growth; tshark pairs 999)', async () => {
    const { transactions } = await run(`${ZEEK}/http/1000-requests-one-dropped-response.pcap`);
    assert.equal(transactions.length, 1000);
    const timed = transactions.filter((t) => t.outcome === 'ok' && t.ttfr_ns !== null);
    const lost = transactions.filter((t) => t.outcome !== 'ok');
    assert.equal(timed.length, 999);
    assert.equal(lost.length, 1);
    assert.equal(lost[0]!.outcome, 'partial');
    assert.ok(lost[0]!.notes.includes('response_lost'));
    assert.equal(lost[0]!.rsp_first, null);
  });

  test('wsgi_drum.pcap: 16 HTTP transactions on port 8888, one of them a 500 (test_0006_wsgi.py)', async () => {
    const { transactions } = await run(`${PB}/wsgi_drum.pcap`);
    const http = transactions.filter((t) => t.protocol === 'http');
    assert.equal(http.length, 16);
    assert.ok(http.every((t) => t.server_port === 8888));
    assert.deepEqual(http.filter((t) => t.status === 500).map((t) => t.outcome), ['error']);
  });

  test('gap_in_stream.pcap: 1 event on port 8000, status OK, response with packet loss (test_0029_http_gap.py)', async () => {
    const { transactions } = await run(`${PB}/gap_in_stream.pcap`);
    assert.equal(transactions.length, 1);
    const t = transactions[0]!;
    assert.equal(t.server_port, 8000);
    assert.equal(t.status, 200);
    assert.equal(t.outcome, 'partial');
    assert.ok(t.notes.includes('gap_in_response'));
    assert.ok(t.server_lost_bytes > 0);
  });

  test('http_unmatched.pcap: the response without a request is counted, the other request is timed (test_0065)', async () => {
    const { transactions, statistics } = await run(`${PB}/http_unmatched.pcap`);
    assert.equal(statistics.anomalies['http_unmatched_response'], 1);
    const answered = transactions.filter((t) => t.status === 200);
    assert.equal(answered.length, 1);
    // tshark frames 14 → 16: 1523022021.381418 − 1523022020.879274
    assert.equal(answered[0]!.ttfr_ns, 502_144_000);
  });

  test('zeek http/pipelined-requests.pcap: 5 keep-alive transactions; TTFB vs TTLB 7.296/7.354 ms and 5.555/12.293 ms', async () => {
    const { transactions } = await run(`${ZEEK}/http/pipelined-requests.pcap`);
    assert.equal(transactions.length, 5);
    const pairs = transactions.map((t) => [t.ttfr_ns, t.ttlr_ns]);
    assert.deepEqual(pairs[1], [7_296_000, 7_354_000]);
    assert.deepEqual(pairs[4], [5_555_000, 12_293_000]);
  });

  test('zeek http/get.pcap: conn duration 0.211484 s, 136/5007 bytes (core.tcp.reassembly-known-ports conn.log)', async () => {
    const { transactions, connections } = await run(`${ZEEK}/http/get.pcap`);
    assert.equal(connections.length, 1);
    const c = connections[0]!;
    const seconds = (Date.parse(c.end!.slice(0, 19) + 'Z') - Date.parse(c.start!.slice(0, 19) + 'Z')) / 1000;
    assert.equal(seconds * 1e9 + Number(c.end!.slice(20, 29)) - Number(c.start!.slice(20, 29)), 211_484_000);
    assert.equal(c.outcome, 'closed');
    assert.equal(transactions[0]!.request_bytes, 136);
    assert.equal(transactions[0]!.response_bytes, 5007);
  });
});

describe('handshake timing (tcpdump -ttt, tshark tcp.analysis.initial_rtt)', () => {
  test('tcp-handshake-nano.pcap: SYN→SYN/ACK 0.127521774 s, SYN/ACK→ACK 0.000087895 s, iRTT 0.127609669 s', async () => {
    const { connections } = await run('tcpdump/tests/tcp-handshake-nano.pcap');
    assert.equal(connections.length, 1);
    const c = connections[0]!;
    assert.equal(c.rtt_server_ns, 127_521_774);
    assert.equal(c.rtt_client_ns, 87_895);
    assert.equal(c.rtt_ns, 127_609_669);
    assert.equal(c.signature, 'TCP_CONNECT');
  });

  test('http_minitwit.pcap: SYN and SYN/ACK retransmitted, timing from the last SYN (tshark iRTT 0.413358 s)', async () => {
    const { connections } = await run(`${PB}/http_minitwit.pcap`);
    const c = connections.find((x) => x.client_port === 54743)!;
    assert.equal(c.rtt_ns, 413_358_000);
    assert.equal(c.syn_retransmits, 1);
    // tshark frames 40 (SYN) → 41 (first SYN/ACK after it): 1374510580.730213 − .730194
    assert.equal(c.rtt_server_ns, 19_000);
  });

  test('http_100_continue.pcap: 24 connections refused by RST, server answer SYN→RST/ACK (tshark frames 1→2: 36 µs)', async () => {
    const { connections } = await run(`${PB}/http_100_continue.pcap`);
    const refused = connections.filter((c) => c.outcome === 'refused');
    assert.equal(refused.length, 24);
    assert.ok(refused.some((c) => c.client_port === 50445 && c.rtt_server_ns === 36_000));
  });
});

describe('DNS retransmission policy (tshark dns.time, zeek dns.log)', () => {
  test('ipv6-fragmented-dns.pcap: fragmented answer reassembled; timing from the retransmitted query (tshark 0.083189 s; zeek 5.084025 s from the first)', async () => {
    const { transactions, statistics } = await run(`${ZEEK}/ipv6-fragmented-dns.pcap`);
    const big = transactions.find((t) => t.subject.includes('txtpadding_3230'))!;
    assert.equal(big.ttfr_ns, 83_189_000);
    assert.equal(big.request_retransmits, 1);
    assert.equal(big.response_bytes, 3230);
    assert.equal(statistics.fragments['reassembled'], 1);
  });

  test('dns-two-responses.pcap: one transaction (rtt 0.000214 s), the duplicate answer counted (zeek duplicate-reponses dns.log)', async () => {
    const { transactions, statistics } = await run(`${ZEEK}/dns-two-responses.pcap`);
    assert.equal(transactions.length, 1);
    assert.equal(transactions[0]!.ttfr_ns, 214_000);
    assert.equal(statistics.anomalies['dns_unmatched_response'], 1);
  });
});
