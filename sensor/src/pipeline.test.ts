/**
 * Connection-level behaviour of the pipeline: the `connection` record of every TCP
 * connection (docs/records.md), handshake timing, idle expiry in packet time, tuple
 * reuse, nanosecond exactness, mid-stream pick-up and the port filter. Expected values
 * are worked out by hand from the timestamps chosen here.
 *
 * Times are nanoseconds after T0 (1 700 000 000 s = 2023-11-14T22:13:20Z).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RST, SYN, ACK, Script, T0_SEC, TcpConn, iso, tcpFrame, udpFrame } from '../../test/support/frames.ts';
import { parsePortFilter } from './cli/port-filter.ts';
import type { ConnectionRecord } from './output/records.ts';
import { parseSignatures } from './classify/signature-parser.ts';
import { SignatureSet } from './classify/signature-set.ts';
import { MAX_SIGNATURE_STATS, OTHER_SIGNATURES } from './pipeline.ts';

const C = '10.0.0.1';
const S = '10.0.0.2';
const GET = 'GET /a HTTP/1.1\r\nHost: h\r\n\r\n'; // 28 bytes
const OK_0 = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'; // 38 bytes

const SYN_OPTS = { mss: 1460, wscale: 7, sack_permitted: true, window: 64240 };
const SYNACK_OPTS = { mss: 1400, wscale: 8, sack_permitted: true, window: 65160 };

function pick<K extends keyof ConnectionRecord>(r: ConnectionRecord, keys: K[]): Pick<ConnectionRecord, K> {
  return Object.fromEntries(keys.map((k) => [k, r[k]])) as Pick<ConnectionRecord, K>;
}

describe('connection records', () => {
  test('refused: SYN answered by RST/ACK; rtt_server_ns is SYN → RST', () => {
    const c = new TcpConn(C, 40000, S, 80);
    const { connections, transactions } = new Script()
      .at(1_000_000, c.syn(SYN_OPTS))
      .at(1_250_000, c.rst('s')) // RST|ACK, ack = client ISN + 1
      .run();
    assert.equal(transactions.length, 0);
    assert.deepEqual(connections, [{
      type: 'connection',
      protocol: 'tcp',
      signature: 'TCP_CONNECT',
      outcome: 'refused',
      transport: 'tcp',
      client: '10.0.0.1',
      client_port: 40000,
      server: '10.0.0.2',
      server_port: 80,
      start: iso(1_000_000),
      end: iso(1_250_000),
      syn: iso(1_000_000),
      syn_ack: null,
      ack: null,
      rtt_server_ns: 250_000, // 1 250 000 − 1 000 000
      rtt_client_ns: null,
      rtt_ns: null,
      syn_retransmits: 0,
      syn_ack_retransmits: 0,
      client_mss: 1460,
      server_mss: null,
      client_wscale: 7,
      server_wscale: null,
      client_data_pkts: 0,
      server_data_pkts: 0,
      picked_up_mid_stream: false,
    }]);
  });

  test('unanswered SYN: finished by the idle timeout when a later packet of another flow moves the clock', () => {
    const c = new TcpConn(C, 40000, S, 80);
    const { records, connections, statistics } = new Script({ idle_timeout_s: 5 })
      .at(1_000_000, c.syn(SYN_OPTS))
      // 10 s later (> 5 s idle): another flow, a UDP datagram no analyzer wants
      .at(10_001_000_000, udpFrame('10.0.0.3', 4000, '10.0.0.4', 9999, 'hello'))
      .run();
    assert.equal(connections.length, 1);
    assert.deepEqual(pick(connections[0]!, ['outcome', 'start', 'end', 'syn', 'syn_ack', 'rtt_server_ns', 'rtt_ns', 'client_port', 'server_port']), {
      outcome: 'unanswered', start: iso(1_000_000), end: iso(1_000_000), syn: iso(1_000_000), syn_ack: null,
      rtt_server_ns: null, rtt_ns: null, client_port: 40000, server_port: 80,
    });
    assert.equal(statistics.flows.expired, 1);
    assert.equal(statistics.flows.created, 2);
    assert.deepEqual(statistics.connections, { total: 1, by_outcome: { unanswered: 1 } });
    // reported when the later packet arrived, not at the end: it is the first record
    assert.equal(records[0]!.type, 'connection');
  });

  test('unanswered SYN still tracked at the end of the capture is unanswered too', () => {
    const c = new TcpConn(C, 40000, S, 80);
    const { connections } = new Script().at(1_000_000, c.syn(SYN_OPTS)).run();
    assert.equal(connections[0]!.outcome, 'unanswered');
  });

  test('client_ack_missing: SYN/ACK (sent twice) never acknowledged', () => {
    const c = new TcpConn(C, 40000, S, 80);
    const sc = new Script();
    sc.at(1_000_000, c.syn(SYN_OPTS));
    const synack = c.synAck(SYNACK_OPTS);
    sc.at(1_100_000, synack);
    sc.at(2_100_000, synack); // retransmitted after 1 ms
    const { connections } = sc.run();
    assert.deepEqual(pick(connections[0]!, ['outcome', 'syn', 'syn_ack', 'ack', 'end', 'rtt_server_ns', 'rtt_client_ns', 'rtt_ns', 'syn_retransmits',
      'syn_ack_retransmits', 'client_mss', 'server_mss', 'client_wscale', 'server_wscale']), {
      outcome: 'client_ack_missing',
      syn: iso(1_000_000),
      syn_ack: iso(1_100_000), // the first SYN/ACK after the SYN
      ack: null,
      end: iso(2_100_000),
      rtt_server_ns: 100_000,
      rtt_client_ns: null,
      rtt_ns: null,
      syn_retransmits: 0,
      syn_ack_retransmits: 1,
      client_mss: 1460,
      server_mss: 1400,
      client_wscale: 7,
      server_wscale: 8,
    });
  });

  test('closed (FIN both ways), half_closed (FIN one way) and open (still open at the end)', () => {
    const sc = new Script();
    const handshake = (c: TcpConn, t: number) => {
      sc.at(t, c.syn(SYN_OPTS));
      sc.at(t + 100_000, c.synAck(SYNACK_OPTS));
      sc.at(t + 130_000, c.ack('c'));
    };
    const closed = new TcpConn(C, 40001, S, 5000);
    handshake(closed, 1_000_000);
    sc.at(2_000_000, closed.fin('c'));
    sc.at(2_100_000, closed.fin('s'));
    sc.at(2_130_000, closed.ack('c')); // after the close: not part of the record
    const half = new TcpConn(C, 40002, S, 5000);
    handshake(half, 3_000_000);
    sc.at(4_000_000, half.fin('c'));
    sc.at(4_040_000, half.ack('s'));
    const open = new TcpConn(C, 40003, S, 5000);
    handshake(open, 5_000_000);
    sc.at(6_000_000, open.send('c', 'ping\r\n')); // generic TCP: a request without an answer
    sc.at(6_050_000, open.ack('s'));
    const { connections, transactions, statistics } = sc.run();
    const keys: (keyof ConnectionRecord)[] = ['client_port', 'outcome', 'start', 'end', 'rtt_ns', 'client_data_pkts', 'server_data_pkts'];
    assert.deepEqual(connections.map((r) => pick(r, keys)), [
      { client_port: 40001, outcome: 'closed', start: iso(1_000_000), end: iso(2_100_000), rtt_ns: 130_000, client_data_pkts: 0, server_data_pkts: 0 },
      { client_port: 40002, outcome: 'half_closed', start: iso(3_000_000), end: iso(4_040_000), rtt_ns: 130_000, client_data_pkts: 0, server_data_pkts: 0 },
      { client_port: 40003, outcome: 'open', start: iso(5_000_000), end: iso(6_050_000), rtt_ns: 130_000, client_data_pkts: 1, server_data_pkts: 0 },
    ]);
    assert.deepEqual(transactions.map((t) => [t.protocol, t.signature, t.outcome, t.request_bytes]), [['tcp', 'REQUEST', 'timeout', 6]]);
    assert.deepEqual(statistics.connections.by_outcome, { closed: 1, half_closed: 1, open: 1 });
    assert.equal(statistics.skipped.after_close, 1);
  });

  test('timed_out: an established connection idle past idle_timeout_s; its open request times out', () => {
    const c = new TcpConn(C, 40000, S, 80);
    const { records, connections, transactions, statistics } = new Script({ idle_timeout_s: 30 })
      .at(1_000_000, c.syn(SYN_OPTS))
      .at(1_100_000, c.synAck(SYNACK_OPTS))
      .at(1_130_000, c.ack('c'))
      .at(2_000_000, c.send('c', GET))
      .at(2_040_000, c.ack('s'))
      // 40 s after the last packet of the connection (> 30 s): another flow moves the clock
      .at(40_002_040_000, udpFrame('10.0.0.3', 4000, '10.0.0.4', 9999, 'hello'))
      .run();
    assert.deepEqual(connections.map((r) => [r.outcome, r.end]), [['timed_out', iso(2_040_000)]]);
    assert.deepEqual(transactions.map((t) => [t.subject, t.outcome, t.rsp_first, t.ttfr_ns]), [['GET /a', 'timeout', null, null]]);
    assert.ok(transactions[0]!.notes.includes('no_response'), `notes: ${transactions[0]!.notes}`);
    assert.equal(statistics.flows.expired, 1);
    // both records came out when the clock passed the timeout, before the end of the capture
    assert.deepEqual(records.slice(0, 2).map((r) => r.type).sort(), ['connection', 'transaction']);
  });

  test('a full flow table evicts the least recently seen flow: timed_out, counted', () => {
    const a = new TcpConn(C, 40000, S, 80);
    const b = new TcpConn(C, 40001, S, 80);
    const { connections, statistics } = new Script({ max_flows: 1 })
      .at(1_000_000, a.syn(SYN_OPTS))
      .at(1_100_000, a.synAck(SYNACK_OPTS))
      .at(1_130_000, a.ack('c'))
      .at(2_000_000, b.syn(SYN_OPTS)) // no room: a goes
      .run();
    assert.deepEqual(connections.map((r) => [r.client_port, r.outcome]), [[40000, 'timed_out'], [40001, 'unanswered']]);
    assert.equal(statistics.flows.evicted, 1);
    assert.equal(statistics.anomalies.flow_evicted, 1);
    assert.equal(statistics.flows.peak, 1);
  });

  test('a retransmitted SYN: counted, timing from the most recent SYN', () => {
    const c = new TcpConn(C, 40000, S, 80);
    const sc = new Script();
    const syn = c.syn(SYN_OPTS);
    sc.at(1_000_000, syn);
    sc.at(1_001_000_000, syn); // the same SYN one second later
    sc.at(1_001_100_000, c.synAck(SYNACK_OPTS));
    sc.at(1_001_130_000, c.ack('c'));
    const { connections } = sc.run();
    assert.deepEqual(pick(connections[0]!, ['outcome', 'start', 'syn', 'syn_ack', 'ack', 'rtt_server_ns', 'rtt_client_ns', 'rtt_ns', 'syn_retransmits', 'syn_ack_retransmits']), {
      outcome: 'open',
      start: iso(1_000_000), // the first packet
      syn: iso(1_001_000_000), // the most recent SYN
      syn_ack: iso(1_001_100_000),
      ack: iso(1_001_130_000),
      rtt_server_ns: 100_000, // 1 001 100 000 − 1 001 000 000
      rtt_client_ns: 30_000,
      rtt_ns: 130_000,
      syn_retransmits: 1,
      syn_ack_retransmits: 0,
    });
  });

  test('a 4-tuple reused by a new SYN after the close gives two connection records', () => {
    const sc = new Script();
    const first = new TcpConn(C, 40000, S, 80, { c: 1000, s: 5000 });
    sc.at(1_000_000, first.syn(SYN_OPTS));
    sc.at(1_100_000, first.synAck(SYNACK_OPTS));
    sc.at(1_130_000, first.ack('c'));
    sc.at(2_000_000, first.fin('c'));
    sc.at(2_100_000, first.fin('s'));
    sc.at(2_130_000, first.ack('c'));
    const second = new TcpConn(C, 40000, S, 80, { c: 900_000, s: 700_000 });
    sc.at(3_000_000, second.syn(SYN_OPTS));
    sc.at(3_200_000, second.synAck(SYNACK_OPTS));
    sc.at(3_250_000, second.ack('c'));
    sc.at(4_000_000, second.fin('s'));
    sc.at(4_100_000, second.fin('c'));
    const { connections } = sc.run();
    const keys: (keyof ConnectionRecord)[] = ['outcome', 'start', 'end', 'syn', 'rtt_server_ns', 'rtt_client_ns', 'rtt_ns', 'syn_retransmits'];
    assert.deepEqual(connections.map((r) => pick(r, keys)), [
      { outcome: 'closed', start: iso(1_000_000), end: iso(2_100_000), syn: iso(1_000_000), rtt_server_ns: 100_000, rtt_client_ns: 30_000, rtt_ns: 130_000, syn_retransmits: 0 },
      { outcome: 'closed', start: iso(3_000_000), end: iso(4_100_000), syn: iso(3_000_000), rtt_server_ns: 200_000, rtt_client_ns: 50_000, rtt_ns: 250_000, syn_retransmits: 0 },
    ]);
  });

  test('nanosecond timestamps give nanosecond-exact durations, across a second boundary', () => {
    const c = new TcpConn(C, 40000, S, 80);
    const sc = new Script();
    sc.atTime(T0_SEC, 123_456_789, c.syn(SYN_OPTS));
    sc.atTime(T0_SEC, 123_500_001, c.synAck(SYNACK_OPTS));
    sc.atTime(T0_SEC + 1, 7, c.ack('c'));
    sc.atTime(T0_SEC + 1, 1_001, c.send('c', GET));
    sc.atTime(T0_SEC + 1, 501_003, c.send('s', OK_0));
    sc.atTime(T0_SEC + 1, 531_999, c.ack('c'));
    const { connections, transactions } = sc.run();
    assert.deepEqual(pick(connections[0]!, ['start', 'syn_ack', 'ack', 'end', 'rtt_server_ns', 'rtt_client_ns', 'rtt_ns']), {
      start: '2023-11-14T22:13:20.123456789Z',
      syn_ack: '2023-11-14T22:13:20.123500001Z',
      ack: '2023-11-14T22:13:21.000000007Z',
      end: '2023-11-14T22:13:21.000531999Z',
      rtt_server_ns: 43_212, // 123 500 001 − 123 456 789
      rtt_client_ns: 876_500_006, // 1 000 000 007 − 123 500 001
      rtt_ns: 876_543_218, // 1 000 000 007 − 123 456 789
    });
    const t = transactions[0]!;
    assert.deepEqual([t.req_first, t.rsp_first, t.rsp_acked], [
      '2023-11-14T22:13:21.000001001Z', '2023-11-14T22:13:21.000501003Z', '2023-11-14T22:13:21.000531999Z']);
    assert.equal(t.ttfr_ns, 500_002); // 501 003 − 1 001
    assert.equal(t.ttlr_ns, 500_002);
    assert.equal(t.ttla_ns, 530_998); // 531 999 − 1 001
    assert.equal(t.edt_ns, 438_750_005); // 500 002 + 876 500 006 / 2
  });

  test('a flow picked up mid-stream: round trips from data → ACK samples, rtt_source "samples"', () => {
    const c = new TcpConn(C, 40000, S, 80, { c: 3_000_000_000, s: 4_000_000_000 }); // sequence numbers past 2^31
    const { transactions, connections } = new Script()
      .at(1_000_000, c.send('c', GET)) // no handshake captured
      .at(1_040_000, c.ack('s')) // acknowledges the request: server-side sample 40 000
      .at(2_000_000, c.send('s', OK_0))
      .at(2_025_000, c.ack('c')) // acknowledges the response: client-side sample 25 000
      .run();
    assert.equal(transactions.length, 1);
    const t = transactions[0]!;
    assert.deepEqual({
      client: t.client, client_port: t.client_port, server_port: t.server_port, protocol: t.protocol, status: t.status,
      rtt_source: t.rtt_source, rtt_server_ns: t.rtt_server_ns, rtt_client_ns: t.rtt_client_ns, rtt_ns: t.rtt_ns,
      ttfr_ns: t.ttfr_ns, ttla_ns: t.ttla_ns, edt_ns: t.edt_ns, client_mss: t.client_mss,
      client_win_last: t.client_win_last, server_win_min: t.server_win_min,
    }, {
      client: '10.0.0.1', client_port: 40000, server_port: 80, protocol: 'http', status: 200,
      rtt_source: 'samples', rtt_server_ns: 40_000, rtt_client_ns: 25_000, rtt_ns: 65_000,
      ttfr_ns: 1_000_000, ttla_ns: 1_025_000, edt_ns: 1_012_500, // 1 000 000 + 25 000 / 2
      client_mss: null,
      client_win_last: 502, server_win_min: 512, // no handshake: no negotiated shift, windows unscaled
    });
    assert.deepEqual(pick(connections[0]!, ['outcome', 'picked_up_mid_stream', 'syn', 'rtt_ns', 'client_port', 'server_port', 'client_data_pkts', 'server_data_pkts']), {
      outcome: 'open', picked_up_mid_stream: true, syn: null, rtt_ns: null, client_port: 40000, server_port: 80, client_data_pkts: 1, server_data_pkts: 1,
    });
  });

  test('IPv6: addresses in RFC 5952 text, the same timing as IPv4', () => {
    const c = new TcpConn('2001:db8::1', 40000, '2001:db8::2', 80);
    const { transactions, connections } = new Script()
      .at(1_000_000, c.syn(SYN_OPTS))
      .at(1_100_000, c.synAck(SYNACK_OPTS))
      .at(1_130_000, c.ack('c'))
      .at(2_000_000, c.send('c', GET))
      .at(2_700_000, c.send('s', OK_0))
      .at(2_730_000, c.ack('c'))
      .at(3_000_000, c.fin('c'))
      .at(3_100_000, c.fin('s'))
      .run();
    assert.deepEqual(transactions.map((t) => [t.client, t.server, t.server_port, t.status, t.ttfr_ns, t.ttla_ns, t.rtt_ns]),
      [['2001:db8::1', '2001:db8::2', 80, 200, 700_000, 730_000, 130_000]]);
    assert.deepEqual(connections.map((r) => [r.client, r.server, r.outcome, r.rtt_ns]), [['2001:db8::1', '2001:db8::2', 'closed', 130_000]]);
  });

  test('the port filter drops packets of other ports and transports, counted as skipped', () => {
    const sc = new Script({ filter: parsePortFilter('tcp port 80') });
    const web = new TcpConn(C, 40000, S, 80);
    sc.at(1_000_000, web.syn(SYN_OPTS));
    sc.at(1_100_000, web.synAck(SYNACK_OPTS));
    sc.at(1_130_000, web.ack('c'));
    sc.at(2_000_000, web.send('c', GET));
    sc.at(2_500_000, web.send('s', OK_0));
    sc.at(2_530_000, web.ack('c'));
    const tls = new TcpConn(C, 40001, S, 443);
    sc.at(3_000_000, tls.syn(SYN_OPTS));
    sc.at(3_100_000, tls.synAck(SYNACK_OPTS));
    sc.at(3_130_000, tls.ack('c'));
    // UDP port 80 is not "tcp port 80"
    sc.at(4_000_000, udpFrame(C, 40002, S, 80, 'x'));
    // a SYN and a RST on port 8080 (a plain frame, not through a TcpConn)
    sc.at(5_000_000, tcpFrame({ src: C, dst: S, sport: 40003, dport: 8080, flags: SYN, seq: 1 }));
    sc.at(5_100_000, tcpFrame({ src: S, dst: C, sport: 8080, dport: 40003, flags: RST | ACK, seq: 0, ack: 2 }));
    const { connections, transactions, statistics } = sc.run();
    assert.deepEqual(connections.map((r) => [r.server_port, r.outcome]), [[80, 'open']]);
    assert.deepEqual(transactions.map((t) => [t.server_port, t.status, t.ttfr_ns]), [[80, 200, 500_000]]);
    assert.equal(statistics.packets, 12); // every packet read is counted
    assert.equal(statistics.skipped.filtered, 6); // 3 on port 443, 1 UDP, 2 on port 8080
    assert.equal(statistics.flows.created, 1);
  });
});

describe('statistics record', () => {
  test('transactions by signature: pairs in first-seen order, bounded, the rest counted under (other)', () => {
    // One keep-alive connection, MAX_SIGNATURE_STATS + 5 requests for distinct pages, each
    // named by a rule after its page: the first MAX_SIGNATURE_STATS names are counted one by
    // one, the last 5 together under "http (other)".
    const rules = parseSignatures('transaction PAGE_$1 { Subject =~ "^GET /p([0-9]+)$"; }\n', 'pages.sigs');
    const classifier = SignatureSet.fromRules(rules, { max_names_per_rule: MAX_SIGNATURE_STATS + 10 });
    const c = new TcpConn(C, 40000, S, 80);
    const sc = new Script({ classifier })
      .at(1_000, c.syn(SYN_OPTS))
      .at(2_000, c.synAck(SYNACK_OPTS))
      .at(3_000, c.ack('c'));
    const n = MAX_SIGNATURE_STATS + 5;
    for (let i = 0; i < n; i++) {
      sc.at(10_000 + i * 1_000, c.send('c', `GET /p${i} HTTP/1.1\r\nHost: h\r\n\r\n`));
      sc.at(10_500 + i * 1_000, c.send('s', OK_0));
    }
    const { transactions, statistics } = sc.run();
    assert.equal(transactions.length, n);
    assert.equal(transactions[n - 1]!.signature, `PAGE_${n - 1}`); // the record keeps its name
    const keys = Object.keys(statistics.transactions.by_signature);
    assert.equal(keys.length, MAX_SIGNATURE_STATS + 1);
    assert.deepEqual(keys.slice(0, 3), ['http PAGE_0', 'http PAGE_1', 'http PAGE_2']);
    assert.equal(keys[MAX_SIGNATURE_STATS - 1], `http PAGE_${MAX_SIGNATURE_STATS - 1}`);
    assert.equal(statistics.transactions.by_signature['http PAGE_0'], 1);
    assert.equal(statistics.transactions.by_signature[`http ${OTHER_SIGNATURES}`], 5);
    assert.equal(Object.values(statistics.transactions.by_signature).reduce((a, b) => a + b, 0), n);
  });
});

describe('HTTP requests after empty lines', () => {
  test('a CRLF after a POST body and empty lines before a request line are ignored (RFC 9112 §2.2), also when resynchronising', () => {
    const c = new TcpConn(C, 40000, S, 80);
    const { transactions, statistics } = new Script()
      .at(1_000, c.syn(SYN_OPTS))
      .at(2_000, c.synAck(SYNACK_OPTS))
      .at(3_000, c.ack('c'))
      .at(10_000, c.send('c', 'POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\r\n'))
      .at(11_000, c.send('s', OK_0))
      .at(20_000, c.send('c', 'GET /next HTTP/1.1\r\nHost: h\r\n\r\n'))
      .at(21_000, c.send('s', OK_0))
      .at(30_000, c.send('c', '\r\n\r\nGET /third HTTP/1.1\r\n\r\n'))
      .at(31_000, c.send('s', OK_0))
      .at(40_000, c.send('c', 'NOT HTTP AT ALL\r\n')) // not a request: the client side waits for one
      .at(50_000, c.send('c', '\r\nGET /after HTTP/1.1\r\n\r\n'))
      .at(51_000, c.send('s', OK_0))
      .run();
    assert.deepEqual(transactions.map((t) => [t.subject, t.outcome]), [
      ['POST /form', 'ok'], ['GET /next', 'ok'], ['GET /third', 'ok'], ['GET /after', 'ok'],
    ]);
    // request_bytes: the message only, not the empty lines around it
    // (21 + 9 + 19 + 2 head + 3 body; 20 + 9 + 2; 21 + 2; 21 + 2)
    assert.deepEqual(transactions.map((t) => t.request_bytes), [54, 31, 23, 23]);
    assert.equal(statistics.anomalies['http_not_a_request'], 1);
    assert.equal(statistics.anomalies['http_unmatched_response'], undefined);
  });
});

describe('the request bytes signature rules see', () => {
  const rules = parseSignatures([
    'transaction GET_webmail_$1 { Offset = 0; Depth = 50; Content =~ "GET .*/webmail/src/([a-z\\-_\\.]+)"; }',
    'transaction AB { Content =~ "^GET /a/b "; }',
  ].join('\n'), 'test.sigs');

  test('a request line cut across two segments is matched whole (the seed article\'s example)', () => {
    const c = new TcpConn(C, 40000, S, 80);
    const { transactions } = new Script({ classifier: SignatureSet.fromRules(rules) })
      .at(1_000, c.syn(SYN_OPTS))
      .at(2_000, c.synAck(SYNACK_OPTS))
      .at(3_000, c.ack('c'))
      .at(10_000, c.send('c', 'GET /webm'))
      .at(11_000, c.send('c', 'ail/src/right_main.php HTTP/1.1\r\nHost: h\r\n\r\n'))
      .at(12_000, c.send('s', OK_0))
      .run();
    assert.equal(transactions.length, 1);
    assert.equal(transactions[0]!.signature, 'GET_webmail_right_main.php');
  });

  test('subjects read the same whether or not rules keep the request\'s first bytes: pipelined, heads and lines cut across segments, long paths', () => {
    const long_path = '/' + 'p'.repeat(120);
    const wanted = [
      'GET /a', 'POST /cart/add', // two requests in one segment, the second after a body
      'GET /x/y', // a head whose start line is in one segment and its end in the next
      'GET /webmail/src/right_main.php', // a request line cut across segments
      `GET ${long_path}`, // past the request bytes the rules keep
      'GET /q', // the query is not part of the subject
    ];
    const run = (classifier: SignatureSet | null) => {
      const c = new TcpConn(C, 40000, S, 80);
      const ok = (n: number) => 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'.repeat(n);
      const { transactions } = new Script({ classifier })
        .at(1_000, c.syn(SYN_OPTS))
        .at(2_000, c.synAck(SYNACK_OPTS))
        .at(3_000, c.ack('c'))
        .at(10_000, c.send('c', 'GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /cart/add HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok'))
        .at(11_000, c.send('s', ok(2)))
        .at(20_000, c.send('c', 'GET /x/y HTTP/1.1\r\nHo'))
        .at(20_500, c.send('c', 'st: h\r\n\r\n'))
        .at(21_000, c.send('s', ok(1)))
        .at(30_000, c.send('c', 'GET /webm'))
        .at(31_000, c.send('c', 'ail/src/right_main.php HTTP/1.1\r\nHost: h\r\n\r\n'))
        .at(32_000, c.send('s', ok(1)))
        .at(40_000, c.send('c', `GET ${long_path} HTTP/1.1\r\n\r\n`))
        .at(41_000, c.send('s', ok(1)))
        .at(60_000, c.send('c', 'GET /q?x=1 HTTP/1.1\r\n\r\n'))
        .at(61_000, c.send('s', ok(1)))
        .run();
      return transactions.map((t) => t.subject);
    };
    assert.deepEqual(run(null), wanted);
    // 50 request bytes kept (the long path's line is not within them), then 256 (all are)
    const depth_50 = SignatureSet.fromRules([rules[0]!]);
    assert.equal(depth_50.request_bytes_needed, 50);
    assert.deepEqual(run(depth_50), wanted);
    const depth_256 = SignatureSet.fromRules(rules);
    assert.equal(depth_256.request_bytes_needed, 256);
    assert.deepEqual(run(depth_256), wanted);
  });

  test('bytes after a hole are not joined to those before it', () => {
    // "GET /a" + (lost: "/x") + "/b HTTP/1.1...": joined across the hole the text would read
    // "GET /a/b HTTP/1.1" and match AB, which the request never said.
    const c = new TcpConn(C, 40000, S, 80);
    const sc = new Script({ classifier: SignatureSet.fromRules(rules) })
      .at(1_000, c.syn(SYN_OPTS))
      .at(2_000, c.synAck(SYNACK_OPTS))
      .at(3_000, c.ack('c'))
      .at(10_000, c.send('c', 'GET /a'));
    c.send('c', '/x'); // not captured
    sc.at(11_000, c.send('c', '/b HTTP/1.1\r\nHost: h\r\n\r\n'))
      .at(12_000, c.ack('s')) // the server acknowledges all of it: the two bytes were lost by the capture
      .at(13_000, c.send('s', OK_0));
    const { transactions } = sc.run();
    assert.ok(transactions.length >= 1);
    for (const t of transactions) assert.notEqual(t.signature, 'AB');
  });
});
