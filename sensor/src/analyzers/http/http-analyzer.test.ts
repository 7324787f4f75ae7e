/**
 * HTTP/1.x scenarios through the whole pipeline (decode → flows → TCP → analyzer →
 * records), on frames built by hand. Every expected value is worked out in the comments
 * from the timestamps chosen here and the definitions in DESIGN.md / docs/records.md /
 * RFC 9112; none was copied from a run.
 *
 * Times are nanoseconds after T0 (1 700 000 000 s). Client 10.0.0.1:40000, server
 * 10.0.0.2:80 unless a test says otherwise.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Script, TcpConn, iso, RST } from '../../../../test/support/frames.ts';
import type { TransactionRecord } from '../../output/records.ts';

const C = '10.0.0.1';
const S = '10.0.0.2';

function conn(cport = 40000, sport = 80): TcpConn {
  return new TcpConn(C, cport, S, sport);
}

/**
 * SYN at t (client MSS 1460, wscale 7, SACK-permitted), SYN/ACK at t + 100 000 (server MSS
 * 1400, wscale 8), ACK at t + 130 000: rtt_server 100 000, rtt_client 30 000, rtt 130 000.
 */
function handshake(sc: Script, c: TcpConn, t: number): void {
  sc.at(t, c.syn({ mss: 1460, wscale: 7, sack_permitted: true, window: 64240 }));
  sc.at(t + 100_000, c.synAck({ mss: 1400, wscale: 8, sack_permitted: true, window: 65160 }));
  sc.at(t + 130_000, c.ack('c'));
}

/** 17 + 9 + 2 = 28 bytes */
const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: h\r\n\r\n`;
/** "HTTP/1.1 200 OK\r\n" 17 + "Content-Length: 10\r\n" 20 + "\r\n" 2 + body 10 = 49 bytes */
const OK_10 = 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789';
/** "HTTP/1.1 404 Not Found\r\n" 24 + "Content-Length: 3\r\n" 19 + 2 + 3 = 48 bytes */
const NOT_FOUND_3 = 'HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop';
/** "HTTP/1.1 500 Internal Server Error\r\n" 36 + 19 + 2 = 57 bytes */
const ERROR_0 = 'HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n';
/** 17 + "Content-Length: 0\r\n" 19 + 2 = 38 bytes */
const OK_0 = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n';

function pick<K extends keyof TransactionRecord>(t: TransactionRecord, keys: K[]): Pick<TransactionRecord, K> {
  return Object.fromEntries(keys.map((k) => [k, t[k]])) as Pick<TransactionRecord, K>;
}

describe('HTTP through the pipeline', () => {
  test('one GET, a 200 with Content-Length over 3 segments: every metric of the record', () => {
    const sc = new Script();
    const c = conn();
    handshake(sc, c, 1_000_000); // SYN 1 000 000, SYN/ACK 1 100 000, ACK 1 130 000
    // "GET /index.html?x=1 HTTP/1.1\r\n" 30 + "Host: example.com\r\n" 19 + "\r\n" 2 = 51 bytes
    sc.at(2_000_000, c.send('c', 'GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n'));
    sc.at(2_050_000, c.ack('s', { window: 512 })); // 512 << 8 = 131 072
    // head "HTTP/1.1 200 OK\r\n" 17 + "Content-Length: 410\r\n" 21 + 2 = 40; + 410 body = 450
    const rsp = 'HTTP/1.1 200 OK\r\nContent-Length: 410\r\n\r\n' + 'b'.repeat(410);
    sc.at(12_000_000, c.send('s', rsp.slice(0, 150), { window: 512 })); // 150 bytes, 131 072
    sc.at(12_200_000, c.send('s', rsp.slice(150, 350), { window: 500 })); // 200 bytes, 500 << 8 = 128 000
    sc.at(12_230_000, c.ack('c', { window: 501 })); // covers 350 of 450; 501 << 7 = 64 128
    sc.at(12_400_000, c.send('s', rsp.slice(350), { window: 510 })); // 100 bytes, 510 << 8 = 130 560
    sc.at(12_430_000, c.ack('c', { window: 502 })); // covers all 450; 502 << 7 = 64 256
    sc.at(20_000_000, c.fin('c'));
    sc.at(20_050_000, c.fin('s'));
    sc.at(20_080_000, c.ack('c'));
    const { transactions, connections, statistics } = sc.run();

    assert.equal(transactions.length, 1);
    assert.deepEqual(transactions[0], {
      type: 'transaction',
      protocol: 'http',
      signature: 'GET',
      subject: 'GET /index.html', // no query string
      status: 200,
      outcome: 'ok',
      notes: [],
      transport: 'tcp',
      client: '10.0.0.1',
      client_port: 40000,
      server: '10.0.0.2',
      server_port: 80,
      req_first: iso(2_000_000),
      req_last: iso(2_000_000),
      rsp_first: iso(12_000_000),
      rsp_last: iso(12_400_000),
      rsp_acked: iso(12_430_000),
      request_ns: 0,
      ttfr_ns: 10_000_000, // 12 000 000 − 2 000 000
      ttlr_ns: 10_400_000, // 12 400 000 − 2 000 000
      ttla_ns: 10_430_000, // 12 430 000 − 2 000 000
      edt_ns: 10_415_000, // ttlr + rtt_client / 2 = 10 400 000 + 15 000
      rtt_ns: 130_000,
      rtt_server_ns: 100_000,
      rtt_client_ns: 30_000,
      rtt_source: 'handshake',
      request_bytes: 51,
      response_bytes: 450,
      client_acks: 2, // 12 230 000 (350 bytes) and 12 430 000 (the last 100)
      bytes_acked: 450,
      server_pkts: 3,
      server_pkt_bytes_avg: 150, // (150 + 200 + 100) / 3
      server_pkt_bytes_max: 200,
      client_mss: 1460,
      server_mss: 1400,
      client_win_min: 64_128,
      client_win_last: 64_256,
      server_win_min: 128_000,
      server_win_last: 130_560,
      client_retransmits: 0,
      server_retransmits: 0,
      client_out_of_order: 0,
      server_out_of_order: 0,
      client_lost_bytes: 0,
      server_lost_bytes: 0,
      zero_window_events: 0,
      request_retransmits: 0,
    });
    assert.deepEqual(connections, [{
      type: 'connection',
      protocol: 'tcp',
      signature: 'TCP_CONNECT',
      outcome: 'closed',
      transport: 'tcp',
      client: '10.0.0.1',
      client_port: 40000,
      server: '10.0.0.2',
      server_port: 80,
      start: iso(1_000_000),
      end: iso(20_050_000), // the FIN that closed it; the last ACK comes after the close
      syn: iso(1_000_000),
      syn_ack: iso(1_100_000),
      ack: iso(1_130_000),
      rtt_server_ns: 100_000,
      rtt_client_ns: 30_000,
      rtt_ns: 130_000,
      syn_retransmits: 0,
      syn_ack_retransmits: 0,
      client_mss: 1460,
      server_mss: 1400,
      client_wscale: 7,
      server_wscale: 8,
      client_data_pkts: 1,
      server_data_pkts: 3,
      picked_up_mid_stream: false,
    }]);
    assert.deepEqual(statistics.anomalies, {});
  });

  test('window scaling applies only when both SYN and SYN/ACK offer it (RFC 7323 §2.2)', () => {
    const sc = new Script();
    const c = conn();
    sc.at(1_000_000, c.syn({ mss: 1460, wscale: 7 }));
    sc.at(1_100_000, c.synAck({ mss: 1400 })); // no window scale option: no scaling either way
    sc.at(1_130_000, c.ack('c'));
    sc.at(2_000_000, c.send('c', get('/a')));
    sc.at(2_500_000, c.send('s', OK_10, { window: 512 }));
    sc.at(2_530_000, c.ack('c', { window: 502 }));
    const { transactions, connections } = sc.run();
    assert.deepEqual(pick(transactions[0]!, ['client_win_min', 'client_win_last', 'server_win_min', 'server_win_last']),
      { client_win_min: 502, client_win_last: 502, server_win_min: 512, server_win_last: 512 });
    assert.deepEqual([connections[0]!.client_wscale, connections[0]!.server_wscale], [7, null]);
  });

  test('a zero window advertised by the client during the response is one event', () => {
    const sc = new Script();
    const c = conn();
    handshake(sc, c, 1_000_000);
    sc.at(2_000_000, c.send('c', get('/a')));
    sc.at(2_500_000, c.send('s', OK_10.slice(0, 40)));
    sc.at(2_530_000, c.ack('c', { window: 0 })); // receive buffer full
    sc.at(2_600_000, c.ack('c', { window: 0 })); // still zero: the same event
    sc.at(2_700_000, c.ack('c', { window: 100 })); // open again: 100 << 7 = 12 800
    sc.at(2_800_000, c.send('s', OK_10.slice(40)));
    sc.at(2_830_000, c.ack('c', { window: 502 }));
    const { transactions } = sc.run();
    assert.deepEqual(pick(transactions[0]!, ['zero_window_events', 'client_win_min', 'client_win_last', 'ttla_ns']),
      { zero_window_events: 1, client_win_min: 0, client_win_last: 64_256, ttla_ns: 830_000 });
  });

  test('a request in two segments: request_ns is req_last − req_first', () => {
    const sc = new Script();
    const c = conn();
    handshake(sc, c, 1_000_000);
    // "POST /submit HTTP/1.1\r\n" 23 + "Host: h\r\n" 9 + "Content-Length: 5\r\n" 19 + 2 = 53, then "hello" 5
    sc.at(2_000_000, c.send('c', 'POST /submit HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n'));
    sc.at(2_300_000, c.send('c', 'hello'));
    // "HTTP/1.1 201 Created\r\n" 22 + "Content-Length: 0\r\n" 19 + 2 = 43
    sc.at(7_300_000, c.send('s', 'HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n'));
    sc.at(7_330_000, c.ack('c'));
    const { transactions } = sc.run();
    assert.equal(transactions.length, 1);
    assert.deepEqual(pick(transactions[0]!, ['signature', 'subject', 'status', 'outcome', 'req_first', 'req_last', 'request_ns',
      'ttfr_ns', 'ttlr_ns', 'ttla_ns', 'request_bytes', 'response_bytes', 'client_win_min', 'client_win_last']), {
      signature: 'POST',
      subject: 'POST /submit',
      status: 201,
      outcome: 'ok',
      req_first: iso(2_000_000),
      req_last: iso(2_300_000),
      request_ns: 300_000, // 2 300 000 − 2 000 000
      ttfr_ns: 5_000_000, // 7 300 000 − 2 300 000
      ttlr_ns: 5_000_000,
      ttla_ns: 5_030_000, // 7 330 000 − 2 300 000
      request_bytes: 58, // 53 + 5
      response_bytes: 43,
      client_win_min: 64_256, // 502 << 7
      client_win_last: 64_256,
    });
  });

  test('keep-alive: two requests in sequence on one connection are two transactions, in order', () => {
    const sc = new Script();
    const c = conn();
    handshake(sc, c, 1_000_000);
    sc.at(2_000_000, c.send('c', get('/a')));
    sc.at(3_000_000, c.send('s', OK_10));
    sc.at(3_030_000, c.ack('c'));
    sc.at(5_000_000, c.send('c', get('/b')));
    sc.at(5_500_000, c.send('s', NOT_FOUND_3));
    sc.at(5_530_000, c.ack('c'));
    const { transactions } = sc.run();
    const keys: (keyof TransactionRecord)[] = ['subject', 'status', 'outcome', 'req_first', 'rsp_first', 'rsp_acked', 'ttfr_ns', 'ttla_ns', 'request_bytes', 'response_bytes', 'bytes_acked'];
    assert.deepEqual(transactions.map((t) => pick(t, keys)), [
      { subject: 'GET /a', status: 200, outcome: 'ok', req_first: iso(2_000_000), rsp_first: iso(3_000_000), rsp_acked: iso(3_030_000),
        ttfr_ns: 1_000_000, ttla_ns: 1_030_000, request_bytes: 28, response_bytes: 49, bytes_acked: 49 },
      // a 404 is not a server error: outcome ok
      { subject: 'GET /b', status: 404, outcome: 'ok', req_first: iso(5_000_000), rsp_first: iso(5_500_000), rsp_acked: iso(5_530_000),
        ttfr_ns: 500_000, ttla_ns: 530_000, request_bytes: 28, response_bytes: 48, bytes_acked: 48 },
    ]);
  });

  test('pipelining: three requests in one segment, answered first-in first-out', () => {
    const sc = new Script();
    const c = conn();
    handshake(sc, c, 1_000_000);
    sc.at(2_000_000, c.send('c', get('/a') + get('/b') + get('/c'))); // 3 × 28 = 84 bytes
    // S1: the first 44 bytes of the 200 (39 head + 5 body); S2: its last 5 bytes + the whole 404 (5 + 48 = 53); S3: the 500 (57)
    sc.at(3_000_000, c.send('s', OK_10.slice(0, 44)));
    sc.at(3_100_000, c.send('s', OK_10.slice(44) + NOT_FOUND_3));
    sc.at(3_130_000, c.ack('c')); // covers 44 + 53 = 97 = 49 + 48: the 200 and the 404
    sc.at(3_200_000, c.send('s', ERROR_0));
    sc.at(3_230_000, c.ack('c'));
    const { transactions } = sc.run();
    const keys: (keyof TransactionRecord)[] = ['subject', 'status', 'outcome', 'req_first', 'req_last', 'rsp_first', 'rsp_last', 'rsp_acked',
      'ttfr_ns', 'ttlr_ns', 'ttla_ns', 'request_bytes', 'response_bytes', 'server_pkts', 'server_pkt_bytes_max', 'client_acks', 'bytes_acked'];
    assert.deepEqual(transactions.map((t) => pick(t, keys)), [
      { subject: 'GET /a', status: 200, outcome: 'ok', req_first: iso(2_000_000), req_last: iso(2_000_000),
        rsp_first: iso(3_000_000), rsp_last: iso(3_100_000), rsp_acked: iso(3_130_000),
        ttfr_ns: 1_000_000, ttlr_ns: 1_100_000, ttla_ns: 1_130_000, request_bytes: 28, response_bytes: 49,
        server_pkts: 2, server_pkt_bytes_max: 53, client_acks: 1, bytes_acked: 49 },
      { subject: 'GET /b', status: 404, outcome: 'ok', req_first: iso(2_000_000), req_last: iso(2_000_000),
        rsp_first: iso(3_100_000), rsp_last: iso(3_100_000), rsp_acked: iso(3_130_000),
        ttfr_ns: 1_100_000, ttlr_ns: 1_100_000, ttla_ns: 1_130_000, request_bytes: 28, response_bytes: 48,
        server_pkts: 1, server_pkt_bytes_max: 53, client_acks: 1, bytes_acked: 48 },
      { subject: 'GET /c', status: 500, outcome: 'error', req_first: iso(2_000_000), req_last: iso(2_000_000),
        rsp_first: iso(3_200_000), rsp_last: iso(3_200_000), rsp_acked: iso(3_230_000),
        ttfr_ns: 1_200_000, ttlr_ns: 1_200_000, ttla_ns: 1_230_000, request_bytes: 28, response_bytes: 57,
        server_pkts: 1, server_pkt_bytes_max: 57, client_acks: 1, bytes_acked: 57 },
    ]);
  });

  test('chunked response: a chunk-size line split between segments, trailer fields, then the next request', () => {
    const sc = new Script();
    const c = conn();
    handshake(sc, c, 1_000_000);
    sc.at(2_000_000, c.send('c', get('/chunked')));
    // head: 17 + "Transfer-Encoding: chunked\r\n" 28 + 2 = 47
    // S1 = head + "5\r\nhello\r\n1" (11) = 58; the size line "10\r\n" (16 bytes follow) is cut after "1"
    // S2 = "0\r\n" 3 + 16 data + "\r\n" 2 + "0\r\n" 3 + "X-Checksum: 42\r\n" 16 + "\r\n" 2 = 42
    sc.at(3_000_000, c.send('s', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1'));
    sc.at(3_200_000, c.send('s', '0\r\n0123456789abcdef\r\n0\r\nX-Checksum: 42\r\n\r\n'));
    sc.at(3_230_000, c.ack('c'));
    sc.at(4_000_000, c.send('c', get('/next')));
    sc.at(4_100_000, c.send('s', OK_0));
    sc.at(4_130_000, c.ack('c'));
    const { transactions, statistics } = sc.run();
    const keys: (keyof TransactionRecord)[] = ['subject', 'status', 'outcome', 'rsp_first', 'rsp_last', 'ttfr_ns', 'ttlr_ns', 'response_bytes', 'server_pkts', 'bytes_acked'];
    assert.deepEqual(transactions.map((t) => pick(t, keys)), [
      { subject: 'GET /chunked', status: 200, outcome: 'ok', rsp_first: iso(3_000_000), rsp_last: iso(3_200_000),
        ttfr_ns: 1_000_000, ttlr_ns: 1_200_000, response_bytes: 100, server_pkts: 2, bytes_acked: 100 },
      { subject: 'GET /next', status: 200, outcome: 'ok', rsp_first: iso(4_100_000), rsp_last: iso(4_100_000),
        ttfr_ns: 100_000, ttlr_ns: 100_000, response_bytes: 38, server_pkts: 1, bytes_acked: 38 },
    ]);
    assert.deepEqual(statistics.anomalies, {});
  });

  test('HEAD with Content-Length: 1000, 204 and 304 have no body: the next responses frame right', () => {
    const sc = new Script();
    const c = conn();
    handshake(sc, c, 1_000_000);
    // "HEAD / HTTP/1.1\r\n" 17 + 9 + 2 = 28 → "HTTP/1.1 200 OK\r\n" 17 + "Content-Length: 1000\r\n" 22 + 2 = 41, no body
    sc.at(2_000_000, c.send('c', 'HEAD / HTTP/1.1\r\nHost: h\r\n\r\n'));
    sc.at(2_100_000, c.send('s', 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n'));
    sc.at(2_130_000, c.ack('c'));
    // "HTTP/1.1 204 No Content\r\n" 25 + 2 = 27
    sc.at(3_000_000, c.send('c', get('/empty')));
    sc.at(3_200_000, c.send('s', 'HTTP/1.1 204 No Content\r\n\r\n'));
    sc.at(3_230_000, c.ack('c'));
    // "HTTP/1.1 304 Not Modified\r\n" 27 + 2 = 29
    sc.at(4_000_000, c.send('c', get('/cached')));
    sc.at(4_300_000, c.send('s', 'HTTP/1.1 304 Not Modified\r\n\r\n'));
    sc.at(4_330_000, c.ack('c'));
    // 17 + "Content-Length: 5\r\n" 19 + 2 + 5 = 43
    sc.at(5_000_000, c.send('c', get('/last')));
    sc.at(5_400_000, c.send('s', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'));
    sc.at(5_430_000, c.ack('c'));
    const { transactions, statistics } = sc.run();
    const keys: (keyof TransactionRecord)[] = ['signature', 'subject', 'status', 'outcome', 'ttfr_ns', 'ttla_ns', 'response_bytes'];
    assert.deepEqual(transactions.map((t) => pick(t, keys)), [
      { signature: 'HEAD', subject: 'HEAD /', status: 200, outcome: 'ok', ttfr_ns: 100_000, ttla_ns: 130_000, response_bytes: 41 },
      { signature: 'GET', subject: 'GET /empty', status: 204, outcome: 'ok', ttfr_ns: 200_000, ttla_ns: 230_000, response_bytes: 27 },
      { signature: 'GET', subject: 'GET /cached', status: 304, outcome: 'ok', ttfr_ns: 300_000, ttla_ns: 330_000, response_bytes: 29 },
      { signature: 'GET', subject: 'GET /last', status: 200, outcome: 'ok', ttfr_ns: 400_000, ttla_ns: 430_000, response_bytes: 43 },
    ]);
    assert.deepEqual(statistics.anomalies, {});
  });

  test('Expect: 100-continue: one transaction; the 100 is interim, the 200 is the response', () => {
    const sc = new Script();
    const c = conn();
    handshake(sc, c, 1_000_000);
    // "POST /upload HTTP/1.1\r\n" 23 + "Host: h\r\n" 9 + "Expect: 100-continue\r\n" 22 + "Content-Length: 11\r\n" 20 + 2 = 76
    sc.at(2_000_000, c.send('c', 'POST /upload HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n'));
    sc.at(2_500_000, c.send('s', 'HTTP/1.1 100 Continue\r\n\r\n')); // 25 bytes, interim
    sc.at(2_600_000, c.send('c', 'hello world')); // 11 bytes of body, ACKs the 100
    sc.at(4_600_000, c.send('s', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')); // 17 + 19 + 2 + 2 = 40
    sc.at(4_630_000, c.ack('c'));
    const { transactions } = sc.run();
    assert.equal(transactions.length, 1);
    const t = transactions[0]!;
    assert.deepEqual(pick(t, ['subject', 'status', 'outcome', 'req_first', 'req_last', 'rsp_first', 'rsp_last', 'rsp_acked', 'request_ns',
      'ttfr_ns', 'ttlr_ns', 'ttla_ns', 'request_bytes', 'response_bytes', 'server_pkts', 'bytes_acked']), {
      subject: 'POST /upload',
      status: 200,
      outcome: 'ok',
      req_first: iso(2_000_000),
      req_last: iso(2_600_000), // the body's packet
      rsp_first: iso(4_600_000), // the 200's packet, not the 100's
      rsp_last: iso(4_600_000),
      rsp_acked: iso(4_630_000),
      request_ns: 600_000,
      ttfr_ns: 2_000_000, // 4 600 000 − 2 600 000
      ttlr_ns: 2_000_000,
      ttla_ns: 2_030_000,
      request_bytes: 87, // 76 + 11
      response_bytes: 40, // the final response only
      server_pkts: 1,
      bytes_acked: 40,
    });
    assert.ok(t.notes.includes('interim_100'), `notes: ${t.notes}`);
    assert.ok(t.notes.includes('expect_100_continue'), `notes: ${t.notes}`);
  });

  test('HTTP/1.0 response without Content-Length, ended by the server\'s FIN: ttlr from the last data packet', () => {
    const sc = new Script();
    const c = conn();
    handshake(sc, c, 1_000_000);
    sc.at(2_000_000, c.send('c', 'GET / HTTP/1.0\r\n\r\n')); // 18 bytes
    // head "HTTP/1.0 200 OK\r\n" 17 + "Content-Type: text/plain\r\n" 26 + 2 = 45; body 11 + 11
    sc.at(3_000_000, c.send('s', 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst part '));
    sc.at(3_400_000, c.send('s', 'second part'));
    sc.at(3_430_000, c.ack('c'));
    sc.at(9_000_000, c.fin('s'));
    sc.at(9_030_000, c.fin('c'));
    sc.at(9_060_000, c.ack('s'));
    const { transactions, connections } = sc.run();
    assert.equal(transactions.length, 1);
    const t = transactions[0]!;
    assert.deepEqual(pick(t, ['status', 'outcome', 'notes', 'rsp_first', 'rsp_last', 'ttfr_ns', 'ttlr_ns', 'ttla_ns', 'response_bytes', 'server_pkts']), {
      status: 200,
      outcome: 'ok',
      notes: ['body_until_close'],
      rsp_first: iso(3_000_000),
      rsp_last: iso(3_400_000), // not the FIN at 9 000 000
      ttfr_ns: 1_000_000,
      ttlr_ns: 1_400_000,
      ttla_ns: 1_430_000,
      response_bytes: 67, // 45 + 11 + 11
      server_pkts: 2,
    });
    assert.equal(connections[0]!.outcome, 'closed');
  });

  test('HTTP on port 8888 and on port 12345 (no port hint) is recognised by its payload', () => {
    const sc = new Script();
    const a = conn(40000, 8888);
    const b = conn(40001, 12345);
    handshake(sc, a, 1_000_000);
    handshake(sc, b, 1_500_000);
    sc.at(2_000_000, a.send('c', get('/a')));
    sc.at(2_100_000, b.send('c', get('/b')));
    sc.at(2_700_000, a.send('s', OK_0));
    sc.at(2_900_000, b.send('s', NOT_FOUND_3));
    sc.at(2_730_000 + 300_000, a.ack('c'));
    sc.at(2_930_000 + 300_000, b.ack('c'));
    const { transactions } = sc.run();
    const keys: (keyof TransactionRecord)[] = ['protocol', 'signature', 'subject', 'status', 'client_port', 'server_port', 'ttfr_ns'];
    assert.deepEqual(transactions.map((t) => pick(t, keys)), [
      { protocol: 'http', signature: 'GET', subject: 'GET /a', status: 200, client_port: 40000, server_port: 8888, ttfr_ns: 700_000 },
      { protocol: 'http', signature: 'GET', subject: 'GET /b', status: 404, client_port: 40001, server_port: 12345, ttfr_ns: 800_000 },
    ]);
  });

  test('methods of the IANA registry and PURGE by name; any other token method as OTHER, its subject keeping it', () => {
    const sc = new Script();
    const c = conn();
    handshake(sc, c, 1_000_000);
    // four requests in turn on one connection, each answered 200 000 ns after it
    const lines = ['MKCALENDAR /cal/home/ HTTP/1.1', 'PURGE /index.html HTTP/1.1', 'VERSION-CONTROL /repo/file HTTP/1.1', 'X-Refresh.v2 /feed?since=3 HTTP/1.0'];
    lines.forEach((line, i) => {
      const t = 2_000_000 + i * 1_000_000;
      sc.at(t, c.send('c', `${line}\r\nHost: h\r\n\r\n`));
      sc.at(t + 200_000, c.send('s', OK_0));
      sc.at(t + 230_000, c.ack('c'));
    });
    const { transactions, statistics } = sc.run();
    assert.deepEqual(transactions.map((t) => pick(t, ['signature', 'subject', 'status', 'outcome', 'ttfr_ns'])), [
      { signature: 'MKCALENDAR', subject: 'MKCALENDAR /cal/home/', status: 200, outcome: 'ok', ttfr_ns: 200_000 },
      { signature: 'PURGE', subject: 'PURGE /index.html', status: 200, outcome: 'ok', ttfr_ns: 200_000 },
      { signature: 'VERSION-CONTROL', subject: 'VERSION-CONTROL /repo/file', status: 200, outcome: 'ok', ttfr_ns: 200_000 },
      { signature: 'OTHER', subject: 'X-Refresh.v2 /feed', status: 200, outcome: 'ok', ttfr_ns: 200_000 },
    ]);
    assert.equal(statistics.anomalies.http_not_a_request, undefined);
  });

  test('a known method with a version other than HTTP/1.0 or HTTP/1.1 is a malformed request, still answered and timed', () => {
    const sc = new Script();
    const c = conn();
    handshake(sc, c, 1_000_000);
    sc.at(2_000_000, c.send('c', 'GET /x XTTP/1.1\r\nHost: h\r\n\r\n'));
    sc.at(2_200_000, c.send('s', OK_0));
    sc.at(2_230_000, c.ack('c'));
    const { transactions, statistics } = sc.run();
    assert.deepEqual(transactions.map((t) => pick(t, ['signature', 'subject', 'status', 'notes', 'ttfr_ns'])), [
      { signature: 'GET', subject: 'GET /x', status: 200, notes: ['malformed_request'], ttfr_ns: 200_000 },
    ]);
    assert.equal(statistics.anomalies.http_malformed_request, 1);
  });

  test('not requests: the HTTP/2 preface, text without an HTTP/1.x version, a method past 32 bytes, a line cut by the segment', () => {
    const sc = new Script();
    const cases = [
      'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
      'HELLO world\r\n',
      'FETCH /x HTTP/2\r\n\r\n',
      `${'M'.repeat(33)} /x HTTP/1.1\r\n\r\n`,
      'FETCH /x HTTP/1.1',
    ];
    // each on a connection of its own, after a GET answered in full: where a request must start
    cases.forEach((payload, i) => {
      const c = conn(40000 + i);
      const t = 1_000_000 + i * 2_000_000;
      handshake(sc, c, t);
      sc.at(t + 200_000, c.send('c', get(`/${i}`)));
      sc.at(t + 400_000, c.send('s', OK_0));
      sc.at(t + 500_000, c.send('c', payload));
      sc.at(t + 530_000, c.ack('s'));
    });
    const { transactions, statistics } = sc.run();
    assert.deepEqual(transactions.map((t) => `${t.protocol} ${t.subject}`), cases.map((_, i) => `http GET /${i}`));
    assert.equal(statistics.anomalies.http_not_a_request, cases.length);
  });

  test('a response lost to a capture gap: that transaction is partial (response_lost), the next is timed normally', () => {
    const sc = new Script();
    const c = conn();
    handshake(sc, c, 1_000_000);
    sc.at(2_000_000, c.send('c', get('/a')));
    c.send('s', OK_10); // 49 bytes on the wire, not in the capture
    sc.at(3_030_000, c.ack('c')); // the client acknowledges the 49 bytes the capture never saw
    sc.at(5_000_000, c.send('c', get('/b')));
    sc.at(5_500_000, c.send('s', NOT_FOUND_3));
    sc.at(5_530_000, c.ack('c'));
    const { transactions, statistics } = sc.run();
    const keys: (keyof TransactionRecord)[] = ['subject', 'status', 'outcome', 'notes', 'rsp_first', 'ttfr_ns', 'ttla_ns', 'response_bytes', 'server_lost_bytes'];
    assert.deepEqual(transactions.map((t) => pick(t, keys)), [
      { subject: 'GET /a', status: null, outcome: 'partial', notes: ['response_lost'], rsp_first: null, ttfr_ns: null, ttla_ns: null,
        response_bytes: 0, server_lost_bytes: 49 },
      { subject: 'GET /b', status: 404, outcome: 'ok', notes: [], rsp_first: iso(5_500_000), ttfr_ns: 500_000, ttla_ns: 530_000,
        response_bytes: 48, server_lost_bytes: 0 },
    ]);
    assert.equal(statistics.anomalies.gap_server, 1);
  });

  test('a response segment lost to the capture, proven by the client\'s ACK: partial, and rsp_acked is that ACK', () => {
    const sc = new Script();
    const c = conn();
    handshake(sc, c, 1_000_000);
    sc.at(2_000_000, c.send('c', get('/a')));
    const rsp = 'HTTP/1.1 200 OK\r\nContent-Length: 410\r\n\r\n' + 'b'.repeat(410); // 40 + 410 = 450
    sc.at(3_000_000, c.send('s', rsp.slice(0, 150)));
    c.send('s', rsp.slice(150, 350)); // 200 body bytes the capture missed
    sc.at(3_200_000, c.send('s', rsp.slice(350))); // the last 100
    sc.at(3_230_000, c.ack('c')); // covers all 450: the first ACK covering the last response byte
    sc.at(5_000_000, c.send('c', get('/b')));
    sc.at(5_500_000, c.send('s', NOT_FOUND_3));
    sc.at(5_530_000, c.ack('c'));
    const { transactions } = sc.run();
    const by = (path: string) => transactions.find((t) => t.subject === `GET ${path}`)!;
    assert.equal(transactions.length, 2);
    const a = by('/a');
    assert.deepEqual(pick(a, ['status', 'outcome', 'server_lost_bytes', 'rsp_first', 'rsp_last', 'rsp_acked', 'ttlr_ns', 'ttla_ns']), {
      status: 200,
      outcome: 'partial',
      server_lost_bytes: 200,
      rsp_first: iso(3_000_000),
      rsp_last: iso(3_200_000),
      rsp_acked: iso(3_230_000),
      ttlr_ns: 1_200_000, // 3 200 000 − 2 000 000
      ttla_ns: 1_230_000, // 3 230 000 − 2 000 000
    });
    assert.ok(a.notes.includes('gap_in_response'), `notes: ${a.notes}`);
    assert.deepEqual(pick(by('/b'), ['status', 'outcome', 'ttfr_ns', 'ttla_ns', 'server_lost_bytes']),
      { status: 404, outcome: 'ok', ttfr_ns: 500_000, ttla_ns: 530_000, server_lost_bytes: 0 });
  });

  test('a retransmitted response segment is counted, its bytes not counted twice', () => {
    const sc = new Script();
    const c = conn();
    handshake(sc, c, 1_000_000);
    sc.at(2_000_000, c.send('c', get('/a')));
    const s1 = c.send('s', OK_10.slice(0, 30));
    const s2 = c.send('s', OK_10.slice(30)); // 19 bytes
    sc.at(3_000_000, s1);
    sc.at(3_100_000, s2);
    sc.at(3_300_000, s1); // the first segment again, before the client's ACK
    sc.at(3_330_000, c.ack('c'));
    const { transactions, statistics } = sc.run();
    assert.equal(transactions.length, 1);
    assert.deepEqual(pick(transactions[0]!, ['status', 'outcome', 'server_retransmits', 'client_retransmits', 'response_bytes', 'server_pkts',
      'rsp_last', 'ttlr_ns', 'bytes_acked']), {
      status: 200,
      outcome: 'ok',
      server_retransmits: 1,
      client_retransmits: 0,
      response_bytes: 49, // 30 + 19, not 79
      server_pkts: 2,
      rsp_last: iso(3_100_000), // the retransmission carries no new byte
      ttlr_ns: 1_100_000,
      bytes_acked: 49,
    });
    assert.equal(statistics.anomalies.tcp_retransmit_server, 1);
  });

  test('an out-of-order response segment is held and delivered in order', () => {
    const sc = new Script();
    const c = conn();
    handshake(sc, c, 1_000_000);
    sc.at(2_000_000, c.send('c', get('/a')));
    const s1 = c.send('s', OK_10.slice(0, 30)); // 30 bytes: the head (39) is not even complete
    const s2 = c.send('s', OK_10.slice(30)); // 19 bytes
    sc.at(3_000_000, s2); // captured first: ahead of a 30-byte hole
    sc.at(3_100_000, s1); // fills the hole: the response is complete here
    sc.at(3_130_000, c.ack('c'));
    const { transactions } = sc.run();
    assert.equal(transactions.length, 1);
    assert.deepEqual(pick(transactions[0]!, ['status', 'outcome', 'notes', 'server_out_of_order', 'server_retransmits', 'server_lost_bytes',
      'response_bytes', 'server_pkts', 'server_pkt_bytes_max', 'server_pkt_bytes_avg', 'rsp_last', 'ttlr_ns', 'ttla_ns', 'bytes_acked']), {
      status: 200,
      outcome: 'ok',
      notes: [],
      server_out_of_order: 1,
      server_retransmits: 0,
      server_lost_bytes: 0,
      response_bytes: 49,
      server_pkts: 2, // two response packets carried payload
      server_pkt_bytes_max: 30,
      server_pkt_bytes_avg: 24.5, // (30 + 19) / 2
      rsp_last: iso(3_100_000), // reassembly completes with the late first segment
      ttlr_ns: 1_100_000,
      ttla_ns: 1_130_000,
      bytes_acked: 49,
    });
  });

  test('RST from the server before the response: outcome reset, connection reset_by_server', () => {
    const sc = new Script();
    const c = conn();
    handshake(sc, c, 1_000_000);
    sc.at(2_000_000, c.send('c', get('/a')));
    sc.at(2_500_000, c.rst('s'));
    const { transactions, connections } = sc.run();
    assert.equal(transactions.length, 1);
    const t = transactions[0]!;
    assert.equal(t.outcome, 'reset');
    assert.equal(t.rsp_first, null);
    assert.equal(t.ttfr_ns, null);
    assert.equal(t.status, null);
    assert.ok(t.notes.includes('reset_before_response'), `notes: ${t.notes}`);
    assert.equal(connections.length, 1);
    assert.equal(connections[0]!.outcome, 'reset_by_server');
    assert.equal(connections[0]!.end, iso(2_500_000));
  });

  test('malformed responses (a 70 000-byte head, garbage for a status line): counted, no throw, later connections fine', () => {
    const sc = new Script();
    // 1: a head of 50 × 1400 = 70 000 bytes without a blank line (the limit is 64 KiB)
    const a = conn(40000);
    handshake(sc, a, 1_000_000);
    sc.at(2_000_000, a.send('c', get('/big')));
    const long = 'HTTP/1.1 200 OK\r\nX-Long: ' + 'a'.repeat(70_000 - 25);
    for (let i = 0; i < 50; i++) sc.at(3_000_000 + i * 10_000, a.send('s', long.slice(i * 1400, (i + 1) * 1400)));
    sc.at(3_600_000, a.ack('c'));
    // 2: binary garbage where a status line should be
    const b = conn(40001);
    handshake(sc, b, 4_000_000);
    sc.at(5_000_000, b.send('c', get('/garbage')));
    sc.at(5_100_000, b.send('s', '\x00\x01\x02\xffgarbage\r\n\r\n'));
    sc.at(5_130_000, b.ack('c'));
    // the next response on that connection answers the next request (FIFO not shifted by the garbage)
    sc.at(5_500_000, b.send('c', get('/after')));
    sc.at(5_800_000, b.send('s', OK_0));
    sc.at(5_830_000, b.ack('c'));
    // 3: a well-formed exchange on a new connection
    const d = conn(40002);
    handshake(sc, d, 6_000_000);
    sc.at(7_000_000, d.send('c', get('/fine')));
    sc.at(7_200_000, d.send('s', OK_10));
    sc.at(7_230_000, d.ack('c'));
    const { transactions, statistics } = sc.run();
    const by = (path: string) => transactions.find((t) => t.subject === `GET ${path}`)!;
    assert.equal(transactions.length, 4);
    assert.equal(by('/big').outcome, 'partial');
    assert.ok(by('/big').notes.includes('response_unparsed'), `notes: ${by('/big').notes}`);
    assert.equal(by('/garbage').outcome, 'partial');
    assert.ok(by('/garbage').notes.includes('response_unparsed'), `notes: ${by('/garbage').notes}`);
    assert.deepEqual(pick(by('/after'), ['status', 'outcome', 'notes', 'ttfr_ns', 'response_bytes']),
      { status: 200, outcome: 'ok', notes: [], ttfr_ns: 300_000, response_bytes: 38 });
    assert.deepEqual(pick(by('/fine'), ['status', 'outcome', 'notes', 'ttfr_ns', 'response_bytes']),
      { status: 200, outcome: 'ok', notes: [], ttfr_ns: 200_000, response_bytes: 49 });
    assert.equal(statistics.anomalies.http_head_too_long, 1);
    assert.equal(statistics.anomalies.http_not_a_response, 1);
  });

  test('RST without ACK from the client after the response is complete: the transaction stays ok', () => {
    // The response was complete and acknowledged before the reset: nothing is lost.
    const sc = new Script();
    const c = conn();
    handshake(sc, c, 1_000_000);
    sc.at(2_000_000, c.send('c', get('/a')));
    sc.at(2_400_000, c.send('s', OK_10));
    sc.at(2_430_000, c.ack('c'));
    sc.at(2_500_000, c.rst('c', { flags: RST }));
    const { transactions, connections } = sc.run();
    assert.deepEqual(transactions.map((t) => [t.status, t.outcome, t.ttfr_ns]), [[200, 'ok', 400_000]]);
    assert.equal(connections[0]!.outcome, 'reset_by_client');
  });
});
