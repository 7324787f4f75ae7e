import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { SignatureSet } from './signature-set.ts';

// The example rule files shipped in sigs/ load, and mean what their comments say.
const sigs = (name: string) => fileURLToPath(new URL(`../../../sigs/${name}`, import.meta.url));

function classify(s: SignatureSet, protocol: string, request: string, subject: string): string | null {
  const b = Buffer.from(request, 'latin1');
  return s.classify(protocol, b, b.length, subject);
}

describe('sigs/', () => {
  test('pastmon-http-sigs.inc: the article\'s webmail rule', () => {
    const s = SignatureSet.fromFiles([sigs('pastmon-http-sigs.inc')]);
    assert.equal(s.size, 1);
    assert.equal(classify(s, 'http', 'GET /webmail/src/right_main.php HTTP/1.1\r\nHost: mail\r\n\r\n', 'GET /webmail/src/right_main.php'), 'GET_webmail_right_main.php');
  });

  test('http.sigs', () => {
    const s = SignatureSet.fromFiles([sigs('http.sigs')]);
    assert.equal(s.request_bytes_needed, 512);
    const http = (line: string, subject: string, headers = 'Host: www.example.com\r\n') => classify(s, 'http', `${line}\r\n${headers}\r\n`, subject);
    assert.equal(http('GET /healthz HTTP/1.1', 'GET /healthz'), 'health_check');
    assert.equal(http('GET /static/fonts/inter.woff2?v=3 HTTP/1.1', 'GET /static/fonts/inter.woff2'), 'static_woff2');
    assert.equal(http('GET /api/v1/items/42 HTTP/1.1', 'GET /api/v1/items/42'), 'API_GET_items');
    assert.equal(http('DELETE /api/v2/users/7 HTTP/1.1', 'DELETE /api/v2/users/7'), 'API_DELETE_users');
    assert.equal(http('GET /product/1234 HTTP/1.1', 'GET /product/1234'), 'GET_product');
    assert.equal(http('POST /app/api/login HTTP/1.1', 'POST /app/api/login'), 'POST_login');
    assert.equal(http('GET /cart/view HTTP/1.1', 'GET /cart/view'), 'cart_view');
    assert.equal(http('GET /users HTTP/1.1', 'GET /users', 'User-Agent: x\r\nHost: admin.example.com:8443\r\n'), 'admin_site_GET');
    assert.equal(http('GET /index.html HTTP/1.1', 'GET /index.html'), null); // the analyzer's default name stays
  });

  test('dns.sigs', () => {
    const s = SignatureSet.fromFiles([sigs('dns.sigs')]);
    assert.equal(s.request_bytes_needed, 0);
    const dns = (subject: string) => classify(s, 'dns', '', subject);
    assert.equal(dns('A www.example.com'), 'example.com_A');
    assert.equal(dns('AAAA example.com'), 'example.com_AAAA');
    assert.equal(dns('MX other.org'), 'mail_MX');
    assert.equal(dns('PTR 4.3.2.1.in-addr.arpa'), 'reverse_in-addr');
    assert.equal(dns('SRV _ldap._tcp.dc.corp.org'), 'SRV_ldap_tcp');
    assert.equal(dns('A www.example.org'), null);
    assert.equal(classify(s, 'http', '', 'A www.example.com'), null); // Protocol = dns
  });

  test('all three together, in one order', () => {
    const s = SignatureSet.fromFiles([sigs('pastmon-http-sigs.inc'), sigs('http.sigs'), sigs('dns.sigs')]);
    assert.equal(s.size, 1 + 7 + 4);
  });
});
