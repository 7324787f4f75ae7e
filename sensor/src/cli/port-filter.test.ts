/**
 * The filter grammar of `wiretime sensor` (a subset of tcpdump's pcap-filter(7)):
 * `tcp`, `udp`, `[tcp|udp] port N`, `[tcp|udp] portrange N-M`, `not` before a
 * primitive, `and` binding tighter than `or`; refusals name the word not understood.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IpProto } from '../decode/decoded-packet.ts';
import { parsePortFilter } from './port-filter.ts';

const TCP = IpProto.TCP;
const UDP = IpProto.UDP;

/** [transport, src port, dst port, expected] rows against one expression */
function check(expression: string, rows: [number, number, number, boolean][]): void {
  const f = parsePortFilter(expression);
  for (const [t, s, d, want] of rows) {
    assert.equal(f(t, s, d), want, `"${expression}" on ${t === TCP ? 'tcp' : 'udp'} ${s} → ${d}`);
  }
}

describe('parsePortFilter: the grammar', () => {
  test('tcp, udp', () => {
    check('tcp', [[TCP, 1, 2, true], [UDP, 1, 2, false]]);
    check('udp', [[TCP, 1, 2, false], [UDP, 1, 2, true]]);
  });

  test('port N matches either side, any transport', () => {
    check('port 53', [[UDP, 40000, 53, true], [TCP, 53, 40000, true], [UDP, 40000, 54, false], [TCP, 5353, 40000, false]]);
    check('port 0', [[TCP, 0, 1, true], [TCP, 1, 2, false]]);
    check('port 65535', [[TCP, 1, 65535, true]]);
  });

  test('tcp port N / udp port N also need the transport', () => {
    check('tcp port 80', [[TCP, 40000, 80, true], [TCP, 80, 40000, true], [UDP, 40000, 80, false], [TCP, 40000, 81, false]]);
    check('udp port 53', [[UDP, 53, 40000, true], [TCP, 53, 40000, false]]);
  });

  test('portrange N-M is inclusive at both ends, on either side', () => {
    check('portrange 8000-8080', [
      [TCP, 40000, 7999, false], [TCP, 40000, 8000, true], [TCP, 40000, 8080, true], [TCP, 40000, 8081, false],
      [UDP, 8050, 40000, true],
    ]);
    check('tcp portrange 8000-8080', [[TCP, 40000, 8000, true], [UDP, 40000, 8000, false]]);
    check('udp portrange 5000-5000', [[UDP, 5000, 1, true], [UDP, 5001, 1, false], [TCP, 5000, 1, false]]);
  });

  test('not negates the primitive after it', () => {
    check('not port 22', [[TCP, 40000, 22, false], [TCP, 22, 40000, false], [TCP, 40000, 80, true]]);
    check('not tcp', [[TCP, 1, 2, false], [UDP, 1, 2, true]]);
    check('not not udp', [[UDP, 1, 2, true], [TCP, 1, 2, false]]);
    // not binds to the primitive only: (not port 22) and tcp
    check('not port 22 and tcp', [[TCP, 1, 22, false], [TCP, 1, 80, true], [UDP, 1, 80, false]]);
  });

  test('and binds tighter than or', () => {
    // port 80 or (port 443 and tcp)
    check('port 80 or port 443 and tcp', [[UDP, 1, 80, true], [UDP, 1, 443, false], [TCP, 1, 443, true], [TCP, 1, 22, false]]);
    // (tcp and port 443) or (udp and port 53)
    check('tcp and port 443 or udp and port 53', [[UDP, 1, 53, true], [TCP, 1, 53, false], [TCP, 1, 443, true], [UDP, 1, 443, false]]);
    check('port 1 or port 2 or port 3', [[TCP, 9, 1, true], [TCP, 9, 2, true], [TCP, 9, 3, true], [TCP, 9, 4, false]]);
    check('tcp and port 1 and not port 2', [[TCP, 1, 9, true], [TCP, 1, 2, false], [UDP, 1, 9, false]]);
  });

  test('&&, || and ! as in tcpdump; extra blanks are fine', () => {
    check('tcp && port 80 || udp', [[TCP, 1, 80, true], [TCP, 1, 81, false], [UDP, 1, 81, true]]);
    check('! port 22', [[TCP, 1, 22, false], [TCP, 1, 23, true]]);
    check('  tcp   port\t80 ', [[TCP, 1, 80, true], [UDP, 1, 80, false]]);
  });
});

describe('parsePortFilter: refusals name the word not understood', () => {
  const refuses = (expression: string, ...fragments: string[]) => {
    assert.throws(() => parsePortFilter(expression), (err: Error) => {
      assert.ok(err.message.startsWith(`filter "${expression}": `), err.message);
      for (const f of fragments) assert.ok(err.message.includes(f), `"${f}" not in: ${err.message}`);
      return true;
    });
  };

  test('an unknown word', () => {
    refuses('tcp prot 80', '"prot"');
    refuses('host 10.0.0.1', '"host"');
    refuses('tcp port 80 extra', '"extra"');
    refuses('port 80 port 443', '"port"');
    refuses('and tcp', '"and"');
  });

  test('a bad port number', () => {
    refuses('port http', '"http"');
    refuses('port 65536', '"65536"');
    refuses('port -1', '"-1"');
    refuses('port 8o', '"8o"');
    refuses('udp port 1e3', '"1e3"');
  });

  test('a bad port range', () => {
    refuses('portrange 80', '"80"');
    refuses('portrange 80-', '"80-"');
    refuses('tcp portrange a-b', '"a-b"');
  });

  test('the filter ends too early, or is empty', () => {
    refuses('port', 'end of filter');
    refuses('tcp or', 'end of filter');
    refuses('not', 'end of filter');
    refuses('', 'empty');
    refuses('   ', 'empty');
  });
});
