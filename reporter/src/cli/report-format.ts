// Text output of the report client (and of anything else that prints reporter answers, such as a
// demo): aligned tables and a small chart, from the generated response messages.
import {
  Statistic, type CompareResponse, type GetSeriesResponse, type GetTopResponse, type GroupKey,
  type ListProtocolsResponse, type ListSensorsResponse, type ListServersResponse, type ListSignaturesResponse,
} from '../../../proto/src/gen/wiretime/v1/report_pb.ts';

/** Statistic names as the CLI spells them. */
export const STATISTIC_BY_NAME: Readonly<Record<string, Statistic>> = {
  count: Statistic.COUNT, avg: Statistic.AVG, min: Statistic.MIN, max: Statistic.MAX,
  p50: Statistic.P50, p90: Statistic.P90, p95: Statistic.P95, p99: Statistic.P99,
};

export function statisticName(s: Statistic): string {
  return Object.entries(STATISTIC_BY_NAME).find(([, v]) => v === s)?.[0] ?? `statistic ${s}`;
}

/**
 * Columns padded to their widest cell; a column whose every cell (headers aside) looks like a
 * number is right-aligned. Two spaces between columns, a dashed line under the headers.
 */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => /^[-+]?[\d.,]+( ?[a-zµ%]+)?$|^-$|^$/.test(r[i] ?? '')));
  const line = (cells: string[]) => cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n') + '\n';
}

/** A value of a metric for people: durations in ms, counts whole, bytes and others to 2 decimals. */
export function formatValue(metric: string, statistic: Statistic, v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  if (statistic === Statistic.COUNT) return String(Math.round(v));
  if (metric.endsWith('_ns')) return (v / 1e6).toFixed(3);
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

/** Column heading of a value: "p95 ttfr_ns (ms)". */
export function valueHeading(metric: string, statistic: Statistic): string {
  return `${statisticName(statistic)} ${metric}${statistic !== Statistic.COUNT && metric.endsWith('_ns') ? ' (ms)' : ''}`;
}

/** UTC time without seconds when they are zero: 2026-01-31 12:05. */
export function formatTime(s: bigint | number): string {
  const t = new Date(Number(s) * 1000).toISOString();
  return t.endsWith(':00.000Z') ? t.slice(0, 16).replace('T', ' ') : t.slice(0, 19).replace('T', ' ');
}

function keyColumns(k: GroupKey | undefined): { headers: string[]; cells: string[] } {
  if (k !== undefined && k.server !== '') return { headers: ['server', 'port', 'transport'], cells: [k.server, String(k.serverPort), k.transport] };
  return { headers: ['protocol', 'signature'], cells: [k?.protocol ?? '', k?.signature ?? ''] };
}

export function formatTop(r: GetTopResponse, metric: string, statistic: Statistic): string {
  const first = keyColumns(r.rows[0]?.key);
  const headers = [...first.headers, valueHeading(metric, statistic), 'values', 'transactions'];
  const rows = r.rows.map((x) => [...keyColumns(x.key).cells, formatValue(metric, statistic, x.value), String(x.count), String(x.transactions)]);
  return `${formatTime(r.window!.startS)} – ${formatTime(r.window!.endS)} UTC, ${r.rows.length} of ${r.totalGroups}\n` + renderTable(headers, rows);
}

export function formatCompare(r: CompareResponse, metric: string, statistic: Statistic): string {
  const first = keyColumns(r.rows[0]?.key);
  const h = valueHeading(metric, statistic);
  const headers = [...first.headers, `before ${h}`, `after`, 'change', 'change %', 'significant', 'values before', 'after'];
  const rows = r.rows.map((x) => [
    ...keyColumns(x.key).cells,
    formatValue(metric, statistic, x.before),
    formatValue(metric, statistic, x.after),
    (x.change > 0 ? '+' : '') + formatValue(metric, statistic, x.change),
    x.changeRatio === undefined ? '-' : `${x.changeRatio > 0 ? '+' : ''}${(x.changeRatio * 100).toFixed(1)}%`,
    x.significant ? 'yes' : 'no',
    String(x.beforeCount), String(x.afterCount),
  ]);
  return `before ${formatTime(r.before!.startS)} – ${formatTime(r.before!.endS)}, after ${formatTime(r.after!.startS)} – ${formatTime(r.after!.endS)} UTC; ` +
    `${r.rows.length} of ${r.totalGroups} in both (only before: ${r.onlyBefore}, only after: ${r.onlyAfter}); error ±${(r.relativeError * 100).toFixed(0)}%\n` +
    renderTable(headers, rows);
}

const BLOCKS = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/**
 * A bar chart of a series, `height` rows of block characters, at most `width` columns (points are
 * combined by their maximum when there are more); gaps stay blank. The axis shows the value of
 * the top row and the first and last bucket's time.
 */
export function renderChart(r: GetSeriesResponse, metric: string, statistic: Statistic, width = 72, height = 8): string {
  const per = Math.max(1, Math.ceil(r.points.length / width));
  const cols: (number | undefined)[] = [];
  for (let i = 0; i < r.points.length; i += per) {
    let m: number | undefined;
    for (const p of r.points.slice(i, i + per)) if (p.value !== undefined && (m === undefined || p.value > m)) m = p.value;
    cols.push(m);
  }
  const top = Math.max(0, ...cols.map((c) => c ?? 0));
  const label = formatValue(metric, statistic, top);
  const pad = Math.max(label.length, 1);
  const lines: string[] = [];
  for (let row = height - 1; row >= 0; row--) {
    let line = '';
    for (const c of cols) {
      if (c === undefined || top <= 0) { line += ' '; continue; }
      const eighths = Math.round((c / top) * height * 8) - row * 8;
      line += BLOCKS[Math.max(0, Math.min(8, eighths))];
    }
    lines.push(`${(row === height - 1 ? label : row === 0 ? '0' : '').padStart(pad)} │${line.trimEnd()}`);
  }
  lines.push(`${' '.repeat(pad)} └${'─'.repeat(cols.length)}`);
  const start = formatTime(r.window!.startS), end = formatTime(r.window!.endS);
  const axis = cols.length >= start.length + end.length + 2 ? `${start}${end.padStart(cols.length - start.length)}` : `${start} … ${end}`;
  lines.push(`${' '.repeat(pad + 2)}${axis}`);
  return lines.join('\n') + '\n';
}

export function formatSeries(r: GetSeriesResponse, metric: string, statistic: Statistic, chart = true): string {
  const head = `${valueHeading(metric, statistic)}, ${formatTime(r.window!.startS)} – ${formatTime(r.window!.endS)} UTC, ` +
    `every ${r.resolutionS} s (levels ${r.levelsS.join(', ')} s)\n`;
  const table = renderTable(['start (UTC)', valueHeading(metric, statistic), 'values'],
    r.points.map((p) => [formatTime(p.startS), formatValue(metric, statistic, p.value), String(p.count)]));
  return head + (chart ? renderChart(r, metric, statistic) + '\n' : '') + table;
}

export function formatSensors(r: ListSensorsResponse): string {
  return renderTable(['sensor', 'last seen (UTC)', 'packets', 'kernel drops', 'flows', 'transactions', 'spool bytes', 'capture time (UTC)'],
    r.sensors.map((s) => [s.sensorId, formatTime(s.lastSeenS),
      ...(s.hasStats ? [String(s.packets), String(s.kernelDrops), String(s.flowsActive), String(s.transactions), String(s.spoolBytes), s.captureTimeS > 0n ? formatTime(s.captureTimeS) : '-']
        : ['-', '-', '-', '-', '-', '-'])])) + nextPage(r.nextPageToken);
}

export function formatServers(r: ListServersResponse): string {
  return renderTable(['server', 'port', 'transport', 'first seen (UTC)'], r.servers.map((s) => [s.server, String(s.serverPort), s.transport, formatTime(s.firstSeenS)])) + nextPage(r.nextPageToken);
}

export function formatProtocols(r: ListProtocolsResponse): string {
  return renderTable(['protocol', 'signatures'], r.protocols.map((p) => [p.protocol, String(p.signatures)])) + nextPage(r.nextPageToken);
}

export function formatSignatures(r: ListSignaturesResponse): string {
  return renderTable(['protocol', 'signature', 'first seen (UTC)'], r.signatures.map((s) => [s.protocol, s.signature, formatTime(s.firstSeenS)])) + nextPage(r.nextPageToken);
}

function nextPage(token: string): string {
  return token === '' ? '' : `(more: --page-token ${token})\n`;
}
