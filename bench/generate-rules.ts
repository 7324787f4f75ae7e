/**
 * A signature file of N rules in PasTmon syntax for the benchmark's traffic
 * (bench/generate-http-capture.ts): most rules name pages the capture never asks for
 * (each is tried and fails, as in a large tuned rule set), the last few name what it
 * does ask for, so that matching transactions pass the whole list first.
 *
 *   node --import tsx bench/generate-rules.ts --rules 200 --out bench/out/rules-200.sigs
 */
import { writeFileSync } from 'node:fs';

const MATCHING = [
  'transaction API_items_get { Offset = 0; Depth = 64; Content =~ "^GET /api/v1/items[/?]"; }',
  'transaction API_items_$1 { Offset = 0; Depth = 64; Content =~ "^(POST|PUT|DELETE) /api/v1/items"; }',
  'transaction API_$1 { Offset = 0; Depth = 64; Content =~ "^[A-Z]+ /api/v1/([a-z]+)"; }',
  'transaction STATIC_$1_$2 { Offset = 0; Depth = 80; Content =~ "GET /static/([a-z0-9]+)\\.(js|css|woff2)"; }',
  'transaction PRODUCT_page { Subject =~ "^GET /product/[0-9]+$"; }',
  'transaction APP_$1 { Offset = 0; Depth = 64; Content =~ "^[A-Z]+ /app/([a-z]+)"; }',
  'transaction PAGE_$1 { Offset = 0; Depth = 64; Content =~ "^GET /([a-z]*)(\\.html)? HTTP"; }',
  'transaction CART_$1 { Offset = 0; Depth = 64; Content =~ "^POST /cart/([a-z]+)"; }',
  'transaction DNS_$1 { Protocol = dns; Subject =~ "^([A-Z]+) "; }',
];

export function rulesText(count: number): string {
  const lines = [`// ${count} rules for the benchmark capture (bench/generate-rules.ts)`];
  const misses = Math.max(0, count - MATCHING.length);
  for (let i = 0; i < misses; i++) {
    const kind = i % 4;
    if (kind === 0) lines.push(`transaction SHOP_dept${i}_$1 { Offset = 0; Depth = 80; Content =~ "GET /shop/dept${i}/([a-z_]+)"; }`);
    else if (kind === 1) lines.push(`transaction WEBMAIL_${i}_$1 { Offset = 0; Depth = 50; Content =~ "GET .*/webmail${i}/src/([a-z\\-_\\.]+)"; }`);
    else if (kind === 2) lines.push(`transaction LEGACY_${i} { Subject =~ "^POST /cgi-bin/legacy${i}\\.pl$"; }`);
    else lines.push(`transaction REPORT_${i}_$1 { Offset = 0; Depth = 80; Content =~ "^GET /reports/r${i}/(daily|weekly|monthly)"; }`);
  }
  lines.push(...MATCHING.slice(0, count));
  return lines.join('\n') + '\n';
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const count = Number(args[args.indexOf('--rules') + 1] ?? 200);
  const out = args[args.indexOf('--out') + 1] ?? `bench/out/rules-${count}.sigs`;
  writeFileSync(out, rulesText(count));
  console.log(out);
}
