/**
 * DNS: the message parser on literal bytes (RFC 1035 §4.1), then queries and answers
 * through the whole pipeline over UDP and TCP. Expected values come from RFC 1035 and
 * from the timestamps chosen here (arithmetic in the comments), never from a run.
 *
 * Times are nanoseconds after T0 (1 700 000 000 s).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Script, TcpConn, concat, iso, udpFrame } from '../../../../test/support/frames.ts';
import type { TransactionRecord } from '../../output/records.ts';
import { parseDnsMessage } from './dns-analyzer.ts';

/** Bytes from hex text; `#` starts a comment running to the end of the line. */
function hex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text.replace(/#[^\n]*/g, '').replace(/\s+/g, ''), 'hex'));
}

/** "www.example.com" → 3 www 7 example 3 com 0 (RFC 1035 §3.1) */
function labels(name: string): number[] {
  const out: number[] = [];
  for (const l of name.split('.')) out.push(l.length, ...Buffer.from(l, 'latin1'));
  out.push(0);
  return out;
}

/** header (id, flags 0x0100 = RD, QDCOUNT 1) + question (name, qtype, class IN) */
function query(id: number, name: string, qtype = 1): Uint8Array {
  return new Uint8Array([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels(name), 0, qtype, 0, 1]);
}

/**
 * An answer: flags 0x8180 | rcode (QR, RD, RA), the question repeated and, when rcode is 0,
 * one record: pointer c0 0c to the question's name, type, class IN, TTL 300, RDATA of
 * 4 bytes (A) or 16 (AAAA).
 */
function answer(id: number, name: string, qtype = 1, rcode = 0): Uint8Array {
  const rdata = qtype === 28 ? [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1] : [93, 184, 216, 34]; // 2001:db8::1 / 93.184.216.34
  const rr = rcode === 0 ? [0xc0, 0x0c, 0, qtype, 0, 1, 0, 0, 1, 44, 0, rdata.length, ...rdata] : [];
  return new Uint8Array([id >> 8, id & 0xff, 0x81, 0x80 | rcode, 0, 1, 0, rcode === 0 ? 1 : 0, 0, 0, 0, 0,
    ...labels(name), 0, qtype, 0, 1, ...rr]);
}

const C = '10.0.0.1';
const S = '10.0.0.2';

function pick<K extends keyof TransactionRecord>(t: TransactionRecord, keys: K[]): Pick<TransactionRecord, K> {
  return Object.fromEntries(keys.map((k) => [k, t[k]])) as Pick<TransactionRecord, K>;
}

describe('parseDnsMessage (RFC 1035 §4.1)', () => {
  const QUERY = hex(`
    ab cd                    # ID
    01 00                    # QR 0, opcode 0, RD 1
    00 01                    # QDCOUNT 1
    00 00 00 00 00 00        # ANCOUNT, NSCOUNT, ARCOUNT 0
    03 77 77 77              # label "www"
    07 65 78 61 6d 70 6c 65  # label "example"
    03 63 6f 6d              # label "com"
    00                       # root
    00 1c                    # QTYPE 28 = AAAA
    00 01                    # QCLASS IN
  `);

  test('a query: header fields, the name from its labels, the qtype', () => {
    assert.equal(QUERY.length, 33); // 12 + 17 + 4
    assert.deepEqual(parseDnsMessage(QUERY, 0, QUERY.length),
      { id: 0xabcd, is_response: false, opcode: 0, rcode: 0, qdcount: 1, qname: 'www.example.com', qtype: 28 });
  });

  test('at an offset inside a larger buffer', () => {
    const buf = concat(new Uint8Array([9, 9, 9, 9, 9]), QUERY, new Uint8Array([7, 7]));
    assert.deepEqual(parseDnsMessage(buf, 5, QUERY.length),
      { id: 0xabcd, is_response: false, opcode: 0, rcode: 0, qdcount: 1, qname: 'www.example.com', qtype: 28 });
  });

  test('a response: QR set, RCODE 3 (name error)', () => {
    const r = hex(`ab cd  81 83  00 01  00 00 00 00 00 00  03 77 77 77 07 65 78 61 6d 70 6c 65 03 63 6f 6d 00  00 01 00 01`);
    // 0x8183: QR 1, opcode 0, RD 1, RA 1, RCODE 3
    assert.deepEqual(parseDnsMessage(r, 0, r.length),
      { id: 0xabcd, is_response: true, opcode: 0, rcode: 3, qdcount: 1, qname: 'www.example.com', qtype: 1 });
  });

  test('the root name and a message without question', () => {
    const root = hex(`00 07  00 00  00 01  00 00 00 00 00 00  00  00 02 00 01`); // ". NS"
    assert.deepEqual(parseDnsMessage(root, 0, root.length),
      { id: 7, is_response: false, opcode: 0, rcode: 0, qdcount: 1, qname: '.', qtype: 2 });
    const none = hex(`00 08  80 00  00 00  00 00 00 00 00 00`);
    assert.deepEqual(parseDnsMessage(none, 0, none.length),
      { id: 8, is_response: true, opcode: 0, rcode: 0, qdcount: 0, qname: '', qtype: 0 });
  });

  test('rejects: shorter than a header, a truncated name, a pointer in the question, opcode 3, no room for qtype', () => {
    const header = '12 34  01 00  00 01  00 00 00 00 00 00';
    assert.equal(parseDnsMessage(hex('12 34 01 00 00 01 00 00 00 00 00'), 0, 11), null);
    // label length 7 but only "exa" follows
    const cut = hex(`${header}  03 77 77 77  07 65 78 61`);
    assert.equal(parseDnsMessage(cut, 0, cut.length), null);
    // the name given as a compression pointer (c0 0c): not expected in a question
    const ptr = hex(`${header}  c0 0c  00 01 00 01`);
    assert.equal(parseDnsMessage(ptr, 0, ptr.length), null);
    // opcode 3 is unassigned (RFC 6895 §2.2): flags 0x1800
    const op3 = hex(`12 34  18 00  00 01  00 00 00 00 00 00  00  00 01 00 01`);
    assert.equal(parseDnsMessage(op3, 0, op3.length), null);
    // the name ends but QTYPE/QCLASS do not fit
    const noType = hex(`${header}  00  00 01`);
    assert.equal(parseDnsMessage(noType, 0, noType.length), null);
    // the same bytes as a whole query are fine (control)
    const whole = hex(`${header}  00  00 01 00 01`);
    assert.notEqual(parseDnsMessage(whole, 0, whole.length), null);
    // a length given but the buffer is shorter: only [off, off+len) counts
    assert.equal(parseDnsMessage(whole, 0, whole.length - 1), null);
  });
});

describe('DNS over UDP through the pipeline', () => {
  /** client 10.0.0.1:53000 ↔ server 10.0.0.2:53 */
  const q = (p: Uint8Array, cport = 53000, sport = 53) => udpFrame(C, cport, S, sport, p);
  const a = (p: Uint8Array, cport = 53000, sport = 53) => udpFrame(S, sport, C, cport, p);

  test('one query, one answer: the whole record', () => {
    // query: 12 + "www.example.com" 17 + 4 = 33 bytes; answer: 33 + record 2+2+2+4+2+4 = 49
    const { transactions, connections } = new Script()
      .at(1_000_000, q(query(0x1234, 'www.example.com')))
      .at(1_250_000, a(answer(0x1234, 'www.example.com')))
      .run();
    assert.equal(connections.length, 0); // UDP: no connection record
    assert.deepEqual(transactions, [{
      type: 'transaction',
      protocol: 'dns',
      signature: 'A',
      subject: 'A www.example.com',
      status: 0,
      outcome: 'ok',
      notes: [],
      transport: 'udp',
      client: '10.0.0.1',
      client_port: 53000,
      server: '10.0.0.2',
      server_port: 53,
      req_first: iso(1_000_000),
      req_last: iso(1_000_000),
      rsp_first: iso(1_250_000),
      rsp_last: iso(1_250_000),
      rsp_acked: null, // no ACKs over UDP
      request_ns: 0,
      ttfr_ns: 250_000, // 1 250 000 − 1 000 000
      ttlr_ns: 250_000,
      ttla_ns: null,
      edt_ns: null, // needs rtt_client, unknown over UDP
      rtt_ns: null,
      rtt_server_ns: null,
      rtt_client_ns: null,
      rtt_source: null,
      request_bytes: 33,
      response_bytes: 49,
      client_acks: 0,
      bytes_acked: 0,
      server_pkts: 1,
      server_pkt_bytes_avg: 49,
      server_pkt_bytes_max: 49,
      client_mss: null,
      server_mss: null,
      client_win_min: null,
      client_win_last: null,
      server_win_min: null,
      server_win_last: null,
      client_retransmits: 0,
      server_retransmits: 0,
      client_out_of_order: 0,
      server_out_of_order: 0,
      client_lost_bytes: 0,
      server_lost_bytes: 0,
      zero_window_events: 0,
      request_retransmits: 0,
    }]);
  });

  test('a retransmitted query (same id): counted, timing from the second copy (tshark dns.time)', () => {
    const { transactions, statistics } = new Script()
      .at(1_000_000, q(query(0x1111, 'www.example.com')))
      .at(2_000_000, q(query(0x1111, 'www.example.com')))
      .at(2_100_000, a(answer(0x1111, 'www.example.com')))
      .run();
    assert.equal(transactions.length, 1);
    assert.deepEqual(pick(transactions[0]!, ['request_retransmits', 'req_first', 'req_last', 'request_ns', 'ttfr_ns', 'request_bytes', 'response_bytes', 'outcome']), {
      request_retransmits: 1,
      req_first: iso(2_000_000),
      req_last: iso(2_000_000),
      request_ns: 0,
      ttfr_ns: 100_000, // 2 100 000 − 2 000 000
      request_bytes: 33, // one copy
      response_bytes: 49,
      outcome: 'ok',
    });
    assert.equal(statistics.anomalies.dns_query_retransmit, 1);
  });

  test('two outstanding queries answered in reverse order are matched by id', () => {
    // "a.example" = 1+1 + 1+7 + 1 = 11 bytes of name: query 27, answer 43
    const { transactions } = new Script()
      .at(1_000_000, q(query(1, 'a.example')))
      .at(1_100_000, q(query(2, 'b.example', 28)))
      .at(1_300_000, a(answer(2, 'b.example', 28))) // 27 + 2+2+2+4+2+16 = 55
      .at(1_500_000, a(answer(1, 'a.example')))
      .run();
    const keys: (keyof TransactionRecord)[] = ['subject', 'req_first', 'rsp_first', 'ttfr_ns', 'request_bytes', 'response_bytes', 'outcome'];
    assert.deepEqual(transactions.map((t) => pick(t, keys)).sort((x, y) => x.subject!.localeCompare(y.subject!)), [
      { subject: 'A a.example', req_first: iso(1_000_000), rsp_first: iso(1_500_000), ttfr_ns: 500_000, request_bytes: 27, response_bytes: 43, outcome: 'ok' },
      { subject: 'AAAA b.example', req_first: iso(1_100_000), rsp_first: iso(1_300_000), ttfr_ns: 200_000, request_bytes: 27, response_bytes: 55, outcome: 'ok' },
    ]);
  });

  test('an answer with rcode 3 (NXDOMAIN): status 3, outcome error', () => {
    const { transactions } = new Script()
      .at(1_000_000, q(query(9, 'nx.example')))
      .at(1_400_000, a(answer(9, 'nx.example', 1, 3)))
      .run();
    assert.deepEqual(transactions.map((t) => pick(t, ['subject', 'status', 'outcome', 'ttfr_ns', 'response_bytes'])),
      [{ subject: 'A nx.example', status: 3, outcome: 'error', ttfr_ns: 400_000, response_bytes: 28 }]); // 12 + 12 + 4
  });

  test('a duplicate answer is an unmatched response, and changes nothing of the transaction', () => {
    const { transactions, statistics } = new Script()
      .at(1_000_000, q(query(5, 'www.example.com')))
      .at(1_200_000, a(answer(5, 'www.example.com')))
      .at(1_300_000, a(answer(5, 'www.example.com')))
      .run();
    assert.deepEqual(transactions.map((t) => pick(t, ['rsp_first', 'rsp_last', 'ttfr_ns', 'response_bytes', 'server_pkts'])),
      [{ rsp_first: iso(1_200_000), rsp_last: iso(1_200_000), ttfr_ns: 200_000, response_bytes: 49, server_pkts: 1 }]);
    assert.equal(statistics.anomalies.dns_unmatched_response, 1);
  });

  test('a query never answered times out at the end of the capture', () => {
    const { transactions } = new Script().at(1_000_000, q(query(3, 'www.example.com'))).run();
    assert.deepEqual(transactions.map((t) => pick(t, ['subject', 'outcome', 'status', 'rsp_first', 'ttfr_ns', 'notes'])),
      [{ subject: 'A www.example.com', outcome: 'timeout', status: null, rsp_first: null, ttfr_ns: null, notes: ['no_response_before_capture_end'] }]);
  });

  test('DNS on port 5353 and on a random high port is recognised by its payload', () => {
    const { transactions } = new Script()
      .at(1_000_000, q(query(1, 'www.example.com'), 40000, 5353))
      .at(1_100_000, a(answer(1, 'www.example.com'), 40000, 5353))
      .at(2_000_000, q(query(2, 'www.example.com'), 45000, 31337))
      .at(2_300_000, a(answer(2, 'www.example.com'), 45000, 31337))
      .run();
    assert.deepEqual(transactions.map((t) => pick(t, ['protocol', 'client_port', 'server_port', 'signature', 'ttfr_ns'])), [
      { protocol: 'dns', client_port: 40000, server_port: 5353, signature: 'A', ttfr_ns: 100_000 },
      { protocol: 'dns', client_port: 45000, server_port: 31337, signature: 'A', ttfr_ns: 300_000 },
    ]);
  });
});

describe('DNS over TCP through the pipeline (RFC 1035 §4.2.2 length prefix)', () => {
  /** SYN, SYN/ACK +100 000, ACK +130 000 */
  function handshake(sc: Script, c: TcpConn, t: number): void {
    sc.at(t, c.syn({ mss: 1460 }));
    sc.at(t + 100_000, c.synAck({ mss: 1460 }));
    sc.at(t + 130_000, c.ack('c'));
  }
  const prefixed = (m: Uint8Array) => concat(new Uint8Array([m.length >> 8, m.length & 0xff]), m);

  test('two queries on one connection; the second\'s prefix split across segments, its answer across two segments', () => {
    const sc = new Script();
    const c = new TcpConn(C, 40000, S, 53);
    handshake(sc, c, 1_000_000);
    sc.at(2_000_000, c.send('c', prefixed(query(0x0101, 'www.example.com')))); // 2 + 33 = 35
    sc.at(2_400_000, c.send('s', prefixed(answer(0x0101, 'www.example.com')))); // 2 + 49 = 51
    sc.at(2_430_000, c.ack('c'));
    const q2 = prefixed(query(0x0202, 'www.example.org', 28)); // 35 bytes
    sc.at(3_000_000, c.send('c', q2.slice(0, 1))); // first byte of the prefix
    sc.at(3_200_000, c.send('c', q2.slice(1))); // second byte + the 33-byte message
    const a2 = prefixed(answer(0x0202, 'www.example.org', 28)); // 2 + 33 + 28 = 63
    sc.at(3_700_000, c.send('s', a2.slice(0, 42))); // prefix + header, question and the start of the record
    sc.at(3_800_000, c.send('s', a2.slice(42))); // the last 21 bytes
    sc.at(3_830_000, c.ack('c'));
    const { transactions } = sc.run();
    const keys: (keyof TransactionRecord)[] = ['protocol', 'transport', 'signature', 'subject', 'status', 'outcome', 'req_last', 'rsp_first', 'rsp_last',
      'rsp_acked', 'ttfr_ns', 'ttlr_ns', 'ttla_ns', 'request_bytes', 'response_bytes', 'server_pkts', 'rtt_ns'];
    assert.deepEqual(transactions.map((t) => pick(t, keys)), [
      { protocol: 'dns', transport: 'tcp', signature: 'A', subject: 'A www.example.com', status: 0, outcome: 'ok',
        req_last: iso(2_000_000), rsp_first: iso(2_400_000), rsp_last: iso(2_400_000), rsp_acked: iso(2_430_000),
        ttfr_ns: 400_000, ttlr_ns: 400_000, ttla_ns: 430_000, request_bytes: 35, response_bytes: 51, server_pkts: 1, rtt_ns: 130_000 },
      { protocol: 'dns', transport: 'tcp', signature: 'AAAA', subject: 'AAAA www.example.org', status: 0, outcome: 'ok',
        req_last: iso(3_200_000), rsp_first: iso(3_700_000), rsp_last: iso(3_800_000), rsp_acked: iso(3_830_000),
        ttfr_ns: 500_000, ttlr_ns: 600_000, ttla_ns: 630_000, request_bytes: 35, response_bytes: 63, server_pkts: 2, rtt_ns: 130_000 },
    ]);
  });

  test('a query whose prefix byte comes alone: req_first is that packet (it carries request bytes)', () => {
    const sc = new Script();
    const c = new TcpConn(C, 40000, S, 53);
    handshake(sc, c, 1_000_000);
    sc.at(2_000_000, c.send('c', prefixed(query(0x0101, 'www.example.com'))));
    sc.at(2_400_000, c.send('s', prefixed(answer(0x0101, 'www.example.com'))));
    sc.at(2_430_000, c.ack('c'));
    const q2 = prefixed(query(0x0202, 'www.example.org'));
    sc.at(3_000_000, c.send('c', q2.slice(0, 1)));
    sc.at(3_200_000, c.send('c', q2.slice(1)));
    sc.at(3_700_000, c.send('s', prefixed(answer(0x0202, 'www.example.org'))));
    sc.at(3_730_000, c.ack('c'));
    const { transactions } = sc.run();
    assert.equal(transactions.length, 2);
    // request_bytes counts the prefix (35 = 2 + 33), so the packet of its first byte is req_first
    assert.deepEqual(pick(transactions[1]!, ['request_bytes', 'req_first', 'req_last', 'request_ns', 'ttfr_ns']),
      { request_bytes: 35, req_first: iso(3_000_000), req_last: iso(3_200_000), request_ns: 200_000, ttfr_ns: 500_000 });
  });

  test('a connection to port 53 whose first segment is the 2-byte length prefix alone is still DNS', () => {
    // Resolvers that write the prefix and the message separately send exactly this.
    const sc = new Script();
    const c = new TcpConn(C, 40000, S, 53);
    handshake(sc, c, 1_000_000);
    const q1 = prefixed(query(0x0303, 'www.example.com'));
    sc.at(2_000_000, c.send('c', q1.slice(0, 2)));
    sc.at(2_100_000, c.send('c', q1.slice(2)));
    sc.at(2_600_000, c.send('s', prefixed(answer(0x0303, 'www.example.com'))));
    sc.at(2_630_000, c.ack('c'));
    const { transactions } = sc.run();
    assert.deepEqual(transactions.map((t) => pick(t, ['protocol', 'signature', 'subject', 'req_last', 'ttfr_ns', 'request_bytes', 'response_bytes'])), [
      { protocol: 'dns', signature: 'A', subject: 'A www.example.com', req_last: iso(2_100_000), ttfr_ns: 500_000, request_bytes: 35, response_bytes: 51 },
    ]);
  });
});
