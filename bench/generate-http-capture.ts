/**
 * Reproducible generator of a large, realistic HTTP/1.1 capture for the benchmark.
 *
 *   node --import tsx bench/generate-http-capture.ts --packets 1000000 --seed 1 --out bench/out/http-1m.pcap
 *
 * Writes a classic pcap (microsecond, little-endian, Ethernet) of exactly --packets
 * records: ~--concurrency interleaved TCP connections at a time between --clients
 * clients (10.1.x.y) and five servers (10.2.0.1-4:80 and 10.2.0.5:8080), as seen by a
 * sensor on the servers' switch port:
 *
 *  - 3-way handshake with random ISNs; SYN/SYN-ACK options MSS 1460, SACK-permitted,
 *    timestamps and window scale (Linux order) or, for the "Windows" clients, MSS,
 *    window scale and SACK-permitted without timestamps;
 *  - 1-20 keep-alive GET/POST requests with browser or API-client headers; responses
 *    200 (201 for creations), 404, 500 and 304 (no body), with Content-Length or
 *    chunked bodies of 0-60 KB (valid HTML, JSON, JS, CSS, form and binary content),
 *    cut into 1448-byte segments (1460 without timestamps), sent under a slow-start
 *    congestion window clocked by the client's ACKs, which come every second segment
 *    one RTT later (delayed ACK of an odd last segment, or piggy-backed);
 *  - per-client link RTT log-uniform 0.2-20 ms and bandwidth 20 Mbit/s-1 Gbit/s, server
 *    think time log-normal around 5 ms (1% slow requests 20x longer, delayed ACK at 40 ms);
 *  - FIN/ACK teardown by the client or by the server's keep-alive timer, some RSTs;
 *  - a DNS lookup (A, plus AAAA for browsers, sometimes a wpad NXDOMAIN) over UDP to
 *    10.2.0.53 before a client's first connection to each server name.
 *
 * Deterministic: everything comes from one mulberry32 stream seeded by --seed, and the
 * file is cut exactly at --packets, so the same seed gives a byte-identical file and a
 * smaller --packets gives a byte-identical prefix of a larger one. Timestamps are
 * monotonic from 2026-01-01T00:00:00Z. Memory is constant: frames are built in one
 * reused buffer and streamed to the file; only the ~100 live connections are kept.
 */
import { statSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Rng } from './prng.ts';
import { PcapWriter, ipv4, mac, type FrameEnds, type RecordSink } from './pcap-writer.ts';

/** 2026-01-01T00:00:00Z */
export const CAPTURE_EPOCH_SEC = Date.UTC(2026, 0, 1) / 1000;

const FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10;

// ---------------------------------------------------------------------------------
// Content: bodies generated once at start-up from the seeded stream.

const WORDS = [
  'alpha', 'bravo', 'coffee', 'delta', 'engine', 'falcon', 'garden', 'harbor', 'island', 'jungle',
  'kettle', 'lantern', 'marble', 'nectar', 'orbit', 'pepper', 'quartz', 'river', 'saddle', 'timber',
  'umbrella', 'velvet', 'walnut', 'xenon', 'yellow', 'zephyr', 'basket', 'candle', 'blue', 'green',
  'large', 'small', 'classic', 'premium', 'organic', 'wireless', 'leather', 'cotton', 'steel', 'glass',
];

function words(rng: Rng, n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(rng.pick(WORDS));
  return out.join(' ');
}

function htmlBody(rng: Rng, size: number, title: string): string {
  const head =
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n' +
    `<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>Example - ${title}</title>\n` +
    '<link rel="stylesheet" href="/static/style.css">\n<script src="/static/app.js" defer></script>\n</head>\n<body>\n' +
    '<header><nav><a href="/">Home</a> <a href="/products.html">Products</a> <a href="/about.html">About</a></nav></header>\n<main>\n';
  const tail = '</main>\n<footer>&copy; 2026 Example Inc.</footer>\n</body>\n</html>\n';
  const parts = [head];
  let len = head.length + tail.length;
  while (len < size) {
    const id = rng.int(1, 99999);
    const line =
      `<div class="product" id="p${id}"><h2>${words(rng, rng.int(1, 3))}</h2>` +
      `<p>${words(rng, rng.int(5, 25))}.</p><span class="price">$${rng.int(1, 999)}.${rng.int(10, 99)}</span>` +
      `<a href="/product/${id}">View</a></div>\n`;
    parts.push(line);
    len += line.length;
  }
  parts.push(tail);
  return parts.join('');
}

function jsonItem(rng: Rng): string {
  return (
    `{"id":${rng.int(1, 999999)},"name":"${words(rng, rng.int(1, 3))}","price":${rng.int(1, 9999)}.${rng.int(10, 99)},` +
    `"stock":${rng.int(0, 500)},"tags":["${rng.pick(WORDS)}","${rng.pick(WORDS)}"],` +
    `"updated":"2025-12-${String(rng.int(1, 31)).padStart(2, '0')}T${String(rng.int(0, 23)).padStart(2, '0')}:${String(rng.int(0, 59)).padStart(2, '0')}:00Z"}`
  );
}

function jsonBody(rng: Rng, size: number): string {
  if (size < 120) return `{"id":${rng.int(1, 999999)},"ok":true,"name":"${words(rng, 1)}"}`;
  const parts: string[] = [];
  let len = 40;
  while (len < size) {
    const item = jsonItem(rng);
    parts.push(item);
    len += item.length + 1;
  }
  return `{"items":[${parts.join(',')}],"total":${parts.length + rng.int(0, 5000)},"page":${rng.int(1, 20)}}`;
}

function jsBody(rng: Rng, size: number): string {
  const parts = ['"use strict";\n'];
  let len = parts[0]!.length;
  while (len < size) {
    const n = rng.int(1, 99999);
    const line = rng.pick([
      `function f${n}(a, b) { return a + b * ${rng.int(1, 999)}; }\n`,
      `var s${n} = "${words(rng, rng.int(1, 6))}";\n`,
      `/* ${words(rng, rng.int(3, 12))} */\n`,
      `document.querySelectorAll(".p${n}").forEach(function (e) { e.classList.toggle("on"); });\n`,
    ]);
    parts.push(line);
    len += line.length;
  }
  return parts.join('');
}

function cssBody(rng: Rng, size: number): string {
  const parts: string[] = [];
  let len = 0;
  while (len < size) {
    const line = `.c-${rng.pick(WORDS)}-${rng.int(1, 999)} { margin: ${rng.int(0, 32)}px; color: #${rng.hex(6)}; }\n`;
    parts.push(line);
    len += line.length;
  }
  return parts.join('');
}

function binBody(rng: Rng, size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i += 4) {
    const v = rng.u32();
    b[i] = v & 0xff; b[i + 1] = (v >>> 8) & 0xff; b[i + 2] = (v >>> 16) & 0xff; b[i + 3] = v >>> 24;
  }
  return b;
}

const enc = (s: string): Uint8Array => Buffer.from(s, 'latin1');

interface Resource {
  path: string;
  type: string;
  body: Uint8Array;
  etag: string;
  last_modified: string;
}

class Content {
  readonly statics: Resource[] = [];
  readonly pages: Resource[] = [];
  readonly product_pages: Uint8Array[] = [];
  readonly json: Uint8Array[] = [];
  readonly not_found: Uint8Array;

  constructor(rng: Rng) {
    const lm = (): string => new Date(Date.UTC(2025, 11, rng.int(1, 30), rng.int(0, 23), rng.int(0, 59), rng.int(0, 59))).toUTCString();
    const res = (path: string, type: string, body: Uint8Array): Resource => {
      const last_modified = lm();
      const etag = `"${(Date.parse(last_modified) / 1000).toString(16)}-${body.length.toString(16)}"`;
      return { path, type, body, etag, last_modified };
    };
    this.statics.push(
      res('/static/app.js', 'application/javascript', enc(jsBody(rng, rng.int(30000, 60000)))),
      res('/static/vendor.js', 'application/javascript', enc(jsBody(rng, rng.int(45000, 61000)))),
      res('/static/analytics.js', 'application/javascript', enc(jsBody(rng, rng.int(2000, 6000)))),
      res('/static/style.css', 'text/css', enc(cssBody(rng, rng.int(8000, 20000)))),
      res('/static/theme.css', 'text/css', enc(cssBody(rng, rng.int(500, 3000)))),
      res('/static/fonts/inter.woff2', 'font/woff2', binBody(rng, rng.int(20000, 50000))),
      res('/downloads/catalog-2025.bin', 'application/octet-stream', binBody(rng, rng.int(50000, 61440))),
      res('/robots.txt', 'text/plain', enc('User-agent: *\nDisallow: /cart\nDisallow: /api/\n')),
    );
    for (const p of ['/', '/index.html', '/about.html', '/products.html', '/contact.html']) {
      this.pages.push(res(p, 'text/html', enc(htmlBody(rng, rng.int(1500, 40000), p))));
    }
    for (let i = 0; i < 24; i++) this.product_pages.push(enc(htmlBody(rng, Math.round(rng.logUniform(3000, 45000)), `product ${i}`)));
    for (let i = 0; i < 96; i++) this.json.push(enc(jsonBody(rng, Math.round(rng.logUniform(40, 61000)))));
    this.not_found = enc('<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n');
  }
}

// ---------------------------------------------------------------------------------
// Hosts

const ROUTER_MAC = mac(0x00, 0x00, 0x5e, 0x00, 0x01, 0x01);
const DNS_IP = ipv4(10, 2, 0, 53);
const DNS_MAC = mac(0x52, 0x54, 0x00, 0x02, 0x00, 0x35);

type ServerKind = 'www' | 'api' | 'static' | 'shop' | 'app';

interface Server {
  index: number;
  ip: number;
  port: number;
  name: string;
  host_header: string;
  kind: ServerKind;
  mac: Uint8Array;
  software: string;
  keepalive_us: number;
}

interface Client {
  ip: number;
  rtt: number; // µs
  us_per_byte: number; // client link serialisation
  ttl: number;
  windows: boolean;
  browser: boolean;
  ua: string;
  next_port: number;
  token: string;
  cookie: string;
  resolved: Set<number>;
}

const BROWSER_UAS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
  'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
];
const API_UAS = ['python-requests/2.32.3', 'okhttp/4.12.0', 'Go-http-client/1.1', 'curl/8.5.0', 'Apache-HttpClient/4.5.14 (Java/17.0.9)'];
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

// ---------------------------------------------------------------------------------
// The connection model

interface Pkt {
  t: number; // µs since the capture start
  dir: number; // 0 client -> server, 1 server -> client
  kind: number; // 0 TCP, 1 TCP SYN/SYN-ACK (with handshake options), 2 UDP (DNS)
  flags: number;
  seq: number; // relative to the sender's ISN (TCP)
  ack: number; // relative to the receiver's ISN (TCP)
  win: number;
  data: Uint8Array | null;
  off: number;
  len: number;
}

interface HttpExchange {
  request: Uint8Array;
  response: Uint8Array;
  status: number;
}

interface Stats {
  connections: number;
  requests: number;
  dns_queries: number;
  status: Record<number, number>;
  chunked: number;
  resets: number;
}

class Generator {
  readonly rng: Rng;
  readonly content: Content;
  readonly clients: Client[] = [];
  readonly servers: Server[] = [];
  readonly stats: Stats = { connections: 0, requests: 0, dns_queries: 0, status: {}, chunked: 0, resets: 0 };
  private next_conn_id = 0;
  private date_cache_sec = -1;
  private date_cache = '';

  constructor(seed: number, n_clients: number) {
    this.rng = new Rng(seed);
    const rng = this.rng;
    this.content = new Content(rng);
    const specs: [string, number, ServerKind, string][] = [
      ['www.example.com', 80, 'www', 'nginx/1.24.0'],
      ['api.example.com', 80, 'api', 'nginx/1.24.0'],
      ['static.example.com', 80, 'static', 'nginx/1.24.0'],
      ['shop.example.com', 80, 'shop', 'Apache/2.4.62 (Debian)'],
      ['app.example.com', 8080, 'app', 'Jetty(9.4.53.v20231009)'],
    ];
    specs.forEach(([name, port, kind, software], i) => {
      this.servers.push({
        index: i, ip: ipv4(10, 2, 0, i + 1), port, name, kind, software,
        host_header: port === 80 ? name : `${name}:${port}`,
        mac: mac(0x52, 0x54, 0x00, 0x02, 0x00, i + 1),
        keepalive_us: Math.round(rng.uniform(300_000, 2_000_000)),
      });
    });
    const used = new Set<number>();
    while (this.clients.length < n_clients) {
      const ip = ipv4(10, 1, rng.int(0, 15), rng.int(1, 254));
      if (used.has(ip)) continue;
      used.add(ip);
      const windows = rng.chance(0.2);
      const browser = rng.chance(0.6);
      const mbps = rng.weighted([1000, 300, 100, 50, 20], [3, 2, 3, 1, 1]);
      this.clients.push({
        ip, windows, browser,
        rtt: Math.round(rng.logUniform(200, 20000)),
        us_per_byte: 8 / mbps,
        ttl: (windows ? 128 : 64) - rng.int(2, 12),
        ua: browser ? rng.pick(BROWSER_UAS) : rng.pick(API_UAS),
        next_port: rng.int(32768, 60999),
        token: rng.chars(rng.int(80, 160), B64),
        cookie: `session=${rng.hex(32)}; _ga=GA1.1.${rng.int(100000000, 999999999)}.${rng.int(1700000000, 1767000000)}`,
        resolved: new Set(),
      });
    }
  }

  httpDate(t_us: number): string {
    const sec = CAPTURE_EPOCH_SEC + Math.floor(t_us / 1e6);
    if (sec !== this.date_cache_sec) {
      this.date_cache_sec = sec;
      this.date_cache = new Date(sec * 1000).toUTCString();
    }
    return this.date_cache;
  }

  newConnection(start_t: number): Conn {
    const rng = this.rng;
    const client = rng.pick(this.clients);
    const server = this.servers[rng.weighted([0, 1, 2, 3, 4], [25, 30, 25, 10, 10])]!;
    this.stats.connections++;
    return new Conn(this, this.next_conn_id++, client, server, start_t);
  }

  /** One request/response pair for the k-th request (0-based) of a connection. */
  exchange(c: Conn, k: number, t_response: number): HttpExchange {
    const rng = this.rng;
    const s = c.server;
    const cl = c.client;
    const C = this.content;
    let method = 'GET';
    let path = '/';
    let req_body: Uint8Array | null = null;
    let req_type = '';
    let accept = cl.browser ? 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' : 'application/json';
    let resource: Resource | null = null;
    let dynamic: Uint8Array | null = null;
    let dyn_type = 'application/json; charset=utf-8';
    let status = 200;
    let conditional = false;

    const pickStatic = (): void => {
      resource = rng.weighted(C.statics, [6, 5, 3, 5, 2, 2, 1, 1]);
      path = resource.path;
      accept = resource.type.startsWith('text/css') ? 'text/css,*/*;q=0.1' : '*/*';
      conditional = cl.browser && rng.chance(0.25);
    };
    const pickPage = (): void => {
      resource = k === 0 ? rng.pick(C.pages.slice(0, 2)) : rng.pick(C.pages);
      path = resource.path;
    };
    const apiGet = (): void => {
      const r = rng.next();
      if (r < 0.45) {
        path = `/api/v1/items/${rng.int(1, 99999)}?x=${rng.int(0, 9999)}&fields=name,price,stock`;
        dynamic = C.json[rng.int(0, 23)]!; // small items
        if (rng.chance(0.05)) status = 404;
      } else if (r < 0.65) {
        path = `/api/v1/items?page=${rng.int(1, 40)}&limit=${rng.pick([20, 50, 100])}&sort=${rng.pick(['price', 'name', '-updated'])}`;
        dynamic = rng.pick(C.json);
      } else if (r < 0.8) {
        path = `/api/v1/users/${rng.int(1, 50000)}`;
        dynamic = C.json[rng.int(0, 31)]!;
        if (rng.chance(0.03)) status = 404;
      } else if (r < 0.97) {
        path = `/api/v1/search?q=${rng.pick(WORDS)}+${rng.pick(WORDS)}&page=${rng.int(1, 5)}`;
        dynamic = rng.pick(C.json);
      } else {
        path = '/health';
        dynamic = enc('OK\n');
        dyn_type = 'text/plain';
      }
    };
    const apiPost = (): void => {
      method = 'POST';
      req_type = 'application/json';
      if (rng.chance(0.5)) {
        path = '/api/v1/items';
        req_body = enc(jsonItem(rng));
        dynamic = enc(`{"id":${rng.int(1, 999999)},"created":true}`);
        status = 201;
      } else {
        path = '/api/v1/events';
        const n = rng.int(1, 30);
        const ev: string[] = [];
        for (let i = 0; i < n; i++) ev.push(`{"type":"${rng.pick(['click', 'view', 'scroll', 'purchase'])}","ts":${1767225600000 + rng.int(0, 99999999)},"target":"${rng.pick(WORDS)}"}`);
        req_body = enc(`[${ev.join(',')}]`);
        dynamic = new Uint8Array(0); // 200 with Content-Length: 0
      }
    };

    switch (s.kind) {
      case 'www':
        if (k === 0 || rng.chance(0.25)) pickPage();
        else if (rng.chance(0.07)) { path = '/favicon.ico'; status = 404; accept = 'image/avif,image/webp,*/*'; }
        else pickStatic();
        break;
      case 'static':
        pickStatic();
        break;
      case 'api':
        if (rng.chance(0.2)) apiPost(); else apiGet();
        break;
      case 'shop': {
        const r = rng.next();
        if (k === 0 || r < 0.5) {
          path = `/product/${rng.int(1, 5000)}`;
          dynamic = rng.pick(C.product_pages);
          dyn_type = 'text/html; charset=UTF-8';
          if (rng.chance(0.03)) status = 404;
        } else if (r < 0.7) {
          method = 'POST';
          path = '/cart/add';
          req_type = 'application/x-www-form-urlencoded';
          req_body = enc(`product_id=${rng.int(1, 5000)}&qty=${rng.int(1, 5)}&csrf_token=${rng.hex(32)}`);
          dynamic = enc(`{"cart":{"items":${rng.int(1, 12)},"total":"${rng.int(5, 900)}.${rng.int(10, 99)}"}}`);
        } else if (r < 0.85) {
          apiGet();
        } else {
          pickStatic();
        }
        break;
      }
      case 'app': {
        const r = rng.next();
        if (r < 0.35) {
          path = `/app/dashboard?tab=${rng.pick(['overview', 'sales', 'stock', 'users'])}`;
          dynamic = rng.pick(C.product_pages);
          dyn_type = 'text/html;charset=utf-8';
        } else if (r < 0.9) {
          path = `/app/api/report?id=${rng.int(1, 9999)}&range=${rng.pick(['1d', '7d', '30d'])}`;
          dynamic = rng.pick(C.json);
        } else {
          method = 'POST';
          path = '/app/api/login';
          req_type = 'application/json';
          req_body = enc(`{"user":"${rng.pick(WORDS)}${rng.int(1, 999)}","password":"${rng.chars(12, B64)}","remember":${rng.chance(0.5)}}`);
          dynamic = enc(`{"token":"${rng.chars(120, B64)}","expires_in":3600}`);
        }
        break;
      }
    }
    const dynamic_path = resource === null;
    if (dynamic_path && status === 200 && s.kind !== 'www' && s.kind !== 'static' && rng.chance(0.015)) status = 500;
    const res = resource as Resource | null;
    if (res !== null && conditional && rng.chance(0.8)) status = 304;

    // --- request
    const h: string[] = [`${method} ${path} HTTP/1.1`, `Host: ${s.host_header}`];
    if (cl.browser) {
      h.push(`User-Agent: ${cl.ua}`, `Accept: ${accept}`, 'Accept-Language: en-US,en;q=0.9', 'Accept-Encoding: gzip, deflate, br');
      if (k > 0 || rng.chance(0.3)) h.push(`Referer: http://${s.host_header}/`);
      h.push('Connection: keep-alive');
      if (rng.chance(0.7)) h.push(`Cookie: ${cl.cookie}`);
      if (conditional && res !== null) h.push(`If-None-Match: ${res.etag}`, `If-Modified-Since: ${res.last_modified}`);
    } else {
      h.push(`User-Agent: ${cl.ua}`, 'Accept-Encoding: gzip, deflate', `Accept: ${accept}`, 'Connection: keep-alive');
      if (s.kind === 'api' || s.kind === 'app') h.push(`Authorization: Bearer ${cl.token}`);
    }
    const rb = req_body as Uint8Array | null;
    if (rb !== null) h.push(`Content-Type: ${req_type}`, `Content-Length: ${rb.length}`);
    const req_head = enc(h.join('\r\n') + '\r\n\r\n');
    const request = rb === null ? req_head : Buffer.concat([req_head, rb]);

    // --- response
    let body: Uint8Array;
    let type: string;
    if (status === 404) {
      if (s.kind === 'api' || path.startsWith('/api/')) { body = enc(`{"error":"not found","path":"${path.split('?')[0]}"}`); type = 'application/json'; }
      else { body = C.not_found; type = 'text/html'; }
    } else if (status === 500) {
      body = enc(`{"error":"internal server error","request_id":"${rng.hex(32)}"}`);
      type = 'application/json';
    } else if (res !== null) {
      body = res.body;
      type = res.type;
    } else {
      body = dynamic ?? new Uint8Array(0);
      type = dyn_type;
    }
    const reason: Record<number, string> = { 200: 'OK', 201: 'Created', 304: 'Not Modified', 404: 'Not Found', 500: 'Internal Server Error' };
    const r: string[] = [`HTTP/1.1 ${status} ${reason[status]}`];
    if (s.kind === 'app') r.push(`Date: ${this.httpDate(t_response)}`);
    else r.push(`Server: ${s.software}`, `Date: ${this.httpDate(t_response)}`);
    let chunked = false;
    if (status === 304) {
      r.push(`Last-Modified: ${res!.last_modified}`, 'Connection: keep-alive', `ETag: ${res!.etag}`, 'Cache-Control: public, max-age=86400');
    } else {
      chunked =
        status === 200 && body.length > 0 &&
        (s.kind === 'app' || (s.kind === 'api' && rng.chance(0.35)) || (s.kind === 'shop' && res === null && rng.chance(0.5)));
      r.push(`Content-Type: ${type}`);
      if (chunked) r.push('Transfer-Encoding: chunked');
      else r.push(`Content-Length: ${body.length}`);
      if (res !== null && status === 200) {
        r.push(`Last-Modified: ${res.last_modified}`, 'Connection: keep-alive', `ETag: ${res.etag}`, 'Cache-Control: public, max-age=86400', 'Accept-Ranges: bytes');
      } else {
        if (s.kind !== 'app') r.push('Connection: keep-alive');
        if (s.kind === 'api' || s.kind === 'app') r.push(`X-Request-Id: ${rng.hex(32)}`, 'Cache-Control: no-store');
        if (s.kind === 'shop') r.push('Vary: Accept-Encoding', 'X-Powered-By: PHP/8.2.26');
      }
    }
    const head = enc(r.join('\r\n') + '\r\n\r\n');
    let response: Uint8Array;
    if (status === 304) {
      response = head;
    } else if (chunked) {
      this.stats.chunked++;
      // Valid HTTP, but tshark 4.0 flags "Malformed Packet" when the last-chunk
      // "0\r\n\r\n" is split so that its final bytes travel alone in the response's
      // last segment; draw other chunk sizes then, so that tshark reads the file cleanly.
      for (let attempt = 0; ; attempt++) {
        const parts: Uint8Array[] = [head];
        let o = 0;
        while (o < body.length) {
          const n = Math.min(body.length - o, rng.int(1024, 8192));
          parts.push(enc(n.toString(16) + '\r\n'), body.subarray(o, o + n), enc('\r\n'));
          o += n;
        }
        parts.push(enc('0\r\n\r\n'));
        response = Buffer.concat(parts);
        const tail = response.length % c.seg;
        if (tail === 0 || tail > 4 || attempt === 20) break;
      }
    } else {
      response = body.length === 0 ? head : Buffer.concat([head, body]);
    }
    this.stats.requests++;
    this.stats.status[status] = (this.stats.status[status] ?? 0) + 1;
    return { request, response, status };
  }
}

type CloseMode = 'client-fin' | 'server-fin' | 'client-rst' | 'server-rst';

class Conn {
  readonly g: Generator;
  readonly id: number;
  readonly client: Client;
  readonly server: Server;
  readonly cport: number;
  readonly cisn: number;
  readonly sisn: number;
  readonly ts: boolean; // timestamps negotiated
  readonly seg: number; // payload bytes per full segment
  readonly nreq: number;
  readonly ends_c: FrameEnds;
  readonly ends_s: FrameEnds;
  readonly dns_c: FrameEnds;
  readonly dns_s: FrameEnds;
  readonly dns_port: number;
  readonly ts_c0: number;
  readonly ts_s0: number;

  queue: Pkt[] = [];
  qi = 0;
  /** latest time of any packet planned so far (-1: none yet) */
  max_t = -1;
  private phase = 0;
  private next_t: number;
  private cs = 0; // client's next relative sequence number
  private ss = 0;
  private cwnd_s = 10;
  private cwnd_c = 10;
  private cwin = 502;
  private swin = 501;
  private ipid_c: number;
  private ipid_s: number;
  private synack_t = 0;
  private last_cli_t = 0;
  private last_srv_t = 0;
  private close_mode: CloseMode = 'client-fin';

  constructor(g: Generator, id: number, client: Client, server: Server, start_t: number) {
    const rng = g.rng;
    this.g = g;
    this.id = id;
    this.client = client;
    this.server = server;
    this.cport = client.next_port;
    client.next_port = client.next_port >= 60999 ? 32768 : client.next_port + 1;
    this.cisn = rng.u32();
    this.sisn = rng.u32();
    this.ts = !client.windows;
    this.seg = this.ts ? 1448 : 1460;
    this.nreq = rng.int(1, 20);
    this.ipid_c = rng.int(0, 65535);
    this.ipid_s = rng.int(0, 65535);
    this.ts_c0 = rng.u32();
    this.ts_s0 = rng.u32();
    this.dns_port = rng.int(32768, 60999);
    this.ends_c = { src_mac: ROUTER_MAC, dst_mac: server.mac, src_ip: client.ip, dst_ip: server.ip, ttl: client.ttl, ip_id: 0, dont_fragment: true };
    this.ends_s = { src_mac: server.mac, dst_mac: ROUTER_MAC, src_ip: server.ip, dst_ip: client.ip, ttl: 64, ip_id: 0, dont_fragment: true };
    this.dns_c = { src_mac: ROUTER_MAC, dst_mac: DNS_MAC, src_ip: client.ip, dst_ip: DNS_IP, ttl: client.ttl, ip_id: 0, dont_fragment: false };
    this.dns_s = { src_mac: DNS_MAC, dst_mac: ROUTER_MAC, src_ip: DNS_IP, dst_ip: client.ip, ttl: 64, ip_id: 0, dont_fragment: false };
    this.next_t = start_t;
    this.planNext();
  }

  /** time of the next packet to write */
  get head_t(): number {
    return this.queue[this.qi]!.t;
  }

  private add(t: number, dir: number, kind: number, flags: number, seq: number, ack: number, win: number, data: Uint8Array | null, off: number, len: number): void {
    t = Math.round(t);
    this.queue.push({ t, dir, kind, flags, seq, ack, win, data, off, len });
    if (t > this.max_t) this.max_t = t;
  }

  /** Plans the next phase into the queue; false when the connection is over. */
  planNext(): boolean {
    this.queue = [];
    this.qi = 0;
    const start = Math.max(Math.round(this.next_t), this.max_t + 1);
    if (this.phase === 0) this.planHandshake(start);
    else if (this.phase <= this.nreq) this.planRequest(start, this.phase - 1);
    else if (this.phase === this.nreq + 1) this.planClose(start);
    else return false;
    this.phase++;
    // stable sort: causally later packets of the same instant keep their order
    this.queue.sort((a, b) => a.t - b.t);
    return true;
  }

  private planDns(t: number): number {
    const g = this.g;
    const rng = g.rng;
    const names: [string, number][] = [[this.server.name, 1]];
    if (this.client.browser) names.push([this.server.name, 28]);
    if (this.client.browser && rng.chance(0.03)) names.push(['wpad.example.com', 1]);
    let end = t;
    let qt = t;
    for (const [name, qtype] of names) {
      g.stats.dns_queries++;
      const id = rng.int(0, 65535);
      const nx = name.startsWith('wpad');
      const query = dnsMessage(id, false, name, qtype, 0, 0);
      const answer = dnsMessage(id, true, name, qtype, nx ? 3 : 0, qtype === 1 && !nx ? this.server.ip : 0);
      const delay = rng.chance(0.1) ? rng.uniform(5000, 40000) : rng.uniform(80, 1500);
      this.add(qt, 0, 2, 0, 0, 0, 0, query, 0, query.length);
      this.add(qt + delay, 1, 2, 0, 0, 0, 0, answer, 0, answer.length);
      end = Math.max(end, Math.round(qt + delay));
      qt += rng.int(20, 200);
    }
    return end;
  }

  private planHandshake(t: number): void {
    const rng = this.g.rng;
    const c = this.client;
    if (!c.resolved.has(this.server.index)) {
      c.resolved.add(this.server.index);
      t = this.planDns(t) + c.rtt + rng.int(50, 400);
    }
    this.add(t, 0, 1, SYN, 0, 0, 64240, null, 0, 0);
    const synack = t + rng.int(15, 60);
    this.synack_t = Math.round(synack);
    this.add(synack, 1, 1, SYN | ACK, 0, 1, this.ts ? 65160 : 64240, null, 0, 0);
    const ack_t = synack + c.rtt + rng.int(0, c.rtt / 20 + 30);
    this.add(ack_t, 0, 0, ACK, 1, 1, this.ts ? this.cwin : 256, null, 0, 0);
    this.cs = 1;
    this.ss = 1;
    this.next_t = ack_t + rng.int(5, 120);
  }

  /**
   * Sends `data` from `dir` starting at t0: segments under the sender's congestion
   * window, ACK of every second segment from the receiver. Returns the time of the last
   * segment and whether it is left without an ACK (odd number of segments).
   */
  private transfer(dir: number, data: Uint8Array, t0: number): { last_t: number; unacked: boolean } {
    const rng = this.g.rng;
    const c = this.client;
    const len = data.length;
    const n = Math.ceil(len / this.seg);
    const from_server = dir === 1;
    const us_per_byte = from_server ? 0.008 : c.us_per_byte;
    let cwnd = from_server ? this.cwnd_s : this.cwnd_c;
    const base = from_server ? this.ss : this.cs;
    const peer_next = from_server ? this.cs : this.ss;
    const ack_times: number[] = [];
    const ack_upto: number[] = [];
    let ai = 0;
    let acked = 0;
    let last_ack_t = 0;
    let t = t0;
    for (let i = 0; i < n; i++) {
      const off = i * this.seg;
      const plen = Math.min(this.seg, len - off);
      if (i > 0) t += Math.max(1, Math.round((this.seg + 66) * us_per_byte));
      // ACKs that have come back by now, or that the window must wait for
      while (ai < ack_times.length && (ack_times[ai]! <= t || i - acked >= cwnd)) {
        const resume = ack_times[ai]! + (from_server ? rng.int(2, 12) : c.rtt);
        if (resume > t) t = resume;
        cwnd = Math.min(cwnd + (ack_upto[ai]! - acked), 300);
        acked = ack_upto[ai]!;
        ai++;
      }
      this.add(t, dir, 0, ACK | (i === n - 1 ? PSH : 0), base + off, peer_next, from_server ? this.swin : this.cwin, data, off, plen);
      if (i % 2 === 1) {
        let at = from_server ? t + c.rtt + rng.int(0, c.rtt / 20 + 30) : t + rng.int(10, 40);
        at = Math.max(Math.round(at), last_ack_t + 1);
        last_ack_t = at;
        ack_times.push(at);
        ack_upto.push(i + 1);
        if (from_server && this.cwin < 3000) this.cwin += 23;
        const win = from_server ? (this.ts ? this.cwin : Math.min(this.cwin * 2, 65535)) : this.swin;
        this.add(at, 1 - dir, 0, ACK, peer_next, base + off + plen, win, null, 0, 0);
      }
    }
    if (from_server) { this.ss += len; this.cwnd_s = cwnd; } else { this.cs += len; this.cwnd_c = cwnd; }
    return { last_t: t, unacked: n % 2 === 1 };
  }

  private planRequest(t: number, k: number): void {
    const g = this.g;
    const rng = g.rng;
    const c = this.client;
    // the request's time is known before its response: think time first
    let think = rng.logNormal(5000, 0.9);
    if (rng.chance(0.01)) think *= 20;
    think = Math.round(Math.min(Math.max(think, 80), 3_000_000));
    // build the exchange with the response's Date; request segments go first
    const est_req_end = t + 2 * (this.seg + 66) * c.us_per_byte;
    const x = g.exchange(this, k, est_req_end + think);
    const rq = this.transfer(0, x.request, t);
    const t_resp = rq.last_t + think;
    if (rq.unacked && think > 40_000) {
      this.add(rq.last_t + 40_000 + rng.int(0, 500), 1, 0, ACK, this.ss, this.cs, this.swin, null, 0, 0);
    }
    const rs = this.transfer(1, x.response, t_resp);
    const at_client = rs.last_t + c.rtt;
    let gap: number;
    if (k + 1 < this.nreq) {
      gap = rng.chance(0.7) ? rng.logNormal(1500, 1.0) : rng.logNormal(300_000, 1.0);
      gap = Math.min(gap, 5_000_000);
      this.next_t = at_client + gap;
    } else {
      this.close_mode = rng.weighted<CloseMode>(['client-fin', 'server-fin', 'client-rst', 'server-rst'], [65, 22, 9, 4]);
      if (this.close_mode === 'client-fin' || this.close_mode === 'client-rst') {
        gap = rng.logNormal(20_000, 1.2);
        this.next_t = at_client + gap;
      } else {
        gap = Infinity;
        this.next_t = rs.last_t + this.server.keepalive_us + rng.int(0, 5000);
      }
    }
    if (rs.unacked && gap >= 40_000) {
      const delay = rng.chance(0.5) ? rng.int(20, 300) : 40_000 + rng.int(0, 2000);
      this.add(at_client + delay, 0, 0, ACK, this.cs, this.ss, this.ts ? this.cwin : Math.min(this.cwin * 2, 65535), null, 0, 0);
    }
  }

  private planClose(t: number): void {
    const g = this.g;
    const rng = g.rng;
    const c = this.client;
    const cw = this.ts ? this.cwin : Math.min(this.cwin * 2, 65535);
    switch (this.close_mode) {
      case 'client-fin': {
        this.add(t, 0, 0, FIN | ACK, this.cs, this.ss, cw, null, 0, 0);
        this.cs++;
        const t2 = t + rng.int(20, 90);
        this.add(t2, 1, 0, FIN | ACK, this.ss, this.cs, this.swin, null, 0, 0);
        this.ss++;
        this.add(t2 + c.rtt + rng.int(0, 50), 0, 0, ACK, this.cs, this.ss, cw, null, 0, 0);
        break;
      }
      case 'server-fin': {
        this.add(t, 1, 0, FIN | ACK, this.ss, this.cs, this.swin, null, 0, 0);
        this.ss++;
        let t2 = t + c.rtt + rng.int(0, 50);
        if (rng.chance(0.5)) {
          this.add(t2, 0, 0, ACK, this.cs, this.ss, cw, null, 0, 0);
          t2 += rng.int(50, 5000);
        }
        this.add(t2, 0, 0, FIN | ACK, this.cs, this.ss, cw, null, 0, 0);
        this.cs++;
        this.add(t2 + rng.int(15, 60), 1, 0, ACK, this.ss, this.cs, this.swin, null, 0, 0);
        break;
      }
      case 'client-rst':
        g.stats.resets++;
        this.add(t, 0, 0, RST | ACK, this.cs, this.ss, 0, null, 0, 0);
        break;
      case 'server-rst':
        g.stats.resets++;
        this.add(t, 1, 0, RST, this.ss, 0, 0, null, 0, 0);
        break;
    }
  }

  /** TSval of the client (or server) clock at capture time t (1 kHz). */
  private tsC(t: number): number { return (this.ts_c0 + Math.floor(t / 1000)) >>> 0; }
  private tsS(t: number): number { return (this.ts_s0 + Math.floor(t / 1000)) >>> 0; }

  /** Writes the next queued packet. */
  emit(w: PcapWriter, opts: Uint8Array): void {
    const p = this.queue[this.qi++]!;
    const t = p.t;
    const ts_sec = CAPTURE_EPOCH_SEC + Math.floor(t / 1e6);
    const ts_usec = t % 1e6;
    if (p.kind === 2) {
      const e = p.dir === 0 ? this.dns_c : this.dns_s;
      e.ip_id = (this.ipid_c++ * 7919) & 0xffff;
      if (p.dir === 0) w.udp(ts_sec, ts_usec, e, this.dns_port, 53, p.data!, p.off, p.len);
      else w.udp(ts_sec, ts_usec, e, 53, this.dns_port, p.data!, p.off, p.len);
      return;
    }
    const from_client = p.dir === 0;
    const e = from_client ? this.ends_c : this.ends_s;
    const syn = p.kind === 1;
    if (from_client) e.ip_id = this.ipid_c++ & 0xffff;
    else e.ip_id = syn ? 0 : this.ipid_s++ & 0xffff;
    const seq = ((from_client ? this.cisn : this.sisn) + p.seq) >>> 0;
    const ack = p.flags & ACK ? ((from_client ? this.sisn : this.cisn) + p.ack) >>> 0 : 0;
    let ol = 0;
    let tsval = 0;
    let tsecr = 0;
    if (this.ts) {
      if (from_client) {
        tsval = this.tsC(t);
        tsecr = p.flags & SYN ? 0 : this.tsS(Math.max(this.synack_t, Math.min(t - this.client.rtt, this.last_srv_t)));
      } else {
        tsval = this.tsS(t);
        tsecr = this.tsC(this.last_cli_t);
      }
    }
    if (syn) {
      // MSS 1460
      opts[0] = 2; opts[1] = 4; opts[2] = 0x05; opts[3] = 0xb4;
      if (this.ts) {
        // SACK-permitted, timestamps, NOP, window scale 7 (Linux order)
        opts[4] = 4; opts[5] = 2;
        opts[6] = 8; opts[7] = 10; putU32(opts, 8, tsval); putU32(opts, 12, tsecr);
        opts[16] = 1; opts[17] = 3; opts[18] = 3; opts[19] = 7;
        ol = 20;
      } else if (from_client) {
        // Windows: NOP, window scale 8, NOP, NOP, SACK-permitted
        opts[4] = 1; opts[5] = 3; opts[6] = 3; opts[7] = 8; opts[8] = 1; opts[9] = 1; opts[10] = 4; opts[11] = 2;
        ol = 12;
      } else {
        // NOP, NOP, SACK-permitted, NOP, window scale 7
        opts[4] = 1; opts[5] = 1; opts[6] = 4; opts[7] = 2; opts[8] = 1; opts[9] = 3; opts[10] = 3; opts[11] = 7;
        ol = 12;
      }
    } else if (this.ts && !(p.flags & RST)) {
      opts[0] = 1; opts[1] = 1; opts[2] = 8; opts[3] = 10; putU32(opts, 4, tsval); putU32(opts, 8, tsecr);
      ol = 12;
    }
    if (from_client) this.last_cli_t = t; else this.last_srv_t = t;
    const sport = from_client ? this.cport : this.server.port;
    const dport = from_client ? this.server.port : this.cport;
    w.tcp(ts_sec, ts_usec, e, sport, dport, seq, ack, p.flags, p.win, opts, ol, p.data, p.off, p.len);
  }
}

function putU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24; b[o + 1] = (v >>> 16) & 0xff; b[o + 2] = (v >>> 8) & 0xff; b[o + 3] = v & 0xff;
}

/** A DNS query or response for one question, with an EDNS0 OPT record. */
function dnsMessage(id: number, response: boolean, name: string, qtype: number, rcode: number, a_record: number): Uint8Array {
  const labels = name.split('.');
  const qname_len = labels.reduce((n, l) => n + 1 + l.length, 1);
  const answer = response && a_record !== 0;
  const len = 12 + qname_len + 4 + (answer ? 16 : 0) + 11;
  const b = new Uint8Array(len);
  b[0] = id >>> 8; b[1] = id & 0xff;
  b[2] = response ? 0x81 : 0x01; // QR, RD
  b[3] = response ? 0x80 | rcode : 0x00; // RA, RCODE
  b[5] = 1; // QDCOUNT
  b[7] = answer ? 1 : 0; // ANCOUNT
  b[11] = 1; // ARCOUNT (OPT)
  let o = 12;
  for (const l of labels) {
    b[o++] = l.length;
    for (let i = 0; i < l.length; i++) b[o++] = l.charCodeAt(i);
  }
  b[o++] = 0;
  b[o++] = 0; b[o++] = qtype; b[o++] = 0; b[o++] = 1;
  if (answer) {
    b[o++] = 0xc0; b[o++] = 12; // pointer to the question's name
    b[o++] = 0; b[o++] = 1; b[o++] = 0; b[o++] = 1; // A IN
    putU32(b, o, 300); o += 4; // TTL
    b[o++] = 0; b[o++] = 4;
    putU32(b, o, a_record); o += 4;
  }
  // OPT: root name, type 41, UDP payload size 1232, extended RCODE/flags 0, no data
  b[o++] = 0; b[o++] = 0; b[o++] = 41; b[o++] = 0x04; b[o++] = 0xd0;
  return b;
}

// ---------------------------------------------------------------------------------
// Driver

export interface GenerateOptions {
  packets: number;
  seed: number;
  /** a file path, or a function taking each record (the same packets, no file) */
  out: string | RecordSink;
  clients?: number;
  concurrency?: number;
  transport_checksums?: boolean;
}

export interface GenerateResult {
  packets: number;
  file_bytes: number;
  capture_seconds: number;
  elapsed_ms: number;
  stats: Stats;
}

/** Min-heap of connections by (time of next packet, id). */
function less(a: Conn, b: Conn): boolean {
  const ta = a.head_t, tb = b.head_t;
  return ta < tb || (ta === tb && a.id < b.id);
}

export function generateHttpCapture(o: GenerateOptions): GenerateResult {
  const started = process.hrtime.bigint();
  const g = new Generator(o.seed, o.clients ?? 200);
  const rng = g.rng;
  const w = new PcapWriter(o.out);
  w.transport_checksums = o.transport_checksums ?? true;
  const opts = new Uint8Array(40);
  const heap: Conn[] = [];
  const siftDown = (i: number): void => {
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      const r = l + 1;
      const m = r < n && less(heap[r]!, heap[l]!) ? r : l;
      if (!less(heap[m]!, heap[i]!)) return;
      const tmp = heap[i]!; heap[i] = heap[m]!; heap[m] = tmp;
      i = m;
    }
  };
  const push = (c: Conn): void => {
    heap.push(c);
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(heap[i]!, heap[p]!)) break;
      const tmp = heap[i]!; heap[i] = heap[p]!; heap[p] = tmp;
      i = p;
    }
  };
  const concurrency = o.concurrency ?? 100;
  // the first connection opens at 2026-01-01T00:00:00.000000Z, the others over 20 ms
  for (let i = 0; i < concurrency; i++) push(g.newConnection(i === 0 ? 0 : rng.int(0, 20_000)));
  let last_t = 0;
  while (w.packets < o.packets) {
    const c = heap[0]!;
    last_t = c.head_t;
    c.emit(w, opts);
    if (c.qi === c.queue.length && !c.planNext()) {
      // connection over: a new one takes its place
      heap[0] = g.newConnection(c.max_t + Math.round(rng.exp(3000)));
    }
    siftDown(0);
  }
  w.close();
  return {
    packets: w.packets,
    file_bytes: w.file_bytes,
    capture_seconds: last_t / 1e6,
    elapsed_ms: Number(process.hrtime.bigint() - started) / 1e6,
    stats: g.stats,
  };
}

function parseArgs(argv: string[]): GenerateOptions {
  const o: GenerateOptions = { packets: 1_000_000, seed: 1, out: 'bench/out/http-1m.pcap' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    if (a === '--packets') o.packets = Number(v());
    else if (a === '--seed') o.seed = Number(v());
    else if (a === '--out') o.out = v();
    else if (a === '--clients') o.clients = Number(v());
    else if (a === '--concurrency') o.concurrency = Number(v());
    else if (a === '--no-transport-checksums') o.transport_checksums = false;
    else if (a === '-h' || a === '--help') {
      console.log('usage: node --import tsx bench/generate-http-capture.ts [--packets N] [--seed S] [--out FILE] [--clients N] [--concurrency N] [--no-transport-checksums]');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(o.packets) || o.packets <= 0) throw new Error('--packets must be a positive integer');
  if (!Number.isInteger(o.seed)) throw new Error('--seed must be an integer');
  return o;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const o = parseArgs(process.argv.slice(2));
  const r = generateHttpCapture(o);
  const s = r.stats;
  console.log(
    `${String(o.out)}: ${r.packets} packets, ${(statSync(o.out as string).size / 1e6).toFixed(1)} MB, ` +
    `${r.capture_seconds.toFixed(1)} s of traffic, ${s.connections} connections, ${s.requests} requests ` +
    `(status ${Object.entries(s.status).map(([k, n]) => `${k}:${n}`).join(' ')}; ${s.chunked} chunked), ` +
    `${s.dns_queries} DNS queries, ${s.resets} resets; generated in ${(r.elapsed_ms / 1000).toFixed(1)} s`,
  );
}
